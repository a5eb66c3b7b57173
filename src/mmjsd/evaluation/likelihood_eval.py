"""Test log-likelihood evaluator (Table 4; docs/metrics.md §4, docs/design.md §5).

For every test point X and every subset S, with proposal q_S = ``model.subset_posterior(·, S)``
and K = ``likelihood.num_importance_samples`` draws (docs/metrics.md §4.1, §4.3):

    log p̂(X) = log (1/K) sum_k p(X | z_k, s_k) p(z_k) prod_{m in S} p(s_{k,m}) / (q_S(z_k) prod_{m in S} q(s_{k,m} | x_m))

* z_k ~ q_S; a mixture proposal draws stratified (each point gets K·w_c draws from
  component c) and ``log_prob`` is the full mixture density (balance-heuristic weights,
  docs/design.md §5), so K·w_c must be whole numbers (:func:`check_stratification`);
* styles of modalities in S come from their style posteriors and add log p(s) − log q(s);
  styles of the others come from the prior N(0, I), whose p/q terms cancel;
* log p(X | z, s) = sum_m log p(x_m | z, s_m) (Laplace images, categorical text).

``values["joint|S"]`` is the mean over test points of log p̂(X) (Table 4's "X|S");
``extra["m|S"]`` the mean of the marginal estimate log p̂(x_m), whose weight keeps only
modality m's likelihood and style terms (docs/metrics.md §4.3). ``std`` holds the per-point
standard deviation of each ``values`` key, ``extra["std:m|S"]`` that of the marginals and
``extra["sem:<key>"]`` the standard errors of the means. The log-mean-exp is over the K
axis of each point separately (:mod:`mmjsd.evaluation.likelihood`), not the reference's
cross-point grouping (docs/metrics.md §4.4).

Implementation (docs/metrics.md §4.5): the test rows are encoded once; per batch of
``likelihood.batch_size`` points and per subset, all K draws are made at once as
``[K, B, D]`` and the ``[K·B]`` rows are decoded in chunks of :data:`DECODE_CHUNK_ROWS`
against the targets gathered by row (no copies of the batch per sample), in float32;
the weights and the log-sum-exp are in float64. Draw order per (batch, subset), from one
generator: z, the posterior styles of S (canonical order), the prior styles.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mmjsd.errors import UserError
from mmjsd.evaluation.likelihood import importance_sampled_log_likelihood, log_importance_weights
from mmjsd.evaluation.runs import (
    EvaluationInputs,
    MetricResult,
    derived_seed,
    encode_rows,
    rows_protocol,
    select_rows,
    torch_generator,
)
from mmjsd.models import Encodings, MultimodalVAE
from mmjsd.models.distributions import log_standard_normal, subset_key
from mmjsd.models.posteriors import MixturePosterior, Posterior

#: Rows of the flattened [K·B] draws decoded at once (bounds memory; does not change the numbers).
DECODE_CHUNK_ROWS = 4096

#: Name of the joint estimate in the per-subset weights.
JOINT = "joint"


def check_stratification(posterior: Posterior, num_samples: int, subset: tuple[str, ...]) -> None:
    """UserError unless each point's K stratified draws cover every mixture component in proportion to its weight.

    :class:`~mmjsd.models.posteriors.MixturePosterior` assigns draws to components in
    contiguous blocks of the flattened [K·B] draws; only when K·w_c is a whole number for
    every component does each point get K·w_c draws of component c, which the
    mixture-density weights need to be unbiased (:func:`mmjsd.evaluation.likelihood.estimate_log_likelihood`).
    """
    if not isinstance(posterior, MixturePosterior):
        return
    per_component = num_samples * np.array(posterior.weights)
    if not np.allclose(per_component, np.round(per_component), rtol=0.0, atol=1e-9):
        count = len(per_component)
        raise UserError(
            f"evaluation.likelihood.num_importance_samples = {num_samples} does not split evenly over the {count} "
            f"components of the mixture posterior q(z | {subset_key(subset)}) (weights "
            f"{np.round(posterior.weights, 4).tolist()}): each test point would draw from only some "
            f"components. Use a multiple of {count} (the paper uses 12)"
        )


def decoded_log_likelihoods(
    model: MultimodalVAE, z: torch.Tensor, styles: dict[str, torch.Tensor], data: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """log p(x_m | z_k, s_k,m) for every modality as ``[K, B]``, decoding the [K·B] draws in chunks.

    Row k·B + b of the flattened draws belongs to point b, whose target is gathered by index.
    """
    num_samples, batch = z.shape[:2]
    flat_z = z.reshape(num_samples * batch, -1)
    flat_styles = {m: s.reshape(num_samples * batch, -1) for m, s in styles.items()}
    point = torch.arange(num_samples * batch, device=z.device) % batch
    chunks: dict[str, list[torch.Tensor]] = {m: [] for m in model.modalities}
    for start in range(0, len(flat_z), DECODE_CHUNK_ROWS):
        part = slice(start, start + DECODE_CHUNK_ROWS)
        decoded = model.decode(flat_z[part], {m: s[part] for m, s in flat_styles.items()})
        targets = {m: x[point[part]] for m, x in data.items()}
        for m, log_lik in model.log_likelihoods(decoded, targets).items():
            chunks[m].append(log_lik)
    return {m: torch.cat(parts).reshape(num_samples, batch) for m, parts in chunks.items()}


def subset_log_likelihoods(
    model: MultimodalVAE,
    encodings: Encodings,
    data: dict[str, torch.Tensor],
    subset: tuple[str, ...],
    num_samples: int,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Per-point estimates ``[B]`` (float64) with proposal q_S: ``"joint"`` = log p̂(X) and, per modality m, log p̂(x_m)."""
    proposal = model.subset_posterior(encodings, subset)
    z = proposal.sample(num_samples, generator)
    log_prior, log_proposal = log_standard_normal(z), proposal.log_prob(z)
    batch = z.shape[1]
    style_posteriors = model.style_posteriors({m: encodings[m] for m in subset})
    posterior_styles = {m: q.sample(num_samples, generator) for m, q in style_posteriors.items()}
    prior_styles = {m: s.reshape(num_samples, batch, -1) for m, s in model.prior_styles(num_samples * batch, generator).items()}
    styles = {**prior_styles, **posterior_styles}
    style_log_prior = {m: log_standard_normal(s) for m, s in posterior_styles.items()}
    style_log_q = {m: style_posteriors[m].log_prob(s) for m, s in posterior_styles.items()}
    log_liks = decoded_log_likelihoods(model, z, styles, data)

    estimates = {
        m: log_importance_weights(log_lik, log_prior + style_log_prior.get(m, 0.0), log_proposal + style_log_q.get(m, 0.0))
        for m, log_lik in log_liks.items()
    }
    estimates[JOINT] = log_importance_weights(
        sum(log_liks.values()), log_prior + sum(style_log_prior.values()), log_proposal + sum(style_log_q.values())
    )
    return {name: importance_sampled_log_likelihood(weights) for name, weights in estimates.items()}


