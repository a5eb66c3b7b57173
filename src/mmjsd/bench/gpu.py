"""Several jobs on one GPU: aggregate training throughput (``concurrent``), device memory per training job
(``gpu-memory``) and host syncs per step (``syncs``); each subcommand's description says what it measures."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from mmjsd.bench import ENVIRONMENT_COLUMNS, environment, print_table, write_csv
from mmjsd.bench.training import (
    BUILD_HINTS,
    DEFAULT_DATA,
    ComputeStep,
    item_count,
    premade_batches,
    write_training_subset,
)
from mmjsd.core import registry
from mmjsd.core.config import load_config
from mmjsd.core.departures import CORRECTED_PROTOCOL
from mmjsd.core.errors import UserError
from mmjsd.core.io import canonical_json, sha256_file
from mmjsd.core.runtime import resolve_device
from mmjsd.data.hdf5 import dataset_layout, read_split
from mmjsd.data.readers import load_split
from mmjsd.gpu_slots import UNITS_PER_GPU, job_units, visible_gpus
from mmjsd.train import RunSpec, train, without_speed_switches

#: Device memory of a CUDA context with cuBLAS/cuDNN loaded, per process (an assumption: typically 0.3-0.6 GiB).
CUDA_CONTEXT_GIB = 0.5

#: Memory of the GPU the default jobs_per_gpu are sized for (an 80 GB H100 or A100), GiB.
GPU_MEMORY_GIB = 80e9 / 2**30


def add_common_arguments(parser: argparse.ArgumentParser, steps: int) -> None:
    parser.add_argument("--dataset", default="mnist_svhn_text", choices=registry.DATASETS.names())
    parser.add_argument("--data", type=Path, help="HDF5 dataset (default: results/datasets/<dataset>.h5)")
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[Path("config.yaml")], help="config files, later ones win"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=steps, help="training steps per epoch")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def dataset_file(args: argparse.Namespace) -> Path:
    path = args.data or DEFAULT_DATA[args.dataset]
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist; {BUILD_HINTS[args.dataset]}")
    return path


def training_subset(args: argparse.Namespace, workdir: Path) -> Path:
    """A copy of the dataset file whose training split keeps --steps x --batch-size items."""
    source = dataset_file(args)
    arrays = read_split(source, dataset_layout(args.dataset), "train")
    needed = args.steps * args.batch_size
    if item_count(arrays, args.dataset) < needed:
        raise UserError(
            f"{source} has {item_count(arrays, args.dataset)} training items, fewer than "
            f"--steps x --batch-size = {needed}; "
            f"use fewer steps or a larger file ({BUILD_HINTS[args.dataset]})"
        )
    subset = workdir / "subset.h5"
    write_training_subset(source, args.dataset, arrays, needed, subset)
    return subset


# ------------------------------------------------------------------------------- concurrent
CONCURRENT_DESCRIPTION = """\
``concurrent``: aggregate training throughput of 1, 2, 4, 8 jobs at once on one GPU.

    python -m mmjsd.bench concurrent --jobs 1 2 4 8 [--variant mmjsd] [--steps 300] [--data FILE]

For each N, starts N training jobs at once as the workflow does on a workstation: each is
``python -m mmjsd.gpu_slots --units 24/N -- python -m mmjsd.train ...`` on the first visible GPU, so each takes
1/N of its slots and memory. Every job trains two epochs of --steps steps on a copy of --data that keeps
steps x batch training items; the second epoch is timed by train()'s own clock. Aggregate throughput is the
sum of the jobs' second-epoch samples/s (the jobs start together and do equal work, so those epochs overlap);
``vs 1 job`` divides it by the one-job figure of the same invocation. Target (issue 15): at least 3x with
4 jobs on an H100.
"""
CONCURRENT_COLUMNS = (
    "dataset",
    "variant",
    "jobs",
    "batch_size",
    "steps",
    "per_job_samples_per_s",
    "aggregate_samples_per_s",
    "aggregate_over_one",
    "wall_s",
) + ENVIRONMENT_COLUMNS


def add_concurrent_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, steps=300)
    parser.add_argument("--variant", default="mmjsd")
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8],
        help=f"jobs at once on the GPU (each must divide {UNITS_PER_GPU})",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per job (the workflow gives 1)")
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/concurrent.csv"), help="CSV to write")


def epoch_rate(log_csv: Path, batch_size: int) -> float:
    """Samples/s of the last epoch in a run's train_log.csv."""
    with open(log_csv, newline="") as stream:
        last = list(csv.DictReader(stream))[-1]
    return int(last["steps"]) * batch_size / float(last["wall_time_s"])


