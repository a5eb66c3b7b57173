"""Distribution math for diagonal Gaussians, as small pure functions.

Conventions (docs/reference-code.md §3): a Gaussian is a pair ``(mu, logvar)`` of tensors with the
latent dimension last; KL terms are summed over latent dimensions and returned per row
(the objectives average over the batch, which is the reference's sum-then-divide-by-B).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch

Gaussian = tuple[torch.Tensor, torch.Tensor]

#: Added to every expert's variance before a product of experts (reference ``mm_div.poe``).
POE_EPS = 1e-8

_LOG_2PI = math.log(2.0 * math.pi)

_FLOOR_TOLERANCE = 1e-9


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One sample z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling 2014, eq. 10)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension (broadcasts)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (_LOG_2PI + z**2).sum(-1)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum(sigma^2 + mu^2 - 1 - log sigma^2), per row."""
    return 0.5 * (torch.exp(logvar) + mu**2 - 1.0 - logvar).sum(-1)


def kl_gaussians(mu0: torch.Tensor, logvar0: torch.Tensor, mu1: torch.Tensor, logvar1: torch.Tensor) -> torch.Tensor:
    """KL(N(mu0, s0^2) || N(mu1, s1^2)) = 1/2 sum(log s1^2/s0^2 + (s0^2 + (mu0-mu1)^2)/s1^2 - 1), per row."""
    return 0.5 * (logvar1 - logvar0 + (torch.exp(logvar0) + (mu0 - mu1) ** 2) * torch.exp(-logvar1) - 1.0).sum(-1)


def product_of_experts(mus: torch.Tensor, logvars: torch.Tensor, eps: float = POE_EPS) -> Gaussian:
    """Product of Gaussian experts stacked on dim 0 (Wu & Goodman 2018, eq. 4).

    Each expert's variance gets ``eps`` (reference ``mm_div.poe``); precisions add and
    the mean is precision-weighted. Returns ``(mu, logvar)`` of the product.
    """
    precision = 1.0 / (torch.exp(logvars) + eps)
    total = precision.sum(0)
    mu = (mus * precision).sum(0) / total
    return mu, -torch.log(total)


def weighted_product_of_experts(
    mus: torch.Tensor, logvars: torch.Tensor, weights: torch.Tensor, eps: float = 0.0
) -> Gaussian:
    """alpha-weighted PoE, the mmJSD dynamic prior (Sutter et al. 2020, eq. 8; reference ``alpha_poe``).

    precision = sum_k alpha_k / (sigma_k^2 + eps), mean = (sum_k alpha_k mu_k / (sigma_k^2 + eps)) / precision.
    ``weights`` has one entry per expert (dim 0) and should sum to 1. The paper's equation has
    eps = 0; the official code adds :data:`POE_EPS` to every variance (the
    ``dynamic_prior_epsilon`` departure, docs/departures.md).
    """
    shape = (-1,) + (1,) * (mus.dim() - 1)
    inverse_variance = 1.0 / (torch.exp(logvars) + eps) if eps else torch.exp(-logvars)
    precision = weights.reshape(shape).to(mus) * inverse_variance
    total = precision.sum(0)
    mu = (mus * precision).sum(0) / total
    return mu, -torch.log(total)


