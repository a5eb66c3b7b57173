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
from pathlib import Path
from typing import Sequence

from mmjsd.cli import json_arg, main_guard
from mmjsd.config import RAW_SOURCES, CelebABuildConfig, MSTBuildConfig, from_dict
from mmjsd.data import build_celeba, build_mst
from mmjsd.data.hdf5 import SPECS, write_dataset_file
from mmjsd.data.manifest import check_sources, read_manifest
from mmjsd.errors import UserError
from mmjsd.io import canonical_json

log = logging.getLogger("mmjsd.build_dataset")


def build(dataset: str, manifest_paths: Sequence[Path], params: dict, output: Path, workers: int) -> None:
    needed = RAW_SOURCES[dataset]
    if len(manifest_paths) != len(needed):
        raise UserError(f"{dataset} needs the manifests of {', '.join(needed)} (in that order), got {len(manifest_paths)}")
    manifests = {raw: read_manifest(path, raw) for raw, path in zip(needed, manifest_paths)}
    raw_dirs = {raw: Path(m["raw_dir"]) for raw, m in manifests.items()}
    started = time.perf_counter()
    if dataset == "mnist_svhn_text":
        cfg = from_dict(MSTBuildConfig, params, "data.mnist_svhn_text")
        splits, sources = build_mst.build(raw_dirs["mnist"], raw_dirs["svhn"], cfg)
        extra = {}
    else:
        cfg = from_dict(CelebABuildConfig, params, "data.celeba")
        splits, read, names = build_celeba.build(raw_dirs["celeba"], cfg, workers=workers)
        sources, extra = {"celeba": read}, {"attribute_names": names}
    for raw, path in zip(needed, manifest_paths):
        check_sources(path, manifests[raw], sources[raw])
    attrs = {"seed": cfg.seed, "params": canonical_json(params), "sources": sources, **extra}
    write_dataset_file(output, SPECS[dataset], splits, attrs)
    log.info("wrote %s in %.1f s", output, time.perf_counter() - started)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mmjsd.build_dataset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=tuple(SPECS), help="dataset to build")
    parser.add_argument("--manifests", required=True, nargs="+", type=Path, help="raw-data manifests (MST: mnist then svhn; CelebA: celeba)")
    parser.add_argument("--params", required=True, type=json_arg, help="the config block data.<dataset> as JSON")
    parser.add_argument("--output", required=True, type=Path, help="HDF5 file to write")
    parser.add_argument("--workers", type=int, default=1, help="processes decoding CelebA images")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    build(args.dataset, args.manifests, args.params, args.output, args.workers)


if __name__ == "__main__":
    main_guard(main)