def run_jobs_at_once(
    count: int, hparams: dict, args: argparse.Namespace, subset: Path, workdir: Path
) -> tuple[list[float], float]:
    """Start ``count`` training jobs at once through the slot wrapper; their last-epoch samples/s and the wall time."""
    gpus = visible_gpus()
    env = dict(os.environ, MMJSD_GPU_SLOT_DIR=str(workdir / "slots"))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[0]  # all on one GPU
    runs = [workdir / f"jobs{count}" / f"job{index}" for index in range(count)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mmjsd.gpu_slots",
                "--units",
                str(job_units(count)),
                "--poll-seconds",
                "0.2",
                "--",
                sys.executable,
                "-m",
                "mmjsd.train",
                "--dataset",
                args.dataset,
                "--variant",
                args.variant,
                "--seed",
                str(index),
                "--protocol",
                CORRECTED_PROTOCOL,
                "--hparams",
                canonical_json(hparams),
                "--data",
                str(subset),
                "--out-dir",
                str(run),
                "--checkpoint",
                str(run / "last.pt"),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--no-progress",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, run in enumerate(runs)
    ]
    errors = [process.communicate()[1] for process in processes]
    wall = time.perf_counter() - started
    failed = [
        (process.returncode, error) for process, error in zip(processes, errors, strict=True) if process.returncode
    ]
    if failed:
        raise UserError(
            f"{len(failed)} of {count} training jobs failed; the first (exit {failed[0][0]}) "
            f"said:\n{failed[0][1][-2000:]}"
        )
    return [epoch_rate(run / "train_log.csv", args.batch_size) for run in runs], wall


def run_concurrent(args: argparse.Namespace) -> None:
    for count in args.jobs:
        job_units(count)  # refuses counts a GPU's units do not divide into, before anything runs
    cfg = load_config(*args.config).train_config(args.dataset, args.variant)
    hparams = dataclasses.asdict(dataclasses.replace(cfg, epochs=2, batch_size=args.batch_size))
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmjsd-bench-concurrent-") as workdir:
        subset = training_subset(args, Path(workdir))
        for count in args.jobs:
            rates, wall = run_jobs_at_once(count, hparams, args, subset, Path(workdir))
            print(f"  {count} jobs: {', '.join(f'{rate:.0f}' for rate in rates)} samples/s each", file=sys.stderr)
            rows.append(
                {
                    "dataset": args.dataset,
                    "variant": args.variant,
                    "jobs": count,
                    "batch_size": args.batch_size,
                    "steps": args.steps,
                    "per_job_samples_per_s": sum(rates) / count,
                    "aggregate_samples_per_s": sum(rates),
                    "wall_s": wall,
                    **environment(device),
                    "torch_threads": args.threads,
                }
            )
    one = next((row["aggregate_samples_per_s"] for row in rows if row["jobs"] == 1), None)
    for row in rows:
        row["aggregate_over_one"] = row["aggregate_samples_per_s"] / one if one else None
    print(
        f"\n{args.dataset} {args.variant}, batch {args.batch_size}, {args.steps} steps per "
        f"epoch, {rows[0]['device_name']}"
    )
    print_table(
        rows,
        ("jobs", "per_job_samples_per_s", "aggregate_samples_per_s", "aggregate_over_one", "wall_s", "load_avg_1m"),
        {
            "per_job_samples_per_s": "per job/s",
            "aggregate_samples_per_s": "aggregate/s",
            "aggregate_over_one": "vs 1 job",
        },
    )
    write_csv(args.csv, rows, CONCURRENT_COLUMNS)