def prepend_standard_normal(mus: torch.Tensor, logvars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the N(0, I) expert (mu = 0, logvar = 0) in front of experts stacked on dim 0.

    The reference puts the prior first in every stack ([prior, q_1, ..., q_M], docs/reference-code.md §3.2).
    """
    zeros = torch.zeros_like(mus[:1])
    return torch.cat([zeros, mus]), torch.cat([zeros, logvars])


def weighted_kl_standard_normal(mus: torch.Tensor, logvars: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_k w_k KL(N(mu_k, sigma_k^2) || N(0, I)) per row, components stacked on dim 0.

    The divergence of the MMVAE re-implementation (unimodal components) and of MoPoE
    (subset components) (docs/reference-code.md §3.3, §3.5): by Jensen's inequality an upper bound on
    KL(sum_k w_k q_k || N(0, I)); the reference never evaluates the mixture's own KL.
    """
    kls = torch.stack([kl_standard_normal(mus[k], logvars[k]) for k in range(mus.shape[0])])
    return (weights.to(kls).reshape(-1, 1) * kls).sum(0)


def jensen_shannon_dynamic_prior(
    mus: torch.Tensor, logvars: torch.Tensor, weights: torch.Tensor, eps: float = 0.0
) -> tuple[torch.Tensor, Gaussian]:
    """JS_pi = sum_k pi_k KL(q_k || f) with the dynamic prior f = alpha-PoE(pi; q_0..q_K), per row.

    The multimodal Jensen-Shannon divergence with dynamic prior of Sutter et al. 2020
    (docs/reference-code.md §3.2). Experts are stacked on dim 0; mmJSD passes [N(0, I), q_1, ..., q_M]
    so the prior is both inside f and a JS component. ``weights`` (pi) must sum to 1; ``eps``
    goes to the variances inside f only (:func:`weighted_product_of_experts`), the KL terms
    use the raw q_k, as the official code does. Returns the divergence [B] and f as ``(mu, logvar)``.
    """
    dyn_mu, dyn_logvar = weighted_product_of_experts(mus, logvars, weights, eps)
    kls = torch.stack([kl_gaussians(mus[k], logvars[k], dyn_mu, dyn_logvar) for k in range(mus.shape[0])])
    return (weights.to(kls).reshape(-1, 1) * kls).sum(0), (dyn_mu, dyn_logvar)


def stratified_counts(batch_size: int, weights: Sequence[float]) -> list[int]:
    """Rows per component of the reference's stratified mixture selection.

    Component k gets floor(B * w_k) rows and the last component the remainder
    (reference ``mixture_component_selection``): B = 256, three equal weights → 85/85/86.
    """
    # The tolerance keeps float rounding from losing a row: 49 * (1/49) evaluates to 0.999...
    counts = [math.floor(batch_size * w + _FLOOR_TOLERANCE) for w in weights[:-1]]
    counts.append(batch_size - sum(counts))
    return counts


@functools.lru_cache(maxsize=256)
def constant_tensor(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A small constant vector (mixture or JS weights) on ``device``, built once per device and dtype.

    Building it in every training step would copy host → device each time, which on CUDA
    blocks the host; the cached tensor must not be modified in place. It is made outside
    inference mode, so a first call from evaluation code does not poison later training.
    """
    with torch.inference_mode(False):
        return torch.tensor(values, device=device, dtype=dtype)


@functools.lru_cache(maxsize=256)
def stratified_component_index(weights: tuple[float, ...], num_draws: int, device: torch.device) -> torch.Tensor:
    """Component of each of ``num_draws`` draws: contiguous blocks of :func:`stratified_counts` (cached per device)."""
    counts = stratified_counts(num_draws, weights)
    with torch.inference_mode(False):  # cached: must stay usable by autograd (see constant_tensor)
        return torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).to(device)


def log_mixture_density(
    z: torch.Tensor, mus: torch.Tensor, logvars: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """log sum_k w_k N(z; mu_k, sigma_k^2) for components stacked on dim 0 of ``mus``/``logvars``.

    ``z`` broadcasts against one component (e.g. z [S, B, D] with components [K, B, D]);
    weights are the mixture weights (zero weights drop their component).
    """
    log_w = torch.log(weights.to(z))
    comps = torch.stack([log_normal_diag(z, mus[k], logvars[k]) + log_w[k] for k in range(mus.shape[0])])
    return torch.logsumexp(comps, dim=0)


def nonempty_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """All 2^M - 1 non-empty subsets, by size then in modality order (MoPoE ``set_subsets``).

    MST gives mnist, svhn, text, mnist+svhn, mnist+text, svhn+text, mnist+svhn+text.
    """
    return [combo for size in range(1, len(modalities) + 1) for combo in itertools.combinations(modalities, size)]


def subset_key(subset: Sequence[str]) -> str:
    """Canonical name of a subset in metric files and tables: modalities joined with '+'."""
    return "+".join(subset)
