"""Step: acquire one raw dataset (MNIST, SVHN or CelebA) and write its manifest.

    python -m mmjsd.acquire --dataset mnist --source synthetic --raw-dir results/raw \\
        --synthetic '{"seed": 0, "sizes": "custom", "counts": {...}}' \\
        --manifest results/manifests/mnist.json

Sources: ``download`` (torchvision, checksummed; CelebA falls back to files placed by
hand), ``directory`` (official files already in --raw-dir), ``synthetic`` (generated in the
official formats from a seed). Whatever the source, the files are then read and
validated by the same readers the dataset builders use, and their sha256 go into the
manifest, which is the step's only declared output.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from mmjsd.core.cli import json_arg, main_guard
from mmjsd.core.config import SyntheticConfig, from_dict
from mmjsd.core.errors import UserError
from mmjsd.data import raw
from mmjsd.data.build_celeba import hash_all_images, partition_digests
from mmjsd.data.manifest import RAW_DATASETS, write_manifest

log = logging.getLogger("mmjsd.acquire")


def generate_synthetic(dataset: str, raw_dir: Path, cfg: SyntheticConfig, workers: int) -> None:
    """Write synthetic raw files in the official formats (sizes from ``cfg``)."""
    from mmjsd.data import synthetic

    counts = cfg.resolved_counts()
    if dataset == "mnist":
        synthetic.generate_mnist(raw_dir, counts.mnist_train, counts.mnist_test, cfg.seed)
    elif dataset == "svhn":
        synthetic.generate_svhn(raw_dir, counts.svhn_train, counts.svhn_test, cfg.seed)
    else:
        synthetic.generate_celeba(
            raw_dir, counts.celeba_train, counts.celeba_valid, counts.celeba_test, cfg.seed, workers=workers
        )


def download(dataset: str, raw_dir: Path) -> None:
    """Fetch the official files with torchvision (MD5-checked by torchvision)."""
    import torchvision

    if dataset == "mnist":
        for train in (True, False):
            torchvision.datasets.MNIST(root=str(raw_dir), train=train, download=True)
    elif dataset == "svhn":
        for split in raw.SPLITS:
            torchvision.datasets.SVHN(root=str(raw_dir / "SVHN"), split=split, download=True)
    else:
        download_celeba(raw_dir)


def download_celeba(raw_dir: Path) -> None:
    """Use files placed by hand when present; otherwise try torchvision, then explain what to place where."""
    try:
        raw.read_celeba_index(raw_dir)
        raw.CelebAImageStore(raw_dir)
        log.info("using the CelebA files already in %s", raw.celeba_root(raw_dir))
        return
    except UserError:
        pass
    import torchvision

    try:
        torchvision.datasets.CelebA(root=str(raw_dir), split="all", target_type="attr", download=True)
    except Exception as err:  # network, Drive quota, BadZipFile: all end in the same advice
        root = raw.celeba_root(raw_dir)
        raise UserError(
            f"CelebA download failed ({type(err).__name__}: {err}). " + raw.CELEBA_HOW_TO.format(root=root)
        ) from err


def describe(dataset: str, raw_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Validate the raw files with the builders' readers; return (file → sha256, counts)."""
    files: dict[str, str] = {}
    counts: dict[str, int] = {}
    if dataset in ("mnist", "svhn"):
        reader = raw.read_mnist if dataset == "mnist" else raw.read_svhn
        for split in raw.SPLITS:
            images, labels = reader(raw_dir, split)
            files.update({images.name: images.sha256, labels.name: labels.sha256})
            counts[split] = len(labels.data)
        return files, counts
    index = raw.read_celeba_index(raw_dir)
    raw.CelebAImageStore(raw_dir).check_matches(index, raw_dir)
    files.update(index.sources)
    files.update(partition_digests(index.partitions, hash_all_images(raw_dir, index.image_ids)))
    counts.update({f"partition{p}": int((index.partitions == p).sum()) for p in (0, 1, 2)})
    return files, counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.acquire", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=RAW_DATASETS, help="raw dataset to acquire")
    parser.add_argument(
        "--source", required=True, choices=("download", "directory", "synthetic"), help="config key data.source"
    )
    parser.add_argument("--raw-dir", required=True, type=Path, help="config key data.raw_dir: root of the raw files")
    parser.add_argument(
        "--synthetic", type=json_arg, help="config block data.synthetic as JSON (needed for --source synthetic)"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes for synthetic CelebA rendering")
    parser.add_argument("--manifest", required=True, type=Path, help="manifest JSON to write (the step's output)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.source == "synthetic":
        if args.synthetic is None:
            raise UserError("--source synthetic needs --synthetic (the data.synthetic config block)")
        generate_synthetic(
            args.dataset, args.raw_dir, from_dict(SyntheticConfig, args.synthetic, "data.synthetic"), args.workers
        )
    elif args.source == "download":
        download(args.dataset, args.raw_dir)
    files, counts = describe(args.dataset, args.raw_dir)
    write_manifest(args.manifest, args.dataset, args.source, args.raw_dir, files, counts)
    log.info("%s: %s files validated from %s, counts %s", args.dataset, len(files), args.raw_dir, counts)


if __name__ == "__main__":
    main_guard(main)