# ------------------------------------------------------------------------------- gpu-memory
MEMORY_DESCRIPTION = """\
``gpu-memory``: estimated device memory of one training job, per variant, from its configuration.

    python -m mmjsd.bench gpu-memory [--dataset mnist_svhn_text] [--variants ...] [--data FILE]

Counts float32 weights, gradients and Adam's two moments (16 bytes per parameter); the activations one step
saves for its backward pass at --batch-size (the tensors autograd keeps, counted by storage on a CPU step at
batches of 8 and 16 and extended linearly, exact for per-item tensors; float32, as configured by default);
the training split of --data, which training moves to the GPU when it takes at most half of its free memory
(pass the paper-scale file for the paper's figure); and 0.5 GiB for the CUDA context and library handles (an
assumption). Set beside 1/jobs_per_gpu of an 80 GB GPU (config resources.<dataset>.jobs_per_gpu), it shows the
margin of the default sharing. Transient kernel workspaces are not counted.
"""
MEMORY_COLUMNS = (
    "dataset",
    "variant",
    "batch_size",
    "parameters",
    "state_gib",
    "activation_gib",
    "split_gib",
    "context_gib",
    "job_gib",
    "jobs_per_gpu",
    "share_gib",
    "share_used",
    "data",
) + ENVIRONMENT_COLUMNS


