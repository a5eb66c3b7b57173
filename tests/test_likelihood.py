"""Importance-sampled log-likelihood against a linear-Gaussian model with a closed-form marginal.

Model: z ~ N(0, I_D), x | z ~ N(W z + b, sigma^2 I_P), so x ~ N(b, W W^T + sigma^2 I)
(Bishop 2006, eq. 12.35). With W = U diag(s) and orthonormal U, the exact posterior is
diagonal: var_j = 1 / (1 + s_j^2 / sigma^2), mean_j = var_j s_j u_j^T (x - b) / sigma^2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from mmjsd.core.errors import UserError
from mmjsd.evaluation.likelihood import (
    estimate_log_likelihood,
    importance_sampled_log_likelihood,
    log_importance_weights,
    log_mean_exp,
    sample_major_grouped_log_mean_exp,
)
from mmjsd.evaluation.likelihood_eval import OfficialGrouping
from mmjsd.models.posteriors import GaussianPosterior, MixturePosterior

LATENT_DIM, DATA_DIM, SIGMA = 3, 6, 0.7


class LinearGaussian:
    """The model above with fixed random U and b, scales s = (2, 1, 0.5)."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        basis, _ = np.linalg.qr(rng.normal(size=(DATA_DIM, LATENT_DIM)))
        self.scales = np.array([2.0, 1.0, 0.5])
        self.weight = basis * self.scales  # W = U diag(s)
        self.bias = rng.normal(size=DATA_DIM)

    def exact_log_marginal(self, x: np.ndarray) -> np.ndarray:
        cov = self.weight @ self.weight.T + SIGMA**2 * np.eye(DATA_DIM)
        return stats.multivariate_normal(self.bias, cov).logpdf(x)

    def exact_posterior(self, x: np.ndarray) -> GaussianPosterior:
        var = 1.0 / (1.0 + self.scales**2 / SIGMA**2)
        mean = var * ((x - self.bias) @ self.weight) / SIGMA**2
        logvar = np.log(np.broadcast_to(var, mean.shape).copy())
        return GaussianPosterior(torch.from_numpy(mean), torch.from_numpy(logvar))

    def log_lik_fn(self, x: np.ndarray):
        """z [K, B, D] -> log N(x_b; W z + b, sigma^2 I) as [K, B]."""
        x_t, w_t, b_t = (torch.from_numpy(a) for a in (x, self.weight, self.bias))

        def log_lik(z: torch.Tensor) -> torch.Tensor:
            residual = x_t - (z @ w_t.T + b_t)
            return -0.5 * (residual**2 / SIGMA**2 + math.log(2 * math.pi * SIGMA**2)).sum(-1)

        return log_lik

    def sample_data(self, num_points: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(num_points, LATENT_DIM))
        return z @ self.weight.T + self.bias + SIGMA * rng.normal(size=(num_points, DATA_DIM))


def perturbed(posterior: GaussianPosterior, shift: float, log_scale: float) -> GaussianPosterior:
    return GaussianPosterior(posterior.mu + shift, posterior.logvar + log_scale)


def kl_diag_gaussians(q: GaussianPosterior, p: GaussianPosterior) -> np.ndarray:
    """KL(q || p) per row, closed form, in numpy."""
    mq, vq = q.mu.numpy(), np.exp(q.logvar.numpy())
    mp, vp = p.mu.numpy(), np.exp(p.logvar.numpy())
    return 0.5 * (np.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1.0).sum(-1)


def repeated_estimates(model, x, proposal, num_samples, repeats, seed=0):
    """``repeats`` independent estimates of log p(x) for the single point x, via a batch of copies."""
    batch_x = np.repeat(x[None], repeats, axis=0)
    batch_proposal = GaussianPosterior(proposal.mu.expand(repeats, -1), proposal.logvar.expand(repeats, -1))
    generator = torch.Generator().manual_seed(seed)
    return estimate_log_likelihood(model.log_lik_fn(batch_x), batch_proposal, num_samples, generator).numpy()


# ------------------------------------------------------------------------- the helpers
def test_log_mean_exp_is_per_column_and_stable():
    values = torch.tensor([[-1000.0, 3.0], [-1000.0, 5.0], [-1000.0, 4.0]], dtype=torch.float64)
    expected = [-1000.0, math.log((math.exp(3) + math.exp(5) + math.exp(4)) / 3)]
    np.testing.assert_allclose(log_mean_exp(values, dim=0).numpy(), expected, rtol=1e-12)


def test_weights_reduce_over_samples_for_each_point():
    log_weights = torch.randn(12, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    columns = [np.log(np.mean(np.exp(log_weights[:, b].numpy()))) for b in range(7)]
    np.testing.assert_allclose(importance_sampled_log_likelihood(log_weights).numpy(), columns, rtol=1e-12)


def test_log_importance_weights_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="log_prior"):
        log_importance_weights(torch.zeros(12, 4), torch.zeros(4), torch.zeros(12, 4))


