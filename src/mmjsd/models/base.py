"""The multimodal VAE shared by all four objectives: networks, likelihoods, the loss skeleton.

A :class:`MultimodalVAE` owns one encoder and one decoder per modality (``encoders`` and
``decoders``, ``nn.ModuleDict`` keyed by modality) and knows how to encode a batch, decode
a content sample (with each modality's style sample), score data under the likelihoods
and assemble the training loss. What differs between MVAE, MMVAE, mmJSD and MoPoE lives
in their subclasses:

* :meth:`MultimodalVAE.subset_posterior` — q(z | X_S) for a subset S (docs/reference-code.md §3.7);
* :meth:`MultimodalVAE.joint_posterior` — the posterior whose single stratified sample
  reconstructs every modality in training (by default the subset posterior of all
  modalities);
* :meth:`MultimodalVAE.content_divergence` — the content regulariser D_content, per row;
* MVAE adds its unimodal ELBOs through :meth:`loss_terms` and :meth:`term_weights`.

The loss (docs/reference-code.md §3.1), with every term a batch mean:

    L = sum_m w_m NLL_m + beta * (beta_content * D_content + beta_style * sum_m s_m KL(q_style,m || N(0, I)))

:meth:`forward_loss` returns L and the unweighted terms; :meth:`term_weights` gives each
term's weight, so that ``loss == sum(term_weights()[k] * terms[k])``.

Departures from the official code are switches in ``cfg.departures`` (docs/departures.md):
``text_likelihood`` acts on every objective through the likelihoods (:meth:`log_likelihoods`,
:meth:`generate_means`); the objective-specific ones are named in each subclass's docstring.

Randomness: :meth:`forward_loss` draws from torch's global RNG (the training loop seeds
it); the evaluation helpers (:meth:`posterior_styles`, :meth:`prior_styles`, and the
``sample`` of every posterior from :meth:`subset_posterior` or :meth:`style_posteriors`)
take an optional ``torch.Generator``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn

from mmjsd.core import registry
from mmjsd.core.config import TrainConfig
from mmjsd.models.distributions import (
    kl_standard_normal,
    nonempty_subsets,
    prepend_standard_normal,
    product_of_experts,
)
from mmjsd.models.likelihoods import dataset_likelihoods
from mmjsd.models.networks import Encoding, dataset_networks
from mmjsd.models.posteriors import GaussianPosterior, MixturePosterior, Posterior

Encodings = dict[str, Encoding]


class MultimodalVAE(nn.Module, abc.ABC):
    """Networks, likelihoods and loss skeleton of one (dataset, objective); see the module docstring.

    ``modalities`` is the dataset's canonical modality tuple; ``shared_dim`` the content
    dimension; ``style_dims`` the style dimension per modality (0 = no style subspace).
    """

    objective: ClassVar[str]

    def __init__(self, dataset: str, cfg: TrainConfig):
        super().__init__()
        spec = registry.dataset(dataset)
        self.dataset = dataset
        self.modalities: tuple[str, ...] = spec.modalities
        self.shared_dim = cfg.shared_dim
        self.style_dims = {m: cfg.style_dim[m] for m in self.modalities}
        self.config = cfg
        encoders, decoders = dataset_networks(dataset)(self.shared_dim, self.style_dims)
        self.encoders = nn.ModuleDict(encoders)
        self.decoders = nn.ModuleDict(decoders)
        self.likelihoods = dataset_likelihoods(dataset, cfg.reference)

    # ------------------------------------------------------------------ encoding
    @property
    def subsets(self) -> list[tuple[str, ...]]:
        """All non-empty subsets of the modalities, in the documented order (by size, then modality order)."""
        return nonempty_subsets(self.modalities)

    def encode(self, batch: Mapping[str, torch.Tensor]) -> Encodings:
        """Encode every modality present in ``batch`` (a subset of ``modalities``)."""
        unknown = sorted(set(batch) - set(self.modalities))
        if unknown:
            raise ValueError(f"batch has keys {unknown} that are not modalities of {self.dataset}: {self.modalities}")
        return {m: self.encoders[m](batch[m]) for m in self.modalities if m in batch}

    def canonical_subset(self, subset: Sequence[str]) -> tuple[str, ...]:
        """``subset`` in the canonical modality order; unknown or repeated modalities raise."""
        if len(set(subset)) != len(subset) or not set(subset) <= set(self.modalities) or not subset:
            raise ValueError(f"{tuple(subset)} is not a non-empty subset of {self.modalities}")
        return tuple(m for m in self.modalities if m in subset)

    def stacked_experts(self, encodings: Encodings, subset: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Content means and log-variances of the modalities of ``subset``, stacked to [K, B, D] in canonical order."""
        subset = self.canonical_subset(subset)
        missing = [m for m in subset if m not in encodings]
        if missing:
            raise ValueError(f"subset {subset} needs encodings of {missing}")
        mus = torch.stack([encodings[m].content_mu for m in subset])
        logvars = torch.stack([encodings[m].content_logvar for m in subset])
        return mus, logvars

    # ---------------------------------------------------------------- posteriors
    @abc.abstractmethod
    def subset_posterior(self, encodings: Encodings, subset: Sequence[str]) -> Posterior:
        """q(z | X_S) for the modalities in ``subset`` (docs/reference-code.md §3.7); each objective defines it."""

    def joint_posterior(self, encodings: Encodings) -> Posterior:
        """The posterior that reconstructs all modalities in training: by default q(z | X) of the full set."""
        return self.subset_posterior(encodings, self.modalities)

    def unimodal_mixture(self, encodings: Encodings, subset: Sequence[str], weights: Mapping[str, float]) -> Posterior:
        """sum_{m in S} w_m q(z | x_m) with ``weights`` renormalised over S; a single modality gives q(z | x_m) itself.

        Sampling is the stratified selection of :class:`MixturePosterior` (docs/reference-code.md §3.1).
        """
        subset = self.canonical_subset(subset)
        mus, logvars = self.stacked_experts(encodings, subset)
        if len(subset) == 1:
            return GaussianPosterior(mus[0], logvars[0])
        total = sum(weights[m] for m in subset)
        return MixturePosterior(mus, logvars, tuple(weights[m] / total for m in subset))

    def product_posterior(self, encodings: Encodings, subset: Sequence[str], with_prior: bool) -> GaussianPosterior:
        """PoE of the content experts of ``subset``, optionally with the
        N(0, I) expert (docs/reference-code.md §3.1)."""
        mus, logvars = self.stacked_experts(encodings, subset)
        if with_prior:
            mus, logvars = prepend_standard_normal(mus, logvars)
        return GaussianPosterior(*product_of_experts(mus, logvars))

    # ---------------------------------------------------------------------- styles
    def style_posteriors(self, encodings: Encodings) -> dict[str, GaussianPosterior]:
        """q_style,m(. | x_m) for every encoded modality with a style subspace.

        Evaluation uses it for K style samples per row and their log-densities (importance sampling).
        """
        return {
            m: GaussianPosterior(enc.style_mu, enc.style_logvar)
            for m, enc in encodings.items()
            if enc.style_mu is not None
        }

    def posterior_styles(
        self, encodings: Encodings, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """One sample z_style,m ~ q_style,m(. | x_m) per row, [B, d_m], per encoded modality with a style subspace."""
        return {m: posterior.sample(1, generator)[0] for m, posterior in self.style_posteriors(encodings).items()}

    def prior_styles(self, num_rows: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """z_style,m ~ N(0, I), [num_rows, d_m], for every modality with a style subspace (random or missing styles)."""
        reference = next(self.parameters())
        return {
            m: torch.randn(num_rows, dim, generator=generator, device=reference.device, dtype=reference.dtype)
            for m, dim in self.style_dims.items()
            if dim > 0
        }

    # -------------------------------------------------------------------- decoding
    def decode(
        self,
        z_content: torch.Tensor,
        styles: Mapping[str, torch.Tensor],
        modalities: Sequence[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Likelihood parameters per modality from z_content [N, D] and each modality's style [N, d_m].

        Decodes ``modalities`` (default: all). Returns image Laplace locations and text
        logits [N, L, 71]. A modality with a style subspace needs its entry in ``styles``;
        the entries of the others are ignored.
        """
        decoded = {}
        for m in modalities or self.modalities:
            style = None
            if self.style_dims[m] > 0:
                if m not in styles:
                    raise KeyError(f"decoding '{m}' needs a style sample (styles has {sorted(styles)})")
                style = styles[m]
            decoded[m] = self.decoders[m](z_content, style)
        return decoded

    def log_likelihoods(
        self, decoded: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """log p(x_m | z) per row [N], summed over all elements, for every decoded modality (rows must match)."""
        return {m: self.likelihoods[m].log_likelihood(params, batch[m]) for m, params in decoded.items()}

    def generate_means(self, decoded: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Generated data from likelihood parameters, in batch format: each likelihood's mean.

        Images: the Laplace mean (unbounded; consumers clamp). Text: the one-hot argmax of
        the softmax at each position, or with the ``text_likelihood`` departure at
        ``reference`` the official categorical's mean p̃ (see :mod:`mmjsd.models.likelihoods`).
        """
        return {m: self.likelihoods[m].generate(params) for m, params in decoded.items()}

    # ------------------------------------------------------------------------- loss
    @abc.abstractmethod
    def content_divergence(self, encodings: Encodings, joint: Posterior | None = None) -> torch.Tensor:
        """D_content per row [B]; each objective defines it.

        ``joint`` is :meth:`joint_posterior` of the same encodings when the caller already
        has it (the training step does), so objectives that need it do not build it twice.
        """

    def style_divergences(self, encodings: Encodings) -> dict[str, torch.Tensor]:
        """'kl/style/<m>': batch mean of KL(q_style,m || N(0, I)) for every modality with a style subspace."""
        return {
            f"kl/style/{m}": kl_standard_normal(enc.style_mu, enc.style_logvar).mean()
            for m, enc in encodings.items()
            if enc.style_mu is not None
        }

    def loss_terms(
        self, encodings: Encodings, batch: Mapping[str, torch.Tensor], styles: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Unweighted batch means: 'rec/<m>' (NLL under one joint sample), 'kl/content', 'kl/style/<m>'.

        One z per row from :meth:`joint_posterior` (a stratified selection for mixtures)
        reconstructs every modality, each decoder with its own style sample.
        """
        joint = self.joint_posterior(encodings)
        log_liks = self.log_likelihoods(self.decode(joint.sample()[0], styles), batch)
        terms = {f"rec/{m}": -log_liks[m].mean() for m in self.modalities}
        terms["kl/content"] = self.content_divergence(encodings, joint).mean()
        terms.update(self.style_divergences(encodings))
        return terms

    def term_weights(self) -> dict[str, float]:
        """Weight of every term :meth:`loss_terms` returns: w_m, beta·beta_content, beta·beta_style·s_m."""
        cfg = self.config
        weights = {f"rec/{m}": cfg.rec_weights[m] for m in self.modalities}
        weights["kl/content"] = cfg.beta * cfg.beta_content
        for m in self.modalities:
            if self.style_dims[m] > 0:
                weights[f"kl/style/{m}"] = cfg.beta * cfg.beta_style * cfg.style_weights[m]
        return weights

    def forward_loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss on a complete batch and its unweighted terms (global RNG).

        Returns ``(loss, terms)`` with ``loss == sum(term_weights()[k] * terms[k] for k in terms)``.
        """
        missing = [m for m in self.modalities if m not in batch]
        if missing:
            raise ValueError(f"training needs every modality; the batch lacks {missing}")
        encodings = self.encode(batch)
        styles = self.posterior_styles(encodings)
        terms = self.loss_terms(encodings, batch, styles)
        weights = self.term_weights()
        loss = torch.stack([weights[name] * value for name, value in terms.items()]).sum()
        return loss, terms
