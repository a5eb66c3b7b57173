"""Command line of the benchmark suite: ``python -m mmjsd.bench <subcommand> [options]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mmjsd.bench import build, evaluation, gpu, precision, training
from mmjsd.core.cli import main_guard

DESCRIPTION = """\
Benchmarks of the pipeline (issue "Performance"). Each subcommand prints a table and
writes a CSV (--csv) with its settings, the device and its name, torch and numpy
versions, CPU count, torch threads and the 1-minute load average (taken when the row
is measured, so it includes the benchmark's own threads and worker processes; on a
shared machine, compare it with the load before starting).

  training    samples/s of the training loop (loop), its bare compute step (bare), the
              reference implementation's loop (reference: per-item Dataset, DataLoader
              with 8 workers, per-step .item()) and the reference's compute step
              (reference-bare), per variant, on the current device
  build       MST dataset build at paper scale: wall time, peak RSS, output size; its
              output is the paper-scale MST file that memory and training can use
  evaluation  seconds per evaluation metric for one run
  memory      peak host memory (RSS) of an MST training job on the paper-scale file
  precision   whether bf16, torch.compile and channels-last move the metrics beyond
              seed noise: baseline and switched runs per seed, trained and scored
  concurrent  aggregate training samples/s of N jobs at once on one GPU (N = 1, 2, 4, 8)
  gpu-memory  estimated device memory of one training job, against its share of an 80 GB GPU
  syncs       host syncs during a training epoch (torch.cuda sync debug mode)
  gpu-summary the Markdown summary of a scripts/gpu_check.sh output directory

Targets (issue "Performance"; measured here, never asserted by tests):
  * 2-core CPU, mmJSD on MST, batch 256: the whole training loop runs at least 3x the
    samples/s of the reference implementation's loop (training: loop/ref >= 3) and no
    slower than the reference's bare compute step (training: loop/ref-bare >= 1);
  * H100: one MST epoch (4,380 steps of 256) in under 20 s, i.e. training loop mode at
    >= 56,068 samples/s;
  * peak host memory of an MST training job under 3 GB (memory);
  * paper-scale MST build under 2 minutes and 4 GB on 2 cores (build);
  * H100: 4 MST training jobs at once reach at least 3x one job's samples/s (concurrent).

Run `python -m mmjsd.bench <subcommand> --help` for each subcommand's options.
"""

SUBCOMMANDS = {
    "training": (training.__doc__, training.add_training_arguments, training.run_training),
    "build": (build.__doc__, build.add_arguments, build.run),
    "evaluation": (evaluation.__doc__, evaluation.add_arguments, evaluation.run),
    "memory": (training.MEMORY_DESCRIPTION, training.add_memory_arguments, training.run_memory),
    "precision": (precision.__doc__, precision.add_arguments, precision.run),
    "concurrent": (gpu.CONCURRENT_DESCRIPTION, gpu.add_concurrent_arguments, gpu.run_concurrent),
    "gpu-memory": (gpu.MEMORY_DESCRIPTION, gpu.add_memory_arguments, gpu.run_memory),
    "syncs": (gpu.SYNC_DESCRIPTION, gpu.add_sync_arguments, gpu.run_syncs),
    "gpu-summary": (gpu.SUMMARY_DESCRIPTION, gpu.add_summary_arguments, gpu.run_summary),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the subcommand and its options; ``args.run`` is the subcommand's entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.bench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name, (description, add_arguments, run) in SUBCOMMANDS.items():
        summary = description.strip().splitlines()[0].split(": ", 1)[-1]
        sub = subparsers.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main_guard(main)
