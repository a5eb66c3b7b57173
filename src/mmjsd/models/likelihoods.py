"""Output likelihoods p(x_m | z): Laplace for images, categorical for text
(docs/reference-code.md §2.5, docs/design.md §4).

Decoders output the likelihood's parameters (an image location, text logits). Each
likelihood gives the per-row log-density summed over every element of the example, and the
"generated" data the evaluation classifiers and figures receive: the likelihood's mean.

Text has two parametrisations, chosen by the ``text_likelihood`` departure
(docs/departures.md): :class:`CategoricalText` with the decoder output as the categorical's
logits (corrected), or, as the official code does, with the log-softmax of the decoder
output handed to a categorical as its probabilities (reference).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

from mmjsd.core import registry

#: Fixed scale of every image Laplace likelihood (reference decoders return (loc, 0.75)).
LAPLACE_SCALE = 0.75


def laplace_log_likelihood(x: torch.Tensor, loc: torch.Tensor, scale: float = LAPLACE_SCALE) -> torch.Tensor:
    """sum over all elements of log Laplace(x; loc, scale) = -log(2·scale) - |x - loc| / scale, per row [N]."""
    log_density = -math.log(2.0 * scale) - (x - loc).abs() / scale
    return log_density.flatten(1).sum(1)


def log_softmax_as_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """p̃ = l / sum_j l_j with l = log_softmax(logits) over the last dimension (docs/reference-code.md §2.5).

    The official text likelihood: torch's categorical normalises the (negative) log-softmax
    values it is given as probabilities by their sum, so p̃_c is proportional to |log p_c|
    and the softmax's least likely character is p̃'s most likely one.
    """
    log_probs = F.log_softmax(logits, dim=-1)
    return log_probs / log_probs.sum(-1, keepdim=True)


def log_softmax_as_probabilities_log_likelihood(one_hot: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum over positions of log p̃[target] with p̃ of :func:`log_softmax_as_probabilities`, per row [N].

    p̃ is clamped to [eps, 1 - eps] (eps of the dtype) before the log, as torch's categorical
    does with the probabilities it is given; an all-zero row of ``one_hot`` contributes 0.
    """
    eps = torch.finfo(logits.dtype).eps
    return (one_hot * torch.log(log_softmax_as_probabilities(logits).clamp(eps, 1.0 - eps))).flatten(1).sum(1)


def categorical_log_likelihood(one_hot: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum over positions of log softmax(logits)[target], per row [N]; ``one_hot`` and ``logits`` are [N, L, C].

    A row of ``one_hot`` that is all zero (a character outside the alphabet) contributes 0,
    as the reference's one-hot categorical would.
    """
    return (one_hot * F.log_softmax(logits, dim=-1)).flatten(1).sum(1)


class Likelihood(Protocol):
    """What the model needs of a modality's likelihood."""

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | params) per row [N], summed over the example's elements."""

    def generate(self, params: torch.Tensor) -> torch.Tensor:
        """Generated data in the batch format of the modality."""


class LaplaceImage:
    """Laplace(loc, 0.75) per pixel. Generated images are the mean (= loc), unbounded as the reference's.

    Consumers bring them to the pixel range: PRD quantises to uint8 levels (clamping, as a
    PNG would), figures clamp when drawing, and coherence clamps unless the
    ``generated_image_range`` departure is at ``reference`` (the official classifiers saw the
    unbounded mean). MNIST locations are already in (0, 1) (sigmoid decoder).
    """

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return laplace_log_likelihood(x, params)

    def generate(self, params: torch.Tensor) -> torch.Tensor:
        return params


class CategoricalText:
    """Categorical over the alphabet at each position; its parametrisation is the ``text_likelihood`` departure.

    * corrected (``official=False``): the decoder output is the categorical's logits, and
      generated text is the one-hot argmax of the softmax at each position ([N, L, 71], the
      format of real text);
    * reference (``official=True``): the official code hands l = log_softmax(decoder output)
      to a categorical as its *probabilities*, so the distribution is p̃ = l / sum(l)
      (:func:`log_softmax_as_probabilities`). Generated text is that categorical's mean p̃
      ([N, L, 71], not one-hot), which the official text classifiers receive; it is read as
      text by its argmax, the softmax's argmin (docs/reference-code.md §2.5).
    """

    #: The switch that picks the parametrisation (mmjsd.core.departures); see :func:`dataset_likelihoods`.
    departure = "text_likelihood"

    def __init__(self, official: bool = False):
        self.official = official

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.official:
            return log_softmax_as_probabilities_log_likelihood(x, params)
        return categorical_log_likelihood(x, params)

    def generate(self, params: torch.Tensor) -> torch.Tensor:
        if self.official:
            return log_softmax_as_probabilities(params)
        return F.one_hot(params.argmax(-1), params.shape[-1]).to(params.dtype)


def dataset_likelihoods(
    dataset: str, official: Callable[[str], bool] = lambda departure: False
) -> dict[str, Likelihood]:
    """One likelihood per modality of ``dataset``: the classes its spec names (``DatasetSpec.likelihoods``).

    A likelihood class with a ``departure`` attribute is built with ``official=official(departure)``,
    so a training switch picks its parametrisation (``TrainConfig.reference``).
    """
    likelihoods = {}
    for m, path in registry.dataset(dataset).likelihoods.items():
        cls = registry.load_object(path, f"dataset '{dataset}' likelihood of {m}")
        departure = getattr(cls, "departure", None)
        likelihoods[m] = cls(official=official(departure)) if departure else cls()
    return likelihoods
