"""Test log-likelihood evaluator (Table 4; docs/metrics.md §4, docs/design.md §5).

For every test point X and every subset S, with proposal q_S = ``model.subset_posterior(·, S)``
and K = ``likelihood.num_importance_samples`` draws (docs/metrics.md §4.1, §4.3):

    log p̂(X) = log (1/K) sum_k p(X | z_k, s_k) p(z_k) prod_{m in S}
    p(s_{k,m}) / (q_S(z_k) prod_{m in S} q(s_{k,m} | x_m))

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
``extra["sem:<key>"]`` the standard errors of the means. By default the log-mean-exp is
over the K axis of each point separately (:mod:`mmjsd.evaluation.likelihood`), not the
reference's cross-point grouping (docs/metrics.md §4.4). The test points are visited in a
seeded random order, as the official test loader shuffles; per-point estimates do not
depend on it, the official grouping (below) does.

Implementation (docs/metrics.md §4.5): the test rows are encoded once; per batch of
``likelihood.batch_size`` points and per subset, all K draws are made at once as
``[K, B, D]`` and the ``[K·B]`` rows are decoded in chunks of :data:`DECODE_CHUNK_ROWS`
against the targets gathered by row (no copies of the batch per sample), in float32;
the weights and the log-sum-exp are in float64. Draw order per (batch, subset), from one
generator: z, the posterior styles of S (canonical order), the prior styles.

Two departures (docs/departures.md) act here, and both are computed from the same draws
and decodings, so the file also reports each flipped alone (``alternatives``):

* ``mixture_proposal_density``: ``reference`` scores each draw of a mixture proposal with the
  density of the component it was drawn from (the official sampler), ``corrected`` with
  the mixture density;
* ``importance_sampling_grouping``: ``reference`` cuts the test points, in order, into
  batches of ``evaluation.batch_size`` (the official test batch, 256) and groups each
  batch's weights as the official code's sample-major reshape does
  (:func:`~mmjsd.evaluation.likelihood.sample_major_grouped_log_mean_exp`; a shorter last
  batch is grouped on its own); ``std`` and ``sem`` are then over the rows of that view.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mmjsd.core.departures import CORRECTED, REFERENCE
from mmjsd.core.errors import UserError
from mmjsd.evaluation.likelihood import (
    importance_sampled_log_likelihood,
    log_importance_weights,
    sample_major_grouped_log_mean_exp,
)
from mmjsd.evaluation.runs import (
    EvaluationInputs,
    MetricResult,
    derived_seed,
    encode_rows,
    rows_protocol,
    select_rows,
    switch_settings,
    torch_generator,
    values_and_alternatives,
)
from mmjsd.models import Encodings, MultimodalVAE
from mmjsd.models.distributions import log_standard_normal, subset_key
from mmjsd.models.posteriors import MixturePosterior, Posterior

#: Rows of the flattened [K·B] draws decoded at once (bounds memory; does not change the numbers).
DECODE_CHUNK_ROWS = 4096

#: Name of the joint estimate in the per-subset weights.
JOINT = "joint"

#: The two departures of this metric (docs/departures.md).
DENSITY = "mixture_proposal_density"
GROUPING = "importance_sampling_grouping"


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


def subset_log_weights(
    model: MultimodalVAE,
    encodings: Encodings,
    data: dict[str, torch.Tensor],
    subset: tuple[str, ...],
    num_samples: int,
    generator: torch.Generator,
    densities: tuple[str, ...] = (CORRECTED,),
) -> dict[str, dict[str, torch.Tensor]]:
    """Log importance weights ``[K, B]`` (float64) with proposal q_S: ``{density: {"joint" or m: weights}}``.

    ``"joint"`` weighs log p̂(X), m the marginal log p̂(x_m). Each value of the
    ``mixture_proposal_density`` switch in ``densities`` scores the same draws: ``corrected``
    with q_S's density, ``reference`` with that of each draw's component.
    """
    proposal = model.subset_posterior(encodings, subset)
    z = proposal.sample(num_samples, generator)
    log_prior = log_standard_normal(z)
    batch = z.shape[1]
    style_posteriors = model.style_posteriors({m: encodings[m] for m in subset})
    posterior_styles = {m: q.sample(num_samples, generator) for m, q in style_posteriors.items()}
    prior_styles = {
        m: s.reshape(num_samples, batch, -1) for m, s in model.prior_styles(num_samples * batch, generator).items()
    }
    styles = {**prior_styles, **posterior_styles}
    style_log_prior = {m: log_standard_normal(s) for m, s in posterior_styles.items()}
    style_log_q = {m: style_posteriors[m].log_prob(s) for m, s in posterior_styles.items()}
    log_liks = decoded_log_likelihoods(model, z, styles, data)

    proposal_density = {CORRECTED: proposal.log_prob, REFERENCE: proposal.component_log_prob}
    weights = {}
    for density in densities:
        log_proposal = proposal_density[density](z)
        per_name = {
            m: log_importance_weights(
                log_lik, log_prior + style_log_prior.get(m, 0.0), log_proposal + style_log_q.get(m, 0.0)
            )
            for m, log_lik in log_liks.items()
        }
        per_name[JOINT] = log_importance_weights(
            sum(log_liks.values()), log_prior + sum(style_log_prior.values()), log_proposal + sum(style_log_q.values())
        )
        weights[density] = per_name
    return weights


class PerPointEstimates:
    """The corrected grouping: log p̂ of each test point from its own K weights, collected in test order."""

    def __init__(self) -> None:
        self.parts: list[torch.Tensor] = []

    def add(self, log_weights: torch.Tensor) -> None:
        self.parts.append(importance_sampled_log_likelihood(log_weights))

    def rows(self) -> torch.Tensor:
        return torch.cat(self.parts)


class OfficialGrouping:
    """The official grouping: weights of consecutive test points cut into batches of ``batch_size`` points.

    Points arrive in test order in pieces of any size; every full batch is reduced by
    :func:`~mmjsd.evaluation.likelihood.sample_major_grouped_log_mean_exp`, and a shorter last
    batch on its own when :meth:`rows` is called.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.pending: list[torch.Tensor] = []
        self.parts: list[torch.Tensor] = []

    def add(self, log_weights: torch.Tensor) -> None:
        self.pending.append(log_weights)
        waiting = torch.cat(self.pending, dim=1)
        full = waiting.shape[1] // self.batch_size * self.batch_size
        for start in range(0, full, self.batch_size):
            self.parts.append(sample_major_grouped_log_mean_exp(waiting[:, start : start + self.batch_size]))
        self.pending = [waiting[:, full:]] if full < waiting.shape[1] else []

    def rows(self) -> torch.Tensor:
        if self.pending:
            self.parts.append(sample_major_grouped_log_mean_exp(torch.cat(self.pending, dim=1)))
            self.pending = []
        return torch.cat(self.parts)


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
        "test_order": derived_seed(job.seed, "likelihood/test_order"),
        "latent_samples": derived_seed(job.seed, "likelihood/latent_samples"),
    }
    split = inputs.test_split()
    rows = select_rows(len(split), lik_cfg.n_test, seeds["test_rows"], "evaluation.likelihood.n_test")
    rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seeds["test_order"]))]
    encoded = encode_rows(model, split, rows, lik_cfg.batch_size)
    for subset in model.subsets:
        check_stratification(model.subset_posterior(encoded.encodings, subset), num_samples, subset)

    settings = list(switch_settings(job.departures).values())
    densities = tuple(dict.fromkeys(s[DENSITY] for s in settings))
    groupings = {CORRECTED: PerPointEstimates, REFERENCE: lambda: OfficialGrouping(job.batch_size)}
    estimates: dict[tuple[str, str], dict[str, PerPointEstimates | OfficialGrouping]] = {
        (s[DENSITY], s[GROUPING]): {} for s in settings
    }
    generator = torch_generator(seeds["latent_samples"], inputs.device)
    with torch.inference_mode():
        for batch in encoded.batches(lik_cfg.batch_size, inputs.progress_title("likelihood")):
            data = encoded.data(batch.rows, inputs.device)
            for subset in model.subsets:
                weights = subset_log_weights(model, batch.encodings, data, subset, num_samples, generator, densities)
                for (density, grouping), collected in estimates.items():
                    for name, log_weights in weights[density].items():
                        key = f"{name}|{subset_key(subset)}"
                        collected.setdefault(key, groupings[grouping]()).add(log_weights.cpu())
    summaries = {
        setting: {key: mean_std_sem(collected.rows().numpy()) for key, collected in per_key.items()}
        for setting, per_key in estimates.items()
    }

    def joint_means(switches: dict[str, str]) -> dict[str, float]:
        summary = summaries[(switches[DENSITY], switches[GROUPING])]
        return {key: mean for key, (mean, _, _) in summary.items() if key.startswith(f"{JOINT}|")}

    values, alternatives = values_and_alternatives(job.departures, joint_means)
    std, extra = {}, {}
    for key, (mean, spread, sem) in summaries[(job.departures[DENSITY], job.departures[GROUPING])].items():
        if key.startswith(f"{JOINT}|"):
            std[key] = spread
        else:
            extra[key], extra[f"std:{key}"] = mean, spread
        extra[f"sem:{key}"] = sem
    reference_grouping = job.departures[GROUPING] == REFERENCE
    protocol = {
        **rows_protocol(rows, len(split)),
        "num_importance_samples": num_samples,
        "estimator": "official_sample_major_grouping" if reference_grouping else "per_point_log_mean_exp",
        "official_grouping_batch_size": job.batch_size,
        "mixture_proposal_density": "drawn_component" if job.departures[DENSITY] == REFERENCE else "full_mixture",
    }
    return MetricResult(
        metric_name="likelihood",
        values=values,
        std=std,
        protocol=protocol,
        seeds=seeds,
        extra=extra,
        alternatives=alternatives,
    )
