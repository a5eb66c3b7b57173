"""Active units (Burda et al. 2016): the latent dimensions a subset's posterior actually uses.

A dimension d is active for subset S when Var_x(E[z_d | X_S]) > threshold, the variance of
the posterior mean taken over the test items (population variance, float64).
"""

from __future__ import annotations

import torch

from mmjsd.evaluation.runs import EvaluationInputs, MetricResult, derived_seed, encode_rows, rows_protocol, select_rows
from mmjsd.models.distributions import subset_key


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The number of active units of every subset's posterior, over the (seeded subset of the) test split."""
    run, job = inputs.run, inputs.job
    seeds = {"evaluation": job.seed, "test_rows": derived_seed(job.seed, "active_units/test_rows")}
    split = inputs.test_split()
    rows = select_rows(len(split), job.settings.n_test, seeds["test_rows"], "evaluation.active_units.n_test")
    encoded = encode_rows(run.model, split, rows, job.batch_size)
    values = {}
    with torch.inference_mode():
        for subset in run.model.subsets:
            means = run.model.subset_posterior(encoded.encodings, subset).mean.double()
            values[subset_key(subset)] = int((means.var(0, unbiased=False) > job.settings.threshold).sum())
    protocol = {**rows_protocol(rows, len(split)), "threshold": job.settings.threshold}
    return MetricResult(metric_name="active_units", values=values, protocol=protocol, seeds=seeds)
