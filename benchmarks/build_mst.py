"""Benchmark: MNIST-SVHN-Text dataset build time and peak memory at paper scale.

    python benchmarks/build_mst.py [--raw-dir /tmp/mmjsd-paper-raw] [--pairs-per-image 20]

Writes paper-scale synthetic raw files (60k/10k MNIST, 73,257/26,032 SVHN) once into
--raw-dir (reused by later runs), then runs the build step in a fresh process and prints
its wall time, peak resident memory and the output size. Target (issue 2): under 2 minutes
and under 4 GB on a 2-core machine, since the pixels are stored once, not 20 times.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmjsd.config import PAPER_SCALE_COUNTS
from mmjsd.data import synthetic
from mmjsd.data.raw import MNIST_FILES, SVHN_FILES


def ensure_raw(raw_dir: Path) -> float:
    """Generate the paper-scale raw files unless present; return the seconds it took (0 if cached)."""
    wanted = [raw_dir / f for pair in MNIST_FILES.values() for f in pair] + [raw_dir / f for f in SVHN_FILES.values()]
    if all(p.is_file() for p in wanted):
        return 0.0
    started = time.perf_counter()
    counts = PAPER_SCALE_COUNTS
    synthetic.generate_mnist(raw_dir, counts.mnist_train, counts.mnist_test, seed=0)
    synthetic.generate_svhn(raw_dir, counts.svhn_train, counts.svhn_test, seed=0)
    return time.perf_counter() - started


def run_step(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of ``python -m <args>`` in a child process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", *args], check=True)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, peak_kib / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=Path(tempfile.gettempdir()) / "mmjsd-paper-raw")
    parser.add_argument("--pairs-per-image", type=int, default=20)
    args = parser.parse_args()
    generation = ensure_raw(args.raw_dir)
    work = Path(tempfile.mkdtemp(prefix="mmjsd-bench-"))
    manifests = []
    for name in ("mnist", "svhn"):
        manifest = work / f"{name}.json"
        subprocess.run([sys.executable, "-m", "mmjsd.acquire", "--dataset", name, "--source", "directory", "--raw-dir", str(args.raw_dir), "--manifest", str(manifest)], check=True)
        manifests.append(str(manifest))
    params = {"seed": 0, "pairs_per_image": args.pairs_per_image, "max_per_class": 10000, "text_length": 8}
    output = work / "mnist_svhn_text.h5"
    wall, peak = run_step(["mmjsd.build_dataset", "--dataset", "mnist_svhn_text", "--manifests", *manifests, "--params", json.dumps(params), "--output", str(output)])
    print(f"synthetic raw generation: {generation:.1f} s" + (" (cached)" if generation == 0 else ""))
    print(f"MST build (pairs_per_image={args.pairs_per_image}): {wall:.1f} s wall, peak RSS {peak:.2f} GiB (max over child processes)")
    print(f"output: {output} ({output.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
