"""Importance-sampled log-likelihood per data point (IWAE estimator; docs/design.md §5, docs/metrics.md §4).

For one data point x and a proposal q (a subset posterior q_S(z | x_S)),

    log p̂(x) = log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k),   z_k ~ q,

(Burda et al. 2016, §3: the k-sample bound L_k). p̂(x) is unbiased for p(x);
log p̂(x) is a lower bound in expectation that tightens as K grows.

Layout: samples are ``[K, B, D]`` and every log-density ``[K, B]``; the log-mean-exp runs
over the K axis **separately for each of the B points**. The reference code reshapes a
sample-major ``[K * B]`` vector to ``(B, K)`` and so averages weights of different data
points (docs/metrics.md §4.4); :func:`sample_major_grouped_log_mean_exp` reproduces that
grouping for the ``importance_sampling_grouping`` departure (docs/departures.md) only.

A proposal follows the subset-posterior protocol of :mod:`mmjsd.models.posteriors`
(``sample(K, generator) -> [K, B, D]``, ``log_prob(z) -> [K, B]``). For a mixture
posterior ``log_prob`` is the full mixture density, so the weights are the
balance-heuristic ones (docs/metrics.md §4.2).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from mmjsd.core.errors import UserError
from mmjsd.models.distributions import log_standard_normal
from mmjsd.models.posteriors import Posterior

#: ``z [K, B, D] -> [K, B]``: a log-density of every sample for every data point.
LogDensityFn = Callable[[torch.Tensor], torch.Tensor]


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log (1/n) sum_i exp(values_i) along ``dim``, computed stably via logsumexp."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


def log_importance_weights(log_lik: torch.Tensor, log_prior: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """log w = log p(x | z) + log p(z) - log q(z), elementwise on ``[K, B]`` (Burda et al. 2016, §3).

    Summed in float64: image log-likelihoods reach thousands of nats (docs/metrics.md §4.5).
    """
    if not log_lik.shape == log_prior.shape == log_q.shape:
        raise ValueError(
            f"log-density shapes differ: log_lik {tuple(log_lik.shape)}, log_prior {tuple(log_prior.shape)}, "
            f"log_q {tuple(log_q.shape)}; all must be [K, B]"
        )
    return log_lik.double() + log_prior.double() - log_q.double()


def importance_sampled_log_likelihood(log_weights: torch.Tensor) -> torch.Tensor:
    """log p̂(x_b) = log-mean-exp over the K samples of point b: ``[K, B] -> [B]`` (docs/metrics.md §4.5)."""
    if log_weights.dim() != 2:
        raise ValueError(f"log importance weights must be [K, B], got shape {tuple(log_weights.shape)}")
    return log_mean_exp(log_weights, dim=0)


def sample_major_grouped_log_mean_exp(log_weights: torch.Tensor) -> torch.Tensor:
    """The official code's grouping of ``[K, B]`` log-weights: ``[B]`` values, each mixing K different points.

    The official sampler lays the weights of one test batch out sample-major (entry k·B + b
    is sample k of point b) and reshapes them to (B, K) before the log-mean-exp over the
    second axis (docs/metrics.md §4.4). Row r of that view holds entries r·K to r·K + K − 1,
    i.e. (k, b) = divmod(i, B): samples of up to K neighbouring points. The values depend
    on B and estimate no single point's likelihood; only the
    ``importance_sampling_grouping`` departure uses them.
    """
    if log_weights.dim() != 2:
        raise ValueError(f"log importance weights must be [K, B], got shape {tuple(log_weights.shape)}")
    num_samples, batch = log_weights.shape
    return log_mean_exp(log_weights.reshape(batch, num_samples), dim=1)


def estimate_log_likelihood(
    log_lik_fn: LogDensityFn,
    proposal: Posterior,
    num_samples: int,
    generator: torch.Generator | None = None,
    log_prior_fn: LogDensityFn = log_standard_normal,
) -> torch.Tensor:
    """Importance-sampled log p(x) of every point of a batch, shape ``[B]``.

    Draws ``z ~ proposal`` as ``[K, B, D]`` in one call, evaluates ``log_lik_fn(z)`` =
    log p(x | z) and ``log_prior_fn(z)`` = log p(z) (default N(0, I)) as ``[K, B]``, and
    returns :func:`importance_sampled_log_likelihood` of the weights. To score several
    targets with the same z (each modality's marginal and the joint, docs/metrics.md §4.5),
    sample once and call :func:`log_importance_weights` per target.

    With a stratified :class:`~mmjsd.models.posteriors.MixturePosterior`, p̂ of a point
    is unbiased only when its K draws cover the components in proportion to their
    weights (equal weights: K a multiple of the number of components, as K = 12 is for
    2 or 3 experts); otherwise the points' draws cover the components unevenly, and
    :func:`mmjsd.evaluation.likelihood_eval.check_stratification` refuses that case.
    """
    if not (isinstance(num_samples, numbers.Integral) and num_samples >= 1):
        raise UserError(
            f"the number of importance samples must be a positive integer, got {num_samples!r}; "
            "set evaluation.likelihood.num_importance_samples (the paper uses 12)"
        )
    z = proposal.sample(int(num_samples), generator)
    log_weights = log_importance_weights(log_lik_fn(z), log_prior_fn(z), proposal.log_prob(z))
    return importance_sampled_log_likelihood(log_weights)
