"""Step: one metric of one trained run, written as a metric file (docs/file-formats.md).

    python -m mmjsd.evaluate --metric coherence \\
        --run-dir results/runs/corrected/mnist_svhn_text/mmjsd/seed0 \\
        --data results/datasets/mnist_svhn_text.h5 \\
        --classifiers results/classifiers/mnist_svhn_text \\
        --params '{"metric": "coherence", "seed": 0, "batch_size": 256, "settings": {"n_test": null}}' \\
        --out results/runs/corrected/mnist_svhn_text/mmjsd/seed0/metrics/coherence.json

Metrics (one per call; each metric's spec in :mod:`mmjsd.core.registry` names its evaluator, and
plugins add more, docs/extending.md):

* ``latent_probe`` (Tables 1, 5): logistic regression on subset posterior means
  (``probe_eval``); needs no classifiers;
* ``coherence`` (Tables 2, 5): conditional and random generation scored by the coherence
  classifiers ``<classifiers>/<m>/`` (``coherence_eval``);
* ``prd`` (Table 3): PRD of generated vs real images (``prd_eval``) with Inception
  features (``evaluation.prd.inception_weights``) or the feature classifiers
  ``<classifiers>/<m>-features/``; ``--real-features`` is the cached file of
  ``python -m mmjsd.prd_reference`` (computed in memory when omitted);
* ``likelihood`` (Table 4): importance-sampled test log-likelihoods (``likelihood_eval``);
  needs no classifiers.

The file holds ``metric``, ``metric_name``, ``dataset``, ``variant``, ``seed``, ``values``,
``std``, ``protocol``, ``extra``, ``alternatives``, ``versions``, ``seeds``, ``run``
(model.pt sha256 and epoch), ``device`` and, for PRD, ``extractor``. ``protocol.name`` is the
run's protocol (corrected or reference-exact) and ``protocol.departures`` every departure
switch behind the numbers (the run's training switches and the job's evaluation switches,
docs/departures.md); a reference-exact run evaluated with a corrected switch is
refused; ``alternatives`` holds ``values`` with each
evaluation switch flipped alone. Nothing in it depends on time or paths, so the same run,
params and seed give an identical file on the CPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmjsd.core import registry
from mmjsd.core.cli import add_runtime_arguments, json_arg, main_guard
from mmjsd.core.config import metric_job_from_dict
from mmjsd.core.departures import check_protocol
from mmjsd.core.errors import UserError
from mmjsd.core.io import write_json
from mmjsd.core.runtime import resolve_device, set_threads
from mmjsd.evaluation import load_evaluator
from mmjsd.evaluation.runs import EvaluationInputs, MetricResult, evaluation_versions, load_run


def metric_document(metric: str, inputs: EvaluationInputs, result: MetricResult) -> dict[str, Any]:
    """The metric file's JSON object (docs/file-formats.md)."""
    run = inputs.run
    switches = {**run.model.config.departures, **inputs.job.departures}
    check_protocol(run.protocol, switches, f"evaluation of {run.dataset}/{run.variant} seed {run.seed}")
    return {
        "metric": metric,
        "metric_name": result.metric_name,
        "dataset": run.dataset,
        "variant": run.variant,
        "seed": run.seed,
        "values": result.values,
        "std": result.std,
        "protocol": {**result.protocol, "name": run.protocol, "departures": switches},
        "extra": result.extra,
        "alternatives": result.alternatives,
        "versions": evaluation_versions(),
        "seeds": result.seeds,
        "run": {"model_sha256": run.model_sha256, "epoch": run.epoch},
        "device": inputs.device.type,
        **result.document_extra,
    }


def evaluate(metric: str, inputs: EvaluationInputs, out: Path) -> dict[str, Any]:
    """Run one metric's evaluator and write its file atomically; returns the document."""
    document = metric_document(metric, inputs, load_evaluator(metric)(inputs))
    write_json(out, document)
    return document


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--metric", required=True, choices=registry.METRICS.names(), help="the metric (its spec names the evaluator)"
    )
    parser.add_argument(
        "--run-dir",
        required=True,
        type=Path,
        help="results/runs/<protocol>/<dataset>/<variant>/seed<k> (holds model.pt)",
    )
    parser.add_argument("--data", required=True, type=Path, help="HDF5 dataset built by mmjsd.build_dataset")
    parser.add_argument(
        "--classifiers", type=Path, help="results/classifiers/<dataset> (coherence; prd without Inception weights)"
    )
    parser.add_argument("--real-features", type=Path, help="prd only: real-image feature file of mmjsd.prd_reference")
    parser.add_argument(
        "--params",
        required=True,
        type=json_arg,
        help=(
            "the metric's evaluation settings as JSON: metric, seed, batch_size, settings (the metric's config block) "
            "and departures (its evaluation switches); see mmjsd.core.config.metric_job_params"
        ),
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="metric file to write (metrics/<metric>.json in the run directory)"
    )
    add_runtime_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    job = metric_job_from_dict(args.params)
    if job.metric != args.metric:
        raise UserError(f"--params are the settings of metric '{job.metric}', but --metric is '{args.metric}'")
    inputs = EvaluationInputs(
        run=load_run(args.run_dir, resolve_device(args.device)),
        data_path=args.data,
        job=job,
        classifiers_dir=args.classifiers,
        real_features=args.real_features,
        progress=not args.no_progress,
    )
    evaluate(args.metric, inputs, args.out)


if __name__ == "__main__":
    main_guard(main)
