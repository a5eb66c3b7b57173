"""Latent-probe evaluator (Table 1, Table 5 left; docs/metrics.md §5.4-5.5, docs/design.md §5).

Representation of a subset S: the posterior **mean** of ``model.subset_posterior(·, S)``.
For a mixture posterior (MMVAE, mmJSD) this is the mixture mean sum_m w_m mu_m, the mean
of the distribution the subset's samples come from; the reference's "joint"
representation picked one expert's mean per row instead (docs/metrics.md §5.4), which is
not a function of the subset alone. For products of experts (MVAE, MoPoE) it is the
product's mean.

Protocol (MoPoE, docs/design.md §5): for each subset a logistic regression is fitted on
``latent_probe.n_train`` random training rows and scored on the whole test split; the
draw is repeated ``latent_probe.draws`` times and ``values``/``std`` hold the mean and
sample std over draws (:mod:`mmjsd.evaluation.probe`). MST scores digit accuracy; CelebA
the mean over the 40 attributes of the per-attribute AP (one probe per attribute).

Only a pool of ``min(N_train, n_train · draws)`` training rows, drawn uniformly without
replacement with a seeded RNG, is encoded (the MST training split has ~1.1 M pairs); the
draws then split the pool into disjoint sets of ``n_train`` rows, so they are independent
uniform draws of the training split (sets overlap only when the split is smaller than the
pool would be).
"""

from __future__ import annotations

import numpy as np
import torch

from mmjsd import registry
from mmjsd.evaluation.probe import probe_accuracy, probe_mean_average_precision
from mmjsd.evaluation.runs import (
    EncodedRows,
    EvaluationInputs,
    MetricResult,
    derived_seed,
    encode_rows,
    load_data_split,
    rows_protocol,
)
from mmjsd.models import MultimodalVAE
from mmjsd.models.distributions import subset_key

TRAIN_SPLIT = "train"

#: The probe per label kind (DatasetSpec.labels) and the name of its score: accuracy, or the mean AP over attributes.
PROBES = {
    "classes": (probe_accuracy, "accuracy"),
    "attributes": (probe_mean_average_precision, "mean_ap_pooled_over_split"),
}


def posterior_means(model: MultimodalVAE, encoded: EncodedRows, subset: tuple[str, ...]) -> np.ndarray:
    """Subset posterior means of the encoded rows, ``[N, D]`` float64."""
    with torch.inference_mode():
        return model.subset_posterior(encoded.encodings, subset).mean.double().cpu().numpy()


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The latent_probe metric file's content; see the module docstring."""
    run, job = inputs.run, inputs.job
    probe_cfg = job.settings
    seeds = {
        "evaluation": job.seed,
        "training_pool": derived_seed(job.seed, "latent_probe/training_pool"),
        "probe_draws": derived_seed(job.seed, "latent_probe/probe_draws"),
    }
    test_split = inputs.test_split()
    test = encode_rows(run.model, test_split, torch.arange(len(test_split)), job.batch_size)
    train_split = load_data_split(run.dataset, inputs.data_path, TRAIN_SPLIT)
    pool_size = min(len(train_split), probe_cfg.n_train * probe_cfg.draws)
    pool_rows = np.random.default_rng(seeds["training_pool"]).choice(len(train_split), size=pool_size, replace=False)
    train = encode_rows(run.model, train_split, torch.from_numpy(np.sort(pool_rows)), job.batch_size)

    probe, score_name = PROBES[registry.dataset(run.dataset).labels]
    train_labels, test_labels = train.labels.cpu().numpy(), test.labels.cpu().numpy()
    values, std = {}, {}
    for subset in run.model.subsets:
        key = subset_key(subset)
        values[key], std[key] = probe(
            posterior_means(run.model, train, subset),
            train_labels,
            posterior_means(run.model, test, subset),
            test_labels,
            n_train=probe_cfg.n_train,
            draws=probe_cfg.draws,
            seed=seeds["probe_draws"],
            max_iter=probe_cfg.max_iter,
        )
    protocol = {
        **rows_protocol(test.rows, len(test_split)),
        "train_split": TRAIN_SPLIT,
        "n_train": probe_cfg.n_train,
        "draws": probe_cfg.draws,
        "max_iter": probe_cfg.max_iter,
        "training_pool": pool_size,
        "representation": "posterior_mean",
        "score": score_name,
    }
    return MetricResult(metric_name="latent_probe", values=values, std=std, protocol=protocol, seeds=seeds)
