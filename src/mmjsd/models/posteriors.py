"""Subset posteriors as objects with one protocol: ``sample``, ``log_prob``, ``mean``.

Every method's posterior for a subset of modalities (docs/reference-code.md §3.7) is either a
single diagonal Gaussian (MVAE, MoPoE: products of experts) or a finite mixture of
diagonal Gaussians (MMVAE, mmJSD: mixtures of unimodal experts). Evaluation code
(coherence, importance sampling, the probe) only uses this protocol.

Shapes: a posterior describes a batch of B rows with latent dimension D; ``sample(S)``
returns ``[S, B, D]`` and ``log_prob`` takes ``[S, B, D]`` and returns ``[S, B]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmjsd.models.distributions import constant_tensor, log_mixture_density, log_normal_diag, stratified_component_index


@dataclass
class GaussianPosterior:
    """N(mu, diag(exp(logvar))) per row; ``mu``/``logvar`` are [B, D]."""

    mu: torch.Tensor
    logvar: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        return self.mu

    def sample(self, num_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        shape = (num_samples,) + tuple(self.mu.shape)
        eps = torch.randn(shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + torch.exp(0.5 * self.logvar) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return log_normal_diag(z, self.mu, self.logvar)

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """A Gaussian is its own single component: :meth:`log_prob`."""
        return self.log_prob(z)

    def drawn_component_mean(self) -> torch.Tensor:
        """A Gaussian is its own single component: :attr:`mean`."""
        return self.mu


@dataclass
class MixturePosterior:
    """sum_c w_c N(mu_c, diag(exp(logvar_c))) per row; ``mus``/``logvars`` are [C, B, D], ``weights`` C floats.

    Sampling is the reference's stratified selection (docs/reference-code.md §3.1) over the
    flattened ``S * B`` draws: sample index s of row b comes from the component whose
    contiguous block holds ``s * B + b``. With S = 1 this splits the batch into blocks
    (85/85/86 for three components at B = 256); with S = 12 and three equal components
    every row gets 4 draws from each component. ``log_prob`` is the full mixture density,
    so importance weights p/q are the balance-heuristic (deterministic-mixture) weights.

    The weights are kept as Python floats (a tensor given is converted once): the
    stratified blocks then need no device-to-host read in every training step.
    """

    mus: torch.Tensor
    logvars: torch.Tensor
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        values = self.weights.tolist() if isinstance(self.weights, torch.Tensor) else self.weights
        self.weights = tuple(float(w) for w in values)

    def weight_tensor(self, like: torch.Tensor) -> torch.Tensor:
        """The weights as a [C] tensor on ``like``'s device and dtype."""
        return constant_tensor(self.weights, like.device, like.dtype)

    @property
    def mean(self) -> torch.Tensor:
        return (self.weight_tensor(self.mus).reshape(-1, 1, 1) * self.mus).sum(0)

    def component_index(self, num_samples: int) -> torch.Tensor:
        """Component of each draw, shape [S, B], by stratified blocks over the flattened draws."""
        batch = self.mus.shape[1]
        return stratified_component_index(self.weights, num_samples * batch, self.mus.device).reshape(
            num_samples, batch
        )

    def drawn_components(self, num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the component of each draw of ``sample(num_samples)``, ``[S, B, D]`` each."""
        comp = self.component_index(num_samples)
        rows = torch.arange(self.mus.shape[1], device=self.mus.device).expand_as(comp)
        return self.mus[comp, rows], self.logvars[comp, rows]

    def sample(self, num_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self.drawn_components(num_samples)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return log_mixture_density(z, self.mus, self.logvars, self.weight_tensor(z))

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mu_c, sigma_c^2) of each draw of ``sample(S)`` under the component c it was drawn from, ``[S, B]``.

        The official importance sampler's proposal density (docs/metrics.md §4.2, the
        ``mixture_proposal_density`` departure): unbiased only per stratum, with more variance
        than the mixture density of :meth:`log_prob`. ``z`` must be laid out as ``sample(S)``'s.
        """
        return log_normal_diag(z, *self.drawn_components(z.shape[0]))

    def drawn_component_mean(self) -> torch.Tensor:
        """Per row, the mean of the component its single stratified draw comes from, ``[B, D]``.

        The official code's "joint" representation for the latent probe: contiguous blocks of
        rows carry the means of different components (docs/reference-code.md §5.2).
        """
        return self.drawn_components(1)[0][0]


Posterior = GaussianPosterior | MixturePosterior
