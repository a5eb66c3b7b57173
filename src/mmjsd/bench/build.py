"""``build``: MNIST-SVHN-Text dataset build time and peak memory at paper scale.

    python -m mmjsd.bench build [--raw-dir DIR] [--pairs-per-image 20] [--output FILE]

Writes paper-scale synthetic raw files (60k/10k MNIST, 73,257/26,032 SVHN) once into
--raw-dir (reused by later runs), acquires them (manifests, in this process), then runs the build step
``python -m mmjsd.build_dataset`` in a child process and reports its wall time, its own
peak resident memory and the output size. Target (issue 2): under 2 minutes and under
4 GB on a 2-core machine, since the pixels are stored once, not 20 times.

The output is a full-scale MST file (1,121,360 training pairs at 20 pairs per image):
``memory`` and ``training`` take it as --data. --scale shrinks every image count (for
tests); the default raw and output paths then get their own directories.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmjsd import acquire
from mmjsd.bench import ENVIRONMENT_COLUMNS, PAPER_MST_FILE, environment, print_table, run_child, write_csv
from mmjsd.core.config import PAPER_SCALE_COUNTS, SyntheticCounts
from mmjsd.core.errors import UserError
from mmjsd.data import synthetic
from mmjsd.data.raw import MNIST_FILES, SVHN_FILES

COLUMNS = (
    "scale",
    "pairs_per_image",
    "mnist_train",
    "svhn_train",
    "raw_generation_s",
    "build_s",
    "peak_rss_gib",
    "output_mib",
    "output",
) + ENVIRONMENT_COLUMNS


def scaled_counts(scale: float) -> SyntheticCounts:
    """Paper-scale image counts times ``scale`` (at least 10 per split, so every digit appears)."""
    return SyntheticCounts(
        **{name: max(10, round(count * scale)) for name, count in dataclasses.asdict(PAPER_SCALE_COUNTS).items()}
    )


def default_paths(scale: float) -> tuple[Path, Path]:
    """Default (raw directory, output file): the paper-scale ones, or per-scale directories for other scales."""
    if scale == 1.0:
        return Path(tempfile.gettempdir()) / "mmjsd-paper-raw", PAPER_MST_FILE
    root = Path(tempfile.gettempdir()) / f"mmjsd-scale-{scale:g}"
    return root / "raw", root / "mnist_svhn_text.h5"


def ensure_raw(raw_dir: Path, counts: SyntheticCounts) -> float:
    """Generate the synthetic raw MNIST and SVHN files unless present; return the seconds it took (0 if cached)."""
    wanted = [raw_dir / f for pair in MNIST_FILES.values() for f in pair] + [raw_dir / f for f in SVHN_FILES.values()]
    if all(p.is_file() for p in wanted):
        return 0.0
    started = time.perf_counter()
    synthetic.generate_mnist(raw_dir, counts.mnist_train, counts.mnist_test, seed=0)
    synthetic.generate_svhn(raw_dir, counts.svhn_train, counts.svhn_test, seed=0)
    return time.perf_counter() - started


def acquire_manifests(raw_dir: Path, workdir: Path) -> list[str]:
    """Run the acquire step (``--source directory``, in this process: it is not
    timed) for MNIST and SVHN; return the manifests."""
    manifests = []
    for name in ("mnist", "svhn"):
        manifest = workdir / f"{name}.json"
        acquire.main(
            ["--dataset", name, "--source", "directory", "--raw-dir", str(raw_dir), "--manifest", str(manifest)]
        )
        manifests.append(str(manifest))
    return manifests


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw-dir", type=Path, help="synthetic raw files, generated once (default: <tmp>/mmjsd-paper-raw)"
    )
    parser.add_argument("--output", type=Path, help=f"MST file to write (default: {PAPER_MST_FILE})")
    parser.add_argument("--pairs-per-image", type=int, default=20)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the paper-scale image counts (tests use ~0.005)"
    )
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/build.csv"), help="CSV to write")


def run(args: argparse.Namespace) -> None:
    raw_dir, output = default_paths(args.scale)
    raw_dir, output = args.raw_dir or raw_dir, args.output or output
    counts = scaled_counts(args.scale)
    generation = ensure_raw(raw_dir, counts)
    with tempfile.TemporaryDirectory(prefix="mmjsd-bench-build-") as workdir:
        manifests = acquire_manifests(raw_dir, Path(workdir))
        params = {"seed": 0, "pairs_per_image": args.pairs_per_image, "max_per_class": 10000, "text_length": 8}
        command = [
            sys.executable,
            "-m",
            "mmjsd.build_dataset",
            "--dataset",
            "mnist_svhn_text",
            "--manifests",
            *manifests,
            "--params",
            json.dumps(params),
            "--output",
            str(output),
        ]
        child = run_child(command)
    if child.exit_code != 0:
        raise UserError(f"the build step failed with exit code {child.exit_code} (its messages are above)")
    row = {
        "scale": args.scale,
        "pairs_per_image": args.pairs_per_image,
        "mnist_train": counts.mnist_train,
        "svhn_train": counts.svhn_train,
        "raw_generation_s": generation,
        "build_s": child.wall_s,
        "peak_rss_gib": child.peak_rss_gib,
        "output_mib": output.stat().st_size / 2**20,
        "output": str(output),
        **environment(torch.device("cpu")),
    }
    print(f"synthetic raw generation: {generation:.1f} s" + (" (cached)" if generation == 0 else ""))
    print_table(
        [row], ("pairs_per_image", "mnist_train", "svhn_train", "build_s", "peak_rss_gib", "output_mib", "load_avg_1m")
    )
    print(f"output: {output}   (targets: under 120 s and under 4 GiB at paper scale on 2 cores)")
    write_csv(args.csv, [row], COLUMNS)
