"""Latent-probe evaluator (Table 1, Table 5 left; docs/metrics.md §5.4-5.5, docs/design.md §5).

Representation of a subset S: the posterior **mean** of ``model.subset_posterior(·, S)``.
For a mixture posterior (MMVAE, mmJSD) this is the mixture mean sum_m w_m mu_m, the mean
of the distribution the subset's samples come from; for products of experts (MVAE, MoPoE)
it is the product's mean.

Protocol (MoPoE, docs/design.md §5): for each subset a logistic regression is fitted on
``latent_probe.n_train`` random training rows and scored on the whole test split; the
draw is repeated ``latent_probe.draws`` times and ``values``/``std`` hold the mean and
sample std over draws (:mod:`mmjsd.evaluation.probe`). MST scores digit accuracy; CelebA
the mean over the 40 attributes of the per-attribute AP (one probe per attribute).

Only a pool of ``min(N_train, n_train · draws)`` training rows, drawn uniformly without
replacement with a seeded RNG, is encoded (the MST training split has ~1.1 M pairs); the
draws then split the pool into disjoint sets of ``n_train`` rows, so they are independent
uniform draws of the training split (sets overlap only when the split is smaller than the
pool would be). A training split smaller than ``n_train`` (one setting serves every dataset,
and the demo's CelebA has 64 training images) is used whole by every draw; the protocol's
``n_train`` records the rows each probe was fitted on.

Departures (docs/departures.md), each also reported flipped alone in ``alternatives``:

* ``probe_protocol``: ``reference`` is the official protocol. One probe per subset is fitted
  on the run's last training batch (the rows of the final epoch's last batch, with that
  epoch's text offsets, :func:`~mmjsd.core.runtime.last_batch_rows`; encoded by the final model in
  eval mode, where the official code used the means of that step's train-mode forward
  pass). The representation of every row, in that batch and in each test batch of
  ``evaluation.batch_size`` rows, is the mean of the component its stratified draw comes
  from (:meth:`~mmjsd.models.posteriors.MixturePosterior.drawn_component_mean`): for a
  mixture, contiguous blocks of rows carry different experts' means, the official
  "joint"; for a product of experts, its mean. The official code probes the unimodal
  posteriors and this "joint" only; the pairs follow the same rule. One fit, so ``std`` is 0.
* ``per_batch_average_precision`` (CelebA): ``reference`` averages the AP of each test batch of
  ``evaluation.batch_size`` rows instead of pooling the split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mmjsd.core import registry
from mmjsd.core.departures import CORRECTED, REFERENCE
from mmjsd.core.errors import UserError
from mmjsd.core.runtime import last_batch_rows
from mmjsd.evaluation.average_precision import (
    batch_mean_average_precision,
    chance_mean_average_precision,
    mean_average_precision,
)
from mmjsd.evaluation.coherence import conditional_accuracy
from mmjsd.evaluation.probe import (
    Predict,
    attribute_scores,
    draw_predictions,
    mean_and_std,
    predicted_digits,
    single_fit_predictions,
)
from mmjsd.evaluation.runs import (
    EncodedRows,
    EvaluationInputs,
    LoadedRun,
    MetricResult,
    Split,
    derived_seed,
    encode_rows,
    load_data_split,
    rows_protocol,
    values_and_alternatives,
)
from mmjsd.models import MultimodalVAE
from mmjsd.models.distributions import subset_key

TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class Probe:
    """A dataset's probe: what it predicts, how predictions are scored
    (pooled; per batch if defined), the score's name."""

    predict: Predict
    score: Callable[[np.ndarray, np.ndarray], float]
    score_name: str
    per_batch: Callable[[np.ndarray, np.ndarray, int], float] | None = None


#: The probe per label kind (DatasetSpec.labels): digit accuracy, or the mean AP over attributes.
PROBES = {
    "classes": Probe(predicted_digits, conditional_accuracy, "accuracy"),
    "attributes": Probe(attribute_scores, mean_average_precision, "mean_ap", per_batch=batch_mean_average_precision),
}


def posterior_means(model: MultimodalVAE, encoded: EncodedRows, subset: tuple[str, ...]) -> np.ndarray:
    """Subset posterior means of the encoded rows, ``[N, D]`` float64."""
    with torch.inference_mode():
        return model.subset_posterior(encoded.encodings, subset).mean.double().cpu().numpy()


def drawn_component_means(
    model: MultimodalVAE, encoded: EncodedRows, subset: tuple[str, ...], batch_size: int
) -> np.ndarray:
    """Per row, the mean of the subset-posterior component its stratified
    draw comes from, batch by batch, ``[N, D]``."""
    with torch.inference_mode():
        parts = [
            model.subset_posterior(b.encodings, subset).drawn_component_mean() for b in encoded.batches(batch_size)
        ]
    return torch.cat(parts).double().cpu().numpy()