def saved_activation_bytes(forward: Callable[[], object], exclude: list[torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for the backward pass while ``forward()`` runs, each storage counted once
    and storages of ``exclude`` (the parameters, which are counted as weights) not at all."""
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = forward()
    del result
    return sum(storages.values())


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, steps=0)
    parser.add_argument(
        "--variants", nargs="+", help="variants to estimate (default: every configured variant of --dataset)"
    )
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/gpu_memory.csv"), help="CSV to write")


#: Batch sizes at which the saved activations are counted; their slope gives the per-item bytes.
MEASURED_BATCHES = (8, 16)


def run_memory(args: argparse.Namespace) -> None:
    config = load_config(*args.config)
    data = dataset_file(args)
    split_bytes = load_split(args.dataset, data, "train").nbytes
    cpu = torch.device("cpu")
    batches = premade_batches(args.dataset, data, max(MEASURED_BATCHES), cpu)
    if not batches:
        raise UserError(f"{data} has fewer than {max(MEASURED_BATCHES)} training items; {BUILD_HINTS[args.dataset]}")
    jobs_per_gpu = config.resources[args.dataset].jobs_per_gpu
    rows = []
    for variant in args.variants or config.variants(args.dataset):
        cfg = without_speed_switches(config.train_config(args.dataset, variant))
        step = ComputeStep(args.dataset, variant, cfg, cpu)
        parameters = sum(p.numel() for p in step.parameters)
        saved = [
            saved_activation_bytes(partial(step.loss_fn, {k: v[:size] for k, v in batches[0].items()}), step.parameters)
            for size in MEASURED_BATCHES
        ]
        per_item = (saved[1] - saved[0]) / (MEASURED_BATCHES[1] - MEASURED_BATCHES[0])
        activations = saved[0] + per_item * (args.batch_size - MEASURED_BATCHES[0])
        gib = {
            "state_gib": 16 * parameters / 2**30,
            "activation_gib": activations / 2**30,
            "split_gib": split_bytes / 2**30,
            "context_gib": CUDA_CONTEXT_GIB,
        }
        job = sum(gib.values())
        share = GPU_MEMORY_GIB / jobs_per_gpu
        rows.append(
            {
                "dataset": args.dataset,
                "variant": variant,
                "batch_size": args.batch_size,
                "parameters": parameters,
                **gib,
                "job_gib": job,
                "jobs_per_gpu": jobs_per_gpu,
                "share_gib": share,
                "share_used": job / share,
                "data": str(data),
                **environment(cpu),
            }
        )
    print(
        f"\n{args.dataset}, batch {args.batch_size}: device memory of one training job (GiB), against "
        f"1/{jobs_per_gpu} of an 80 GB GPU"
    )
    print_table(
        rows,
        (
            "variant",
            "parameters",
            "state_gib",
            "activation_gib",
            "split_gib",
            "context_gib",
            "job_gib",
            "share_gib",
            "share_used",
        ),
    )
    write_csv(args.csv, rows, MEMORY_COLUMNS)


# ------------------------------------------------------------------------------- syncs
SYNC_DESCRIPTION = """\
``syncs``: operations that make the host wait for the GPU during one training epoch.

    python -m mmjsd.bench syncs [--variant mmjsd] [--steps 200] [--device cuda]

Trains one epoch of --steps steps under torch.cuda.set_sync_debug_mode("warn") and counts the warnings torch
raises for synchronising operations, by source line. The loop is meant to read the device only every
log_every steps. On a CPU it trains the epoch without the mode (nothing to wait for) and reports none.
"""
SYNC_COLUMNS = ("dataset", "variant", "batch_size", "steps", "syncs", "syncs_per_step", "sites") + ENVIRONMENT_COLUMNS


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, steps=200)
    parser.add_argument("--variant", default="mmjsd")
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/syncs.csv"), help="CSV to write")


def run_syncs(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    cfg = load_config(*args.config).train_config(args.dataset, args.variant)
    cfg = dataclasses.replace(cfg, epochs=1, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="mmjsd-bench-syncs-") as workdir:
        subset = training_subset(args, Path(workdir))
        spec = RunSpec(args.dataset, args.variant, 0, cfg, subset, sha256_file(subset), CORRECTED_PROTOCOL)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                train(spec, Path(workdir) / "run", Path(workdir) / "last.pt", device, progress=False)
            finally:
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    sites = Counter(f"{Path(w.filename).name}:{w.lineno}" for w in syncs)
    row = {
        "dataset": args.dataset,
        "variant": args.variant,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "syncs": len(syncs),
        "syncs_per_step": len(syncs) / args.steps,
        "sites": " ".join(f"{site}x{n}" for site, n in sites.most_common()),
        **environment(device),
    }
    if device.type != "cuda":
        print("no CUDA device: the epoch ran without sync debug mode, so no syncs are reported", file=sys.stderr)
    print_table([row], ("variant", "steps", "syncs", "syncs_per_step", "sites"))
    write_csv(args.csv, [row], SYNC_COLUMNS)


# ------------------------------------------------------------------------------- gpu-summary
SUMMARY_DESCRIPTION = """\\
``gpu-summary``: the Markdown summary of a scripts/gpu_check.sh output directory.

    python -m mmjsd.bench gpu-summary OUT_DIR

Reads the CSVs and logs the check wrote (parts.tsv, training*.csv, epoch_train_log.csv, concurrent.csv,
concurrent_nvidia_smi.csv, syncs.csv) and prints what they say, against the issue's targets, with the MST
study projected from the measured throughput (:func:`study_gpu_hours`). A part that did not run is reported as
missing, never filled in.
"""

#: The issue's targets on an H100: one MST epoch, packed over one job's throughput, the 40-run MST study.
TARGET_EPOCH_S = 20.0
TARGET_PACKED_OVER_ONE = 3.0
TARGET_STUDY_GPU_HOURS = 8.0


def study_gpu_hours(runs: int, epochs: int, items_per_epoch: int, samples_per_s: float) -> float:
    """GPU-hours to train ``runs`` runs of ``epochs`` epochs over ``items_per_epoch`` items each, at an aggregate
    ``samples_per_s`` per GPU (several runs sharing a GPU count once, at their summed rate)."""
    return runs * epochs * items_per_epoch / samples_per_s / 3600


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="the directory scripts/gpu_check.sh wrote")
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[Path("config.yaml")], help="config of the study to project"
    )


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _nvidia_smi_memory_mib(path: Path) -> list[float]:
    """memory.used samples of an ``nvidia-smi --query-gpu=timestamp,memory.used,... --format=csv,nounits`` log."""
    if not path.is_file():
        return []
    with open(path, newline="") as stream:
        samples = [row[1].strip() for row in csv.reader(stream) if len(row) > 1]
    return [float(sample) for sample in samples if sample.replace(".", "", 1).isdigit()]


def run_summary(args: argparse.Namespace) -> None:
    out = args.out_dir
    lines = ["# GPU check (scripts/gpu_check.sh)", ""]
    environment_text = (out / "environment.txt").read_text() if (out / "environment.txt").is_file() else "(missing)"
    lines += ["```", environment_text.strip(), "```", "", "| part | status | seconds |", "|---|---|---|"]
    lines += (
        [f"| {' | '.join(line.split(chr(9)))} |" for line in (out / "parts.tsv").read_text().splitlines()]
        if (out / "parts.tsv").is_file()
        else []
    )
    lines.append("")

    training = _rows(out / "training.csv")
    if training:
        row = training[0]
        lines.append(
            f"Training loop, {row['variant']}, batch {row['batch_size']}, {row['device_name']}: "
            f"loop {float(row['loop_samples_per_s']):,.0f} samples/s, "
            f"bare {float(row['bare_samples_per_s'] or 'nan'):,.0f}, "
            f"reference loop {float(row['reference_samples_per_s'] or 'nan'):,.0f} "
            f"(loop/reference {float(row['loop_over_reference'] or 'nan'):.2f})."
        )
    for path in sorted(out.glob("training_*.csv")):
        for row in _rows(path):
            lines.append(
                f"- loop with bf16={row['amp_bf16']}, compile={row['compile']}: "
                f"{float(row['loop_samples_per_s']):,.0f} samples/s"
            )
    epoch = _rows(out / "epoch_train_log.csv")
    if epoch:
        lines.append(
            f"\nOne MST epoch of mmjsd: {epoch[-1]['steps']} steps in {float(epoch[-1]['wall_time_s']):.1f} s "
            f"(target: under {TARGET_EPOCH_S:.0f} s for 4,380 steps of 256)."
        )

    concurrent = _rows(out / "concurrent.csv")
    if concurrent:
        lines += ["", "| jobs at once | per job samples/s | aggregate samples/s | vs 1 job |", "|---:|---:|---:|---:|"]
        lines += [
            f"| {r['jobs']} | {float(r['per_job_samples_per_s']):,.0f} | {float(r['aggregate_samples_per_s']):,.0f} | "
            f"{float(r['aggregate_over_one'] or 'nan'):.2f} |"
            for r in concurrent
        ]
        lines.append(f"\n(target: at least {TARGET_PACKED_OVER_ONE:.0f}x one job's throughput when packed)")
    used = _nvidia_smi_memory_mib(out / "concurrent_nvidia_smi.csv")
    if used:
        lines.append(
            f"GPU memory in use during the concurrent part (nvidia-smi, every 0.5 s): peak {max(used):,.0f} MiB."
        )

    syncs = _rows(out / "syncs.csv")
    if syncs:
        row = syncs[0]
        lines.append(
            f"\nHost syncs in {row['steps']} steps on {row['device']}: {row['syncs']} ({row['sites'] or 'none'})."
        )

    config = load_config(*args.config)
    runs = len(config.variants("mnist_svhn_text")) * len(config.seeds)
    cfg = config.train_config("mnist_svhn_text", "mmjsd")
    epochs = cfg.epochs
    if epoch and concurrent:
        items = int(epoch[-1]["steps"]) * cfg.batch_size  # the epoch part trains at the configured batch size
        k = config.resources["mnist_svhn_text"].jobs_per_gpu
        rates = {int(r["jobs"]): float(r["aggregate_samples_per_s"]) for r in concurrent}
        lines.append(f"\nMST study projection ({runs} runs x {epochs} epochs x {items:,} items):")
        for jobs in sorted(rates):
            tag = " (the configured jobs_per_gpu)" if jobs == k else ""
            lines.append(
                f"- {jobs} at once{tag}: {study_gpu_hours(runs, epochs, items, rates[jobs]):.1f} GPU-hours "
                f"(target: at most {TARGET_STUDY_GPU_HOURS:.0f})"
            )
    print("\n".join(lines))
