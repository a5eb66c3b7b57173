"""Output likelihoods p(x_m | z): Laplace for images, categorical for text (docs/reference-code.md §2.5, docs/design.md §4).

Decoders output the likelihood's parameters (an image location, text logits). Each
likelihood gives the per-row log-density summed over every element of the example, and the
"generated" data the evaluation classifiers and figures receive.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F

from mmjsd import registry

#: Fixed scale of every image Laplace likelihood (reference decoders return (loc, 0.75)).
LAPLACE_SCALE = 0.75


def laplace_log_likelihood(x: torch.Tensor, loc: torch.Tensor, scale: float = LAPLACE_SCALE) -> torch.Tensor:
    """sum over all elements of log Laplace(x; loc, scale) = -log(2·scale) - |x - loc| / scale, per row [N]."""
    log_density = -math.log(2.0 * scale) - (x - loc).abs() / scale
    return log_density.flatten(1).sum(1)


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
    """Laplace(loc, 0.75) per pixel. Generated images are the mean (= loc) clamped to [0, 1].

    The reference passes the unclamped mean to its classifiers and clamps only when it
    writes PNGs; clamping here keeps every consumer (classifiers, PRD, figures) on the
    pixel range real data has. MNIST locations are already in (0, 1) (sigmoid decoder).
    """

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return laplace_log_likelihood(x, params)

    def generate(self, params: torch.Tensor) -> torch.Tensor:
        return params.clamp(0.0, 1.0)


class CategoricalText:
    """Categorical over the alphabet at each position, parametrised by proper logits.

    Generated text is the one-hot argmax of the softmax at each position ([N, L, 71], the
    format of real text), not the reference's inverted argmin convention (docs/reference-code.md §2.5).
    """

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return categorical_log_likelihood(x, params)

    def generate(self, params: torch.Tensor) -> torch.Tensor:
        return F.one_hot(params.argmax(-1), params.shape[-1]).to(params.dtype)


def dataset_likelihoods(dataset: str) -> dict[str, Likelihood]:
    """One likelihood per modality of ``dataset``: the classes its spec names (``DatasetSpec.likelihoods``)."""
    return {
        m: registry.load_object(path, f"dataset '{dataset}' likelihood of {m}")()
        for m, path in registry.dataset(dataset).likelihoods.items()
    }