def test_nonpositive_sample_count_raises():
    model = LinearGaussian()
    x = model.sample_data(2, seed=1)
    with pytest.raises(UserError, match="num_importance_samples"):
        estimate_log_likelihood(model.log_lik_fn(x), model.exact_posterior(x), 0)


# ------------------------------------------------------------------------- the estimator
def test_exact_posterior_gives_the_exact_marginal_with_zero_variance():
    model = LinearGaussian()
    x = model.sample_data(16, seed=1)
    generator = torch.Generator().manual_seed(0)
    estimate = estimate_log_likelihood(model.log_lik_fn(x), model.exact_posterior(x), 5, generator)
    np.testing.assert_allclose(estimate.numpy(), model.exact_log_marginal(x), atol=1e-9)


def test_single_sample_equals_the_elbo_of_the_same_draw():
    model = LinearGaussian()
    x = model.sample_data(5, seed=2)
    proposal = perturbed(model.exact_posterior(x), 0.3, 0.2)
    estimate = estimate_log_likelihood(model.log_lik_fn(x), proposal, 1, torch.Generator().manual_seed(7)).numpy()

    z = proposal.sample(1, torch.Generator().manual_seed(7))[0].numpy()
    mu, std = proposal.mu.numpy(), np.exp(0.5 * proposal.logvar.numpy())
    log_lik = stats.norm(z @ model.weight.T + model.bias, SIGMA).logpdf(x).sum(-1)
    elbo = log_lik + stats.norm.logpdf(z).sum(-1) - stats.norm(mu, std).logpdf(z).sum(-1)
    np.testing.assert_allclose(estimate, elbo, rtol=1e-12)


def test_perturbed_proposal_is_unbiased_in_p_and_jensen_biased_in_log_p():
    model = LinearGaussian()
    x = model.sample_data(1, seed=3)[0]
    exact = model.exact_log_marginal(x)
    exact_posterior = model.exact_posterior(x[None])
    proposal = perturbed(exact_posterior, 0.4, 0.5)

    # p̂ / p has mean 1 for any K (importance sampling is unbiased for p(x)).
    ratio = np.exp(repeated_estimates(model, x, proposal, 3, 4000, seed=0) - exact)
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std(ddof=1) / math.sqrt(ratio.size)

    # K = 1: E[log p̂] = log p(x) - KL(q || p(z | x)) exactly, below log p(x) (Jensen).
    single = repeated_estimates(model, x, proposal, 1, 4000, seed=1)
    kl = kl_diag_gaussians(proposal, exact_posterior)[0]
    assert kl > 0.1
    assert abs(single.mean() - (exact - kl)) < 4 * single.std(ddof=1) / math.sqrt(single.size)
    assert single.mean() < exact - 4 * single.std(ddof=1) / math.sqrt(single.size)

    # Large K: log p̂ concentrates on log p(x).
    many = repeated_estimates(model, x, proposal, 400, 200, seed=2)
    assert abs(many.mean() - exact) < 4 * many.std(ddof=1) / math.sqrt(many.size)
    assert single.mean() < many.mean()


def test_mixture_proposal_is_consistent():
    model = LinearGaussian()
    x = model.sample_data(1, seed=4)[0]
    exact = model.exact_log_marginal(x)
    repeats = 2000
    centre = model.exact_posterior(np.repeat(x[None], repeats, axis=0))
    components = [perturbed(centre, 0.5, 0.3), perturbed(centre, -0.5, 0.3), perturbed(centre, 0.0, 1.0)]
    mixture = MixturePosterior(
        torch.stack([c.mu for c in components]),
        torch.stack([c.logvar for c in components]),
        torch.full((3,), 1 / 3, dtype=torch.float64),
    )
    log_lik_fn = model.log_lik_fn(np.repeat(x[None], repeats, axis=0))

    # K a multiple of 3: every point gets equally many draws per component, so p̂ is unbiased.
    ratio = np.exp(estimate_log_likelihood(log_lik_fn, mixture, 12, torch.Generator().manual_seed(0)).numpy() - exact)
    assert abs(ratio.mean() - 1.0) < 4 * ratio.std(ddof=1) / math.sqrt(repeats)

    many = estimate_log_likelihood(log_lik_fn, mixture, 300, torch.Generator().manual_seed(1)).numpy()
    assert abs(many.mean() - exact) < 4 * many.std(ddof=1) / math.sqrt(repeats)