def last_training_batch(run: LoadedRun, split: Split) -> EncodedRows:
    """The run's last training batch as the training loop saw it (final epoch's order and text offsets), encoded.

    ``split`` is the training split; with ``redraw_text`` its texts are redrawn in place to the
    final epoch's offsets.
    """
    cfg = run.model.config
    if run.epoch < 1:
        raise UserError(f"the run of {run.variant} records no finished epoch, so it has no last training batch")
    if cfg.redraw_text:
        split.redraw_text(run.seed, run.epoch)
    rows = last_batch_rows(len(split), cfg.batch_size, run.seed, run.epoch)
    return encode_rows(run.model, split, rows, len(rows))


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The latent_probe metric file's content; see the module docstring."""
    run, job = inputs.run, inputs.job
    probe_cfg, model, probe = job.settings, run.model, PROBES[registry.dataset(run.dataset).labels]
    seeds = {
        "evaluation": job.seed,
        "training_pool": derived_seed(job.seed, "latent_probe/training_pool"),
        "probe_draws": derived_seed(job.seed, "latent_probe/probe_draws"),
    }
    test_split = inputs.test_split()
    test = encode_rows(model, test_split, torch.arange(len(test_split)), job.batch_size)
    train_split = load_data_split(run.dataset, inputs.data_path, TRAIN_SPLIT)
    n_train = min(probe_cfg.n_train, len(train_split))
    pool_size = min(len(train_split), n_train * probe_cfg.draws)
    pool_rows = np.random.default_rng(seeds["training_pool"]).choice(len(train_split), size=pool_size, replace=False)
    train = encode_rows(model, train_split, torch.from_numpy(np.sort(pool_rows)), job.batch_size)
    last_batch = last_training_batch(run, train_split)  # after the pool: it redraws the split's texts
    train_labels, test_labels = train.labels.cpu().numpy(), test.labels.cpu().numpy()

    # Per subset and protocol, the test predictions of every fitted probe (corrected: one per draw).
    predictions: dict[str, dict[str, list[np.ndarray]]] = {CORRECTED: {}, REFERENCE: {}}
    for subset in model.subsets:
        key = subset_key(subset)
        predictions[CORRECTED][key] = draw_predictions(
            probe.predict,
            posterior_means(model, train, subset),
            train_labels,
            posterior_means(model, test, subset),
            n_train=n_train,
            draws=probe_cfg.draws,
            seed=seeds["probe_draws"],
            max_iter=probe_cfg.max_iter,
        )
        predictions[REFERENCE][key] = [
            single_fit_predictions(
                probe.predict,
                drawn_component_means(model, last_batch, subset, len(last_batch)),
                last_batch.labels.cpu().numpy(),
                drawn_component_means(model, test, subset, job.batch_size),
                probe_cfg.max_iter,
            )
        ]

    def scores_under(switches: dict[str, str]) -> dict[str, tuple[float, float]]:
        per_batch = switches.get("per_batch_average_precision") == REFERENCE

        def score(predicted: np.ndarray) -> float:
            return (
                probe.per_batch(predicted, test_labels, job.batch_size)
                if per_batch
                else probe.score(predicted, test_labels)
            )

        return {
            key: mean_and_std([score(p) for p in draws])
            for key, draws in predictions[switches["probe_protocol"]].items()
        }

    values, alternatives = values_and_alternatives(
        job.departures, lambda switches: {key: mean for key, (mean, _) in scores_under(switches).items()}
    )
    std = {key: spread for key, (_, spread) in scores_under(job.departures).items()}
    official = job.departures["probe_protocol"] == REFERENCE
    protocol = {
        **rows_protocol(test.rows, len(test_split)),
        "train_split": TRAIN_SPLIT,
        "n_train": len(last_batch) if official else n_train,
        "draws": 1 if official else probe_cfg.draws,
        "max_iter": probe_cfg.max_iter,
        "training_pool": pool_size,
        "training_rows": "last_training_batch" if official else "random_draws",
        "representation": "drawn_component_mean" if official else "posterior_mean",
        "score": probe.score_name,
    }
    extra = {}
    if probe.per_batch is not None:
        per_batch = job.departures["per_batch_average_precision"] == REFERENCE
        protocol["average_precision"] = "mean_over_batches" if per_batch else "pooled_over_split"
        extra["attribute_prevalence"] = chance_mean_average_precision(test_labels)
    return MetricResult(
        metric_name="latent_probe",
        values=values,
        std=std,
        protocol=protocol,
        seeds=seeds,
        extra=extra,
        alternatives=alternatives,
    )
