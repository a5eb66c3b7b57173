"""Step: real-image PRD features of one dataset, computed once for every run's PRD evaluation.

    python -m mmjsd.prd_reference --dataset mnist_svhn_text \\
        --data results/datasets/mnist_svhn_text.h5 \\
        --classifiers results/classifiers/mnist_svhn_text \\
        --params '<PRD settings: {"metric": "prd", "seed": ..., "batch_size": ..., "settings": {...}}>' \\
        --out results/prd_reference/mnist_svhn_text.npz

Writes the features of the real test images of every image modality at the PRD rows
(``evaluation.prd.n_samples`` rows drawn with ``evaluation.seed``) with the configured
extractor: Inception pool3 when ``evaluation.prd.inception_weights`` is set, else the
feature classifiers under --classifiers (``<m>-features/``). The ``.npz`` holds
``features_<m>`` arrays and a ``meta`` key (dataset file sha256, rows, extractor name and
sha256, preprocessing); ``python -m mmjsd.evaluate --metric prd --real-features FILE``
refuses a file whose key does not match. See :mod:`mmjsd.evaluation.features`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from mmjsd.core import registry
from mmjsd.core.cli import add_runtime_arguments, json_arg, main_guard
from mmjsd.core.config import MetricJob, metric_job_from_dict
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file
from mmjsd.core.runtime import resolve_device, set_threads
from mmjsd.evaluation.features import (
    build_extractor,
    compute_real_features,
    prd_rows,
    real_features_key,
    save_real_features,
)
from mmjsd.evaluation.runs import TEST_SPLIT, load_data_split


def write_real_features(
    dataset: str, data: Path, classifiers: Path | None, job: MetricJob, out: Path, device: torch.device
) -> int:
    """Compute and write the real-feature file (see the module docstring); returns the number of rows."""
    extractor = build_extractor(job.settings.inception_weights, classifiers, dataset, device, job.batch_size)
    split = load_data_split(dataset, data, TEST_SPLIT, device)
    rows = prd_rows(len(split), job.settings.n_samples, job.seed)
    features = compute_real_features(extractor, split, rows, job.batch_size)
    save_real_features(out, real_features_key(dataset, sha256_file(data), rows, extractor), features)
    return len(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.prd_reference", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=registry.DATASETS.names())
    parser.add_argument("--data", required=True, type=Path, help="HDF5 dataset built by mmjsd.build_dataset")
    parser.add_argument(
        "--classifiers",
        type=Path,
        help="results/classifiers/<dataset> (needed unless Inception weights are configured)",
    )
    parser.add_argument(
        "--params",
        required=True,
        type=json_arg,
        help="the PRD metric's evaluation settings as JSON (mmjsd.core.config.metric_job_params(evaluation, 'prd'))",
    )
    parser.add_argument("--out", required=True, type=Path, help="the .npz file to write")
    add_runtime_arguments(parser, progress=False)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    job = metric_job_from_dict(args.params)
    if job.metric != "prd":
        raise UserError(
            f"--params are the settings of metric '{job.metric}'; the real-image features need the 'prd' settings"
        )
    write_real_features(args.dataset, args.data, args.classifiers, job, args.out, resolve_device(args.device))


if __name__ == "__main__":
    main_guard(main)