def test_each_point_gets_its_own_estimate():
    """Points whose log p(x) differ by hundreds of nats: each estimate must sit at its own value.

    The reference's (B, K) reshape of sample-major weights mixes data points; the same
    weights regrouped that way miss by far more than the tolerance.
    """
    model = LinearGaussian()
    num_samples, batch = 12, 24
    direction = model.weight[:, 0] / np.linalg.norm(model.weight[:, 0])
    x = model.bias + np.linspace(0.0, 60.0, batch)[:, None] * direction + 0.3 * model.sample_data(batch, seed=5)
    exact = model.exact_log_marginal(x)
    assert exact.max() - exact.min() > 100

    proposal = perturbed(model.exact_posterior(x), 0.05, 0.05)
    estimate = estimate_log_likelihood(model.log_lik_fn(x), proposal, num_samples, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(estimate.numpy(), exact, atol=0.5)

    z = proposal.sample(num_samples, torch.Generator().manual_seed(0))
    log_prior = torch.from_numpy(stats.norm.logpdf(z.numpy()).sum(-1))
    log_weights = log_importance_weights(model.log_lik_fn(x)(z), log_prior, proposal.log_prob(z))
    misgrouped = log_mean_exp(log_weights.reshape(-1).reshape(batch, num_samples), dim=1).numpy()
    assert np.abs(misgrouped - exact).max() > 10


# ----------------------------------------------------- the official code's conventions (docs/departures.md)
def test_official_grouping_takes_k_consecutive_sample_major_weights_per_row():
    """Built by hand: the flat index i = k·B + b of sample k of point b; row r of
    the (B, K) view holds i = r·K … r·K + K − 1."""
    num_samples, batch = 3, 4
    log_weights = torch.arange(num_samples * batch, dtype=torch.float64).reshape(num_samples, batch) / 7.0  # [K, B]
    expected = []
    for row in range(batch):
        entries = [log_weights[divmod(i, batch)] for i in range(row * num_samples, (row + 1) * num_samples)]
        expected.append(math.log(sum(math.exp(float(e)) for e in entries) / num_samples))
    grouped = sample_major_grouped_log_mean_exp(log_weights)
    np.testing.assert_allclose(grouped.numpy(), expected, rtol=1e-14)
    # row 0 mixes points 0-2 of sample 0; row 1 point 3 of sample 0 with points 0-1 of sample 1
    assert grouped[0].item() == pytest.approx(math.log(sum(math.exp(v / 7.0) for v in (0, 1, 2)) / 3))
    assert not torch.allclose(grouped, importance_sampled_log_likelihood(log_weights))  # not the per-point estimate
    with pytest.raises(ValueError, match=r"\[K, B\]"):
        sample_major_grouped_log_mean_exp(log_weights[0])


def test_official_grouping_cuts_points_arriving_in_pieces_into_batches():
    """Pieces of 3, 5 and 2 points with batches of 4: batches [0, 4), [4, 8) and the short remainder [8, 10)."""
    weights = torch.randn(6, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grouping = OfficialGrouping(batch_size=4)
    for start, end in ((0, 3), (3, 8), (8, 10)):
        grouping.add(weights[:, start:end])
    expected = torch.cat([sample_major_grouped_log_mean_exp(weights[:, a:b]) for a, b in ((0, 4), (4, 8), (8, 10))])
    assert torch.equal(grouping.rows(), expected)


def test_component_density_is_that_of_each_draws_own_component():
    """The official proposal density: draw k of point b scored by the Gaussian it came from, found here by hand."""
    generator = torch.Generator().manual_seed(0)
    components, batch, dim, num_samples = 3, 5, 2, 6
    mus, logvars = (
        torch.randn(components, batch, dim, generator=generator),
        0.5 * torch.randn(components, batch, dim, generator=generator),
    )
    mixture = MixturePosterior(mus, logvars, (1 / 3, 1 / 3, 1 / 3))
    z = mixture.sample(num_samples, torch.Generator().manual_seed(1))
    per_block = num_samples * batch // components  # stratified over the flat k·B + b draws: 10 per component
    for k in range(num_samples):
        for b in range(batch):
            c = (k * batch + b) // per_block
            own = torch.distributions.Normal(mus[c, b], torch.exp(0.5 * logvars[c, b])).log_prob(z[k, b]).sum()
            torch.testing.assert_close(mixture.component_log_prob(z)[k, b], own)
    assert not torch.allclose(mixture.component_log_prob(z), mixture.log_prob(z))
    gaussian = GaussianPosterior(mus[0], logvars[0])
    assert torch.equal(gaussian.component_log_prob(z), gaussian.log_prob(z))


def test_drawn_component_mean_gives_each_row_block_its_components_mean():
    """The official probe's "joint": with three equal weights at B = 256, rows 0-84,
    85-169 and 170-255 take each expert's mean."""
    mus = torch.stack([torch.full((256, 2), float(c)) for c in range(3)]) + torch.randn(
        3, 256, 2, generator=torch.Generator().manual_seed(0)
    )
    mixture = MixturePosterior(mus, torch.zeros_like(mus), (1 / 3, 1 / 3, 1 / 3))
    drawn = mixture.drawn_component_mean()
    assert (
        torch.equal(drawn[:85], mus[0, :85])
        and torch.equal(drawn[85:170], mus[1, 85:170])
        and torch.equal(drawn[170:], mus[2, 170:])
    )
    assert torch.equal(GaussianPosterior(mus[0], torch.zeros(256, 2)).drawn_component_mean(), mus[0])
