"""``evaluation``: evaluation cost per run, seconds per metric on the current device (issue 7).

    python -m mmjsd.bench evaluation --dataset mnist_svhn_text --variant mmjsd \\
        --data results/datasets/mnist_svhn_text.h5 --n-test 2125 \\
        --csv results/benchmarks/evaluation.csv

Trains nothing. Without --run-dir the model has random weights (seeded) with the
configured dimensions of (--dataset, --variant); without --classifiers untrained (seeded)
classifiers of the right architectures are written to a temporary directory. Evaluation
settings come from --config files (later ones win, e.g. ``config.yaml
workflow/presets/demo.yaml``); --n-test sets ``coherence.n_test``, ``likelihood.n_test`` and
``prd.n_samples`` (the latent probe always scores the whole test split). Each metric runs
in this process exactly as ``python -m mmjsd.evaluate`` would (Python start-up and the
metric-file write are not timed); ``prd_reference`` is the real-feature step, timed
separately and reused by ``prd``. Prints a table and writes a CSV with one row per metric.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmjsd.bench import ENVIRONMENT_COLUMNS, environment, print_table, write_csv
from mmjsd.classifiers.loading import save_classifier
from mmjsd.classifiers.networks import build_classifier
from mmjsd.core import registry
from mmjsd.core.cli import add_runtime_arguments
from mmjsd.core.config import Config, EvaluationConfig, load_config
from mmjsd.core.departures import CORRECTED_PROTOCOL
from mmjsd.core.runtime import resolve_device, set_threads
from mmjsd.evaluation import load_evaluator
from mmjsd.evaluation.runs import EvaluationInputs, LoadedRun, load_run
from mmjsd.models import build_model
from mmjsd.prd_reference import write_real_features

COLUMNS = ("metric", "seconds", "n", "dataset", "variant") + ENVIRONMENT_COLUMNS


def random_run(config: Config, dataset: str, variant: str, device: torch.device) -> LoadedRun:
    """A run whose model has seeded random weights and the configured dimensions."""
    torch.manual_seed(0)
    model = build_model(dataset, variant, config.train_config(dataset, variant))
    return LoadedRun(model.to(device).eval(), dataset, variant, 0, 0, "random-weights", CORRECTED_PROTOCOL)


def random_classifiers(root: Path, dataset: str) -> Path:
    """Untrained (seeded) coherence and feature classifiers of every modality under ``root``."""
    torch.manual_seed(0)
    for m in registry.modalities(dataset):
        save_classifier(root / m, build_classifier(dataset, m), dataset, m, "coherence", 0)
    for m in registry.dataset(dataset).feature_modalities:
        save_classifier(root / f"{m}-features", build_classifier(dataset, m), dataset, m, "features", 1)
    return root


def with_test_size(config: EvaluationConfig, n_test: int | None) -> EvaluationConfig:
    """``config`` with coherence/likelihood ``n_test`` and PRD ``n_samples`` set to ``n_test`` (unchanged when None)."""
    if n_test is None:
        return config
    settings = dict(config.settings)
    settings["coherence"] = dataclasses.replace(settings["coherence"], n_test=n_test)
    settings["likelihood"] = dataclasses.replace(settings["likelihood"], n_test=n_test)
    settings["prd"] = dataclasses.replace(settings["prd"], n_samples=n_test)
    return dataclasses.replace(config, settings=settings)


def timed(function, *args) -> tuple[float, object]:
    """Seconds ``function(*args)`` took, and its result."""
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def rows_used(protocol: dict) -> int:
    """The number of test rows a metric used, from its protocol."""
    return protocol.get("n_test", protocol.get("n_samples"))


def benchmark(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """One row per metric (plus ``prd_reference`` before ``prd``), run as ``python -m mmjsd.evaluate`` would."""
    device = resolve_device(args.device)
    full_config = load_config(*args.config)
    run = (
        load_run(args.run_dir, device) if args.run_dir else random_run(full_config, args.dataset, args.variant, device)
    )
    classifiers = args.classifiers or random_classifiers(workdir / "classifiers", run.dataset)
    config = with_test_size(full_config.evaluation, args.n_test)
    common = {"dataset": run.dataset, "variant": run.variant}
    rows = []
    for metric in args.metrics:
        job = config.job(metric, run.dataset, full_config.switches(run.protocol))
        inputs = EvaluationInputs(run=run, data_path=args.data, job=job, classifiers_dir=classifiers)
        if metric == "prd":
            reference = workdir / "real_features.npz"
            seconds, n = timed(write_real_features, run.dataset, args.data, classifiers, job, reference, device)
            rows.append({"metric": "prd_reference", "seconds": seconds, "n": n, **common, **environment(device)})
            inputs = dataclasses.replace(inputs, real_features=reference)
        # the evaluator's import counts, as in a metric job
        seconds, result = timed(lambda metric=metric, inputs=inputs: load_evaluator(metric)(inputs))
        rows.append(
            {"metric": metric, "seconds": seconds, "n": rows_used(result.protocol), **common, **environment(device)}
        )
        print(f"{metric}: {seconds:.1f} s", file=sys.stderr)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist_svhn_text", choices=registry.DATASETS.names())
    parser.add_argument("--variant", default="mmjsd", help="variant whose configured dimensions the random model has")
    parser.add_argument("--data", type=Path, default=Path("results/datasets/mnist_svhn_text.h5"))
    parser.add_argument("--run-dir", type=Path, help="evaluate this trained run instead of a random-weight model")
    parser.add_argument(
        "--classifiers", type=Path, help="results/classifiers/<dataset> (default: untrained classifiers)"
    )
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[Path("config.yaml")], help="config files, later ones win"
    )
    parser.add_argument(
        "--n-test", type=int, help="coherence/likelihood n_test and PRD n_samples (default: as configured)"
    )
    parser.add_argument(
        "--metrics", nargs="+", default=list(registry.METRICS.names()), choices=registry.METRICS.names()
    )
    add_runtime_arguments(parser, progress=False)
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/evaluation.csv"), help="CSV to write")


def run(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="mmjsd-eval-bench-") as workdir:
        rows = benchmark(args, Path(workdir))
    first = rows[0]
    print(
        f"({first['dataset']}, {first['variant']}, {first['device_name']}, {first['torch_threads']} "
        f"threads, load {first['load_avg_1m']})"
    )
    print_table(
        rows + [{"metric": "total", "seconds": sum(row["seconds"] for row in rows)}], ("metric", "n", "seconds")
    )
    write_csv(args.csv, rows, COLUMNS)
