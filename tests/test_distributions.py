"""Gaussian math and subset posteriors, checked against closed forms or independent computations.

The independent references are torch.distributions, scipy.stats, numerical integration on
grids and Monte-Carlo estimates with numpy's RNG; none of them calls the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from mmjsd.models.distributions import (
    constant_tensor,
    jensen_shannon_dynamic_prior,
    kl_gaussians,
    kl_standard_normal,
    log_mixture_density,
    log_normal_diag,
    log_standard_normal,
    nonempty_subsets,
    prepend_standard_normal,
    product_of_experts,
    reparameterize,
    stratified_component_index,
    stratified_counts,
    subset_key,
    weighted_kl_standard_normal,
    weighted_product_of_experts,
)
from mmjsd.models.posteriors import GaussianPosterior, MixturePosterior

D = torch.float64


def _gaussians(seed: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=D), 0.8 * torch.randn(shape, generator=gen, dtype=D)


def _normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.distributions.Normal:
    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar))


# ---------------------------------------------------------------------------- KL
def test_kl_standard_normal_matches_torch_distributions():
    mu, logvar = _gaussians(0, (5, 7))
    standard = _normal(torch.zeros_like(mu), torch.zeros_like(mu))
    expected = torch.distributions.kl_divergence(_normal(mu, logvar), standard).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), expected)


def test_kl_gaussians_matches_torch_distributions():
    mu0, logvar0 = _gaussians(1, (5, 7))
    mu1, logvar1 = _gaussians(2, (5, 7))
    expected = torch.distributions.kl_divergence(_normal(mu0, logvar0), _normal(mu1, logvar1)).sum(-1)
    torch.testing.assert_close(kl_gaussians(mu0, logvar0, mu1, logvar1), expected)


def test_kl_one_and_two_argument_forms_match_monte_carlo():
    """E_q[log q(z) - log p(z)] from 400k numpy samples with scipy densities, within 5 standard errors."""
    rng = np.random.default_rng(0)
    mu0, s0 = np.array([0.3, -1.0, 0.5]), np.array([0.7, 1.3, 0.4])
    mu1, s1 = np.array([-0.2, 0.4, 1.0]), np.array([1.1, 0.6, 0.9])
    z = mu0 + s0 * rng.standard_normal((400_000, 3))
    log_q = stats.norm.logpdf(z, mu0, s0).sum(1)
    q = torch.tensor(mu0), torch.tensor(2 * np.log(s0))
    for mu_p, s_p, actual in [
        (np.zeros(3), np.ones(3), kl_standard_normal(*q)),
        (mu1, s1, kl_gaussians(*q, torch.tensor(mu1), torch.tensor(2 * np.log(s1)))),
    ]:
        log_ratio = log_q - stats.norm.logpdf(z, mu_p, s_p).sum(1)
        standard_error = log_ratio.std() / math.sqrt(len(z))
        assert abs(actual.item() - log_ratio.mean()) < 5 * standard_error


def test_weighted_kl_standard_normal_is_the_weighted_sum_of_kls():
    mus, logvars = _gaussians(3, (4, 6, 5))
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=D)
    prior = _normal(torch.zeros(5, dtype=D), torch.zeros(5, dtype=D))
    kls = [torch.distributions.kl_divergence(_normal(mus[k], logvars[k]), prior).sum(-1) for k in range(4)]
    expected = sum(w * kl for w, kl in zip(weights, kls, strict=True))
    torch.testing.assert_close(weighted_kl_standard_normal(mus, logvars, weights), expected)


# --------------------------------------------------------------------- densities
def test_log_normal_diag_and_standard_normal_match_scipy():
    mu, logvar = _gaussians(4, (3, 4))
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=D)
    sd = np.exp(0.5 * logvar.numpy())
    expected = stats.norm.logpdf(z.numpy(), mu.numpy(), sd).sum(1)
    np.testing.assert_allclose(log_normal_diag(z, mu, logvar).numpy(), expected)
    np.testing.assert_allclose(log_standard_normal(z).numpy(), stats.norm.logpdf(z.numpy()).sum(1))


def test_reparameterize_moments_and_generator_reproducibility():
    mu = torch.tensor([[1.0, -2.0]], dtype=D).expand(200_000, 2)
    logvar = torch.tensor([[math.log(0.25), math.log(4.0)]], dtype=D).expand(200_000, 2)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0], dtype=D), atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0], dtype=D), atol=0.03, rtol=0.01)
    again = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


# -------------------------------------------------------------- products of experts
def _grid_moments_1d(densities: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    step = grid[1] - grid[0]
    normalised = densities / (densities.sum() * step)
    mean = (grid * normalised).sum() * step
    return mean, ((grid - mean) ** 2 * normalised).sum() * step


def test_product_of_experts_matches_normalised_grid_product_1d():
    mus, sds = np.array([0.5, -1.0, 2.0]), np.array([0.8, 1.5, 1.1])
    grid = np.linspace(-10, 10, 200_001)
    product = np.prod([stats.norm.pdf(grid, m, s) for m, s in zip(mus, sds, strict=True)], axis=0)
    grid_mean, grid_var = _grid_moments_1d(product, grid)
    experts = torch.tensor(mus).reshape(3, 1, 1), torch.tensor(2 * np.log(sds)).reshape(3, 1, 1)
    mu, logvar = product_of_experts(*experts, eps=0.0)
    assert mu.item() == pytest.approx(grid_mean, abs=1e-8)
    assert math.exp(logvar.item()) == pytest.approx(grid_var, rel=1e-6)
    # The whole normalised product density is that Gaussian, not just its first two moments.
    step = grid[1] - grid[0]
    poe_density = stats.norm.pdf(grid, mu.item(), math.exp(0.5 * logvar.item()))
    np.testing.assert_allclose(product / (product.sum() * step), poe_density, atol=1e-8)


def test_product_of_experts_matches_normalised_grid_product_2d():
    mus = np.array([[0.5, -0.3], [-1.0, 1.2], [0.2, 0.0]])
    sds = np.array([[0.9, 1.4], [1.3, 0.7], [1.0, 1.0]])
    axis = np.linspace(-8, 8, 1601)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    product = np.prod([stats.multivariate_normal(mus[k], np.diag(sds[k] ** 2)).pdf(points) for k in range(3)], axis=0)
    cell = (axis[1] - axis[0]) ** 2
    density = product / (product.sum() * cell)
    grid_mean = (points * density[:, None]).sum(0) * cell
    centred = points - grid_mean
    grid_cov = (centred[:, :, None] * centred[:, None, :] * density[:, None, None]).sum(0) * cell
    mu, logvar = product_of_experts(torch.tensor(mus).unsqueeze(1), torch.tensor(2 * np.log(sds)).unsqueeze(1), eps=0.0)
    np.testing.assert_allclose(mu[0].numpy(), grid_mean, atol=1e-6)
    np.testing.assert_allclose(np.diag(np.exp(logvar[0].numpy())), grid_cov, atol=1e-6)


def test_product_of_experts_default_eps_is_negligible_and_keeps_a_single_expert():
    mus, logvars = _gaussians(6, (1, 4, 3))
    mu, logvar = product_of_experts(mus, logvars)
    torch.testing.assert_close(mu, mus[0])
    torch.testing.assert_close(logvar, logvars[0], atol=1e-6, rtol=0)


def test_weighted_product_of_experts_matches_grid_geometric_mixture():
    """alpha-PoE density is proportional to prod_k q_k(z)^alpha_k."""
    mus, sds, alphas = np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.6, 2.0]), np.array([0.2, 0.5, 0.3])
    grid = np.linspace(-12, 12, 240_001)
    log_density = sum(a * stats.norm.logpdf(grid, m, s) for a, m, s in zip(alphas, mus, sds, strict=True))
    grid_mean, grid_var = _grid_moments_1d(np.exp(log_density - log_density.max()), grid)
    mu, logvar = weighted_product_of_experts(
        torch.tensor(mus).reshape(3, 1, 1), torch.tensor(2 * np.log(sds)).reshape(3, 1, 1), torch.tensor(alphas)
    )
    assert mu.item() == pytest.approx(grid_mean, abs=1e-8)
    assert math.exp(logvar.item()) == pytest.approx(grid_var, rel=1e-6)


def test_weighted_product_of_experts_with_one_dominant_weight_is_that_expert():
    mus, logvars = _gaussians(7, (4, 5, 3))
    for k in range(4):
        weights = torch.zeros(4, dtype=D)
        weights[k] = 1.0
        mu, logvar = weighted_product_of_experts(mus, logvars, weights)
        torch.testing.assert_close(mu, mus[k])
        torch.testing.assert_close(logvar, logvars[k])


def test_prepend_standard_normal_puts_the_prior_first():
    mus, logvars = _gaussians(8, (2, 3, 4))
    with_prior_mus, with_prior_logvars = prepend_standard_normal(mus, logvars)
    assert with_prior_mus.shape == (3, 3, 4)
    assert torch.equal(with_prior_mus[0], torch.zeros(3, 4, dtype=D))
    assert torch.equal(with_prior_logvars[0], torch.zeros(3, 4, dtype=D))
    assert torch.equal(with_prior_mus[1:], mus)


# ------------------------------------------------------------------------ JS term
def test_jensen_shannon_matches_independent_computation_and_is_nonnegative():
    mus, logvars = _gaussians(9, (4, 6, 3))
    pi = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=D)
    divergence, (dyn_mu, dyn_logvar) = jensen_shannon_dynamic_prior(mus, logvars, pi)
    precision = (pi.reshape(4, 1, 1) / torch.exp(logvars)).sum(0)
    expected_mu = (pi.reshape(4, 1, 1) * mus / torch.exp(logvars)).sum(0) / precision
    dynamic = torch.distributions.Normal(expected_mu, precision.rsqrt())
    kls = [torch.distributions.kl_divergence(_normal(mus[k], logvars[k]), dynamic).sum(-1) for k in range(4)]
    expected = sum(p * kl for p, kl in zip(pi, kls, strict=True))
    torch.testing.assert_close(divergence, expected)
    torch.testing.assert_close(dyn_mu, expected_mu)
    torch.testing.assert_close(dyn_logvar, -torch.log(precision))
    assert (divergence >= 0).all()


def test_jensen_shannon_is_zero_when_every_expert_equals_the_dynamic_prior():
    mu, logvar = _gaussians(10, (1, 6, 3))
    pi = torch.full((4,), 0.25, dtype=D)
    divergence, (dyn_mu, dyn_logvar) = jensen_shannon_dynamic_prior(mu.expand(4, 6, 3), logvar.expand(4, 6, 3), pi)
    torch.testing.assert_close(dyn_mu, mu[0])
    torch.testing.assert_close(dyn_logvar, logvar[0])
    torch.testing.assert_close(divergence, torch.zeros(6, dtype=D), atol=1e-12, rtol=0)


# ------------------------------------------------------------ stratified selection
def test_stratified_counts_reference_examples():
    assert stratified_counts(256, [1 / 3] * 3) == [85, 85, 86]
    assert stratified_counts(256, [0.0, 1 / 3, 1 / 3, 1 / 3]) == [0, 85, 85, 86]
    assert stratified_counts(256, [1 / 7] * 7) == [36] * 6 + [40]
    assert stratified_counts(256, [0.5, 0.5]) == [128, 128]
    # 49 · (1/49) is 0.999... in floating point; every component still gets its row.
    assert stratified_counts(49, [1 / 49] * 49) == [1] * 49


def test_stratified_component_index_takes_contiguous_blocks():
    index = stratified_component_index((0.3, 0.3, 0.4), 10, torch.device("cpu"))
    assert index.tolist() == [0] * 3 + [1] * 3 + [2] * 4


# ----------------------------------------------------------------------- subsets
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_nonempty_subsets_count(count):
    subsets = nonempty_subsets([f"m{i}" for i in range(count)])
    assert len(subsets) == 2**count - 1 == len(set(subsets))


def test_nonempty_subsets_documented_order_and_keys():
    subsets = nonempty_subsets(["mnist", "svhn", "text"])
    assert [subset_key(s) for s in subsets] == [
        "mnist",
        "svhn",
        "text",
        "mnist+svhn",
        "mnist+text",
        "svhn+text",
        "mnist+svhn+text",
    ]


# -------------------------------------------------------------------- posteriors
def test_gaussian_posterior_log_prob_and_sampling():
    mu, logvar = _gaussians(11, (3, 2))
    posterior = GaussianPosterior(mu, logvar)
    z = posterior.sample(100_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (100_000, 3, 2)
    torch.testing.assert_close(z.mean(0), mu, atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0).log(), logvar, atol=0.03, rtol=0)
    sd = np.exp(0.5 * logvar.numpy())
    expected = stats.norm.logpdf(z[:5].numpy(), mu.numpy(), sd).sum(-1)
    np.testing.assert_allclose(posterior.log_prob(z[:5]).numpy(), expected)
    assert torch.equal(posterior.mean, mu)


def test_mixture_log_prob_matches_numpy():
    mus, logvars = _gaussians(12, (3, 4, 2))
    weights = torch.tensor([0.2, 0.3, 0.5], dtype=D)
    z = torch.randn(5, 4, 2, generator=torch.Generator().manual_seed(1), dtype=D)
    sd = np.exp(0.5 * logvars.numpy())
    per_component = np.stack(
        [np.log(weights[k].item()) + stats.norm.logpdf(z.numpy(), mus[k].numpy(), sd[k]).sum(-1) for k in range(3)]
    )
    expected = logsumexp(per_component, axis=0)
    np.testing.assert_allclose(MixturePosterior(mus, logvars, weights).log_prob(z).numpy(), expected)
    np.testing.assert_allclose(log_mixture_density(z, mus, logvars, weights).numpy(), expected)


def test_mixture_mean_is_the_weighted_component_mean():
    mus, logvars = _gaussians(13, (3, 4, 2))
    weights = torch.tensor([0.2, 0.3, 0.5], dtype=D)
    torch.testing.assert_close(MixturePosterior(mus, logvars, weights).mean, (weights.reshape(3, 1, 1) * mus).sum(0))


def _separated_mixture(batch: int, weights: list[float]) -> MixturePosterior:
    """Components at means 0, 100, 200, ... with tiny variance, so a draw names its component."""
    count = len(weights)
    mus = (100.0 * torch.arange(count, dtype=D)).reshape(count, 1, 1).expand(count, batch, 2).clone()
    return MixturePosterior(mus, torch.full_like(mus, -20.0), torch.tensor(weights, dtype=D))


def test_mixture_single_sample_is_stratified_85_85_86():
    z = _separated_mixture(256, [1 / 3] * 3).sample(1, generator=torch.Generator().manual_seed(0))
    component = torch.round(z[0, :, 0] / 100).long()
    assert component.tolist() == [0] * 85 + [1] * 85 + [2] * 86


def test_mixture_mopoe_stratified_36x6_plus_40():
    z = _separated_mixture(256, [1 / 7] * 7).sample(1)
    counts = torch.bincount(torch.round(z[0, :, 0] / 100).long(), minlength=7)
    assert counts.tolist() == [36] * 6 + [40]


def test_mixture_twelve_samples_give_every_row_four_per_component():
    z = _separated_mixture(256, [1 / 3] * 3).sample(12)
    component = torch.round(z[..., 0] / 100).long()  # [12, 256]
    for k in range(3):
        assert ((component == k).sum(0) == 4).all()


def test_posterior_sampling_with_generator_is_reproducible_and_leaves_global_rng_alone():
    posterior = _separated_mixture(8, [0.5, 0.5])
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = posterior.sample(3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, posterior.sample(3, generator=torch.Generator().manual_seed(4)))


def test_cached_constants_made_during_inference_stay_usable_in_training():
    with torch.inference_mode():
        constant_tensor((0.5, 0.5), torch.device("cpu"), torch.float32)
        stratified_component_index((0.5, 0.5), 4, torch.device("cpu"))
    x = torch.ones(2, requires_grad=True)
    (x * constant_tensor((0.5, 0.5), torch.device("cpu"), torch.float32)).sum().backward()
    rows = torch.arange(4).reshape(2, 2)
    (
        x.expand(2, 2)[stratified_component_index((0.5, 0.5), 4, torch.device("cpu")).reshape(2, 2), rows % 2]
    ).sum().backward()
    assert x.grad is not None