def mean_std_sem(points: np.ndarray) -> tuple[float, float, float]:
    """Mean, sample std (ddof=1; 0 for one point) and standard error of the mean of per-point estimates."""
    std = float(points.std(ddof=1)) if len(points) > 1 else 0.0
    return float(points.mean()), std, std / math.sqrt(len(points))


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The likelihood metric file's content; see the module docstring."""
    run, job = inputs.run, inputs.job
    model, lik_cfg = run.model, job.settings
    num_samples = lik_cfg.num_importance_samples
    if num_samples < 1:
        raise UserError(f"evaluation.likelihood.num_importance_samples must be a positive integer, got {num_samples}")
    seeds = {
        "evaluation": job.seed,
        "test_rows": derived_seed(job.seed, "likelihood/test_rows"),
        "latent_samples": derived_seed(job.seed, "likelihood/latent_samples"),
    }
    split = inputs.test_split()
    rows = select_rows(len(split), lik_cfg.n_test, seeds["test_rows"], "evaluation.likelihood.n_test")
    encoded = encode_rows(model, split, rows, lik_cfg.batch_size)
    for subset in model.subsets:
        check_stratification(model.subset_posterior(encoded.encodings, subset), num_samples, subset)

    generator = torch_generator(seeds["latent_samples"], inputs.device)
    points: dict[str, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for batch in encoded.batches(lik_cfg.batch_size, inputs.progress_title("likelihood")):
            data = encoded.data(batch.rows, inputs.device)
            for subset in model.subsets:
                estimates = subset_log_likelihoods(model, batch.encodings, data, subset, num_samples, generator)
                for name, estimate in estimates.items():
                    points.setdefault(f"{name}|{subset_key(subset)}", []).append(estimate.cpu())

    values, std, extra = {}, {}, {}
    for key, parts in points.items():
        mean, spread, sem = mean_std_sem(torch.cat(parts).numpy())
        if key.startswith(f"{JOINT}|"):
            values[key], std[key] = mean, spread
        else:
            extra[key], extra[f"std:{key}"] = mean, spread
        extra[f"sem:{key}"] = sem
    protocol = {
        **rows_protocol(rows, len(split)),
        "num_importance_samples": num_samples,
        "estimator": "per_point_log_mean_exp",
        "mixture_proposal_density": "full_mixture",
    }
    return MetricResult(metric_name="likelihood", values=values, std=std, protocol=protocol, seeds=seeds, extra=extra)
