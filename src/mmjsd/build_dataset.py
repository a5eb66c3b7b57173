"""Step: build a frozen, provenance-stamped HDF5 dataset from raw files.

    python -m mmjsd.build_dataset --dataset mnist_svhn_text \\
        --manifests results/manifests/mnist.json results/manifests/svhn.json \\
        --params '<data.mnist_svhn_text as JSON>' --output results/datasets/mnist_svhn_text.h5

Reads the raw files named by the manifests (whatever source wrote them), checks they
still have the acquired sha256, and writes the HDF5 file atomically. The same raw files
and params give a byte-identical file.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from mmjsd.core import registry
from mmjsd.core.cli import json_arg, main_guard
from mmjsd.core.config import from_dict
from mmjsd.core.errors import UserError
from mmjsd.core.io import canonical_json
from mmjsd.data.hdf5 import BuiltDataset, dataset_layout, write_dataset_file
from mmjsd.data.manifest import check_sources, read_manifest

log = logging.getLogger("mmjsd.build_dataset")


def build(dataset: str, manifest_paths: Sequence[Path], params: dict, output: Path, workers: int) -> None:
    """Run the dataset spec's builder on the raw files of the manifests and write its file layout."""
    spec = registry.dataset(dataset)
    needed = spec.raw_sources
    if len(manifest_paths) != len(needed):
        raise UserError(
            f"{dataset} needs the manifests of {', '.join(needed)} (in that order), got {len(manifest_paths)}"
        )
    manifests = {raw: read_manifest(path, raw) for raw, path in zip(needed, manifest_paths, strict=True)}
    raw_dirs = {raw: Path(m["raw_dir"]) for raw, m in manifests.items()}
    started = time.perf_counter()
    cfg = from_dict(spec.build_settings, params, f"data.{dataset}")
    builder = registry.load_object(spec.builder, f"dataset '{dataset}' builder")
    built: BuiltDataset = builder(raw_dirs, cfg, workers)
    for raw, path in zip(needed, manifest_paths, strict=True):
        check_sources(path, manifests[raw], built.sources[raw])
    attrs = {"seed": cfg.seed, "params": canonical_json(params), "sources": built.sources, **built.attrs}
    write_dataset_file(output, dataset_layout(dataset), built.splits, attrs)
    log.info("wrote %s in %.1f s", output, time.perf_counter() - started)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.build_dataset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=registry.DATASETS.names(), help="dataset to build")
    parser.add_argument(
        "--manifests",
        required=True,
        nargs="+",
        type=Path,
        help="raw-data manifests (MST: mnist then svhn; CelebA: celeba)",
    )
    parser.add_argument("--params", required=True, type=json_arg, help="the config block data.<dataset> as JSON")
    parser.add_argument("--output", required=True, type=Path, help="HDF5 file to write")
    parser.add_argument("--workers", type=int, default=1, help="processes decoding CelebA images")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    build(args.dataset, args.manifests, args.params, args.output, args.workers)


if __name__ == "__main__":
    main_guard(main)
