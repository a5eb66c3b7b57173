"""``training``: samples/s of the training loop, its bare compute step and the reference's loop.

    python -m mmjsd.bench training [--variants mmjsd mvae ...] [--threads 1 2] [--steps 20]

For each variant, on the current device, at batch 256 (--batch-size), four modes:

* ``loop``: :func:`mmjsd.train.train` itself, the production path (index gather,
  float and one-hot conversion on the device, forward, backward, Adam step, device-side
  loss sums and NaN tracking, a host sync every ``log_every`` steps). It runs two epochs
  on a copy of --data whose training split keeps steps × batch random items (MST: pairs;
  every image is kept); the first epoch is the warm-up, the second is timed by train()'s
  own epoch clock (``wall_time_s`` in its log, which includes the per-epoch text re-draw
  and shuffle).
* ``bare``: forward, backward and Adam step on batches already made on the device
  (the same model, optimiser, autocast and compile settings as train()); ``loop`` / ``bare``
  is what our data path and logging cost.
* ``reference``: the reference implementation's loop (:mod:`mmjsd.bench.reference_loop`):
  a per-item Dataset (PIL transforms, per-item Python text one-hot) behind a DataLoader
  with --workers processes (8 in the reference), the batch moved to the device, our
  compute step, and a per-step ``.item()`` of the loss and every term.
* ``reference-bare``: the reference's compute step alone, i.e. ``bare`` plus the per-step
  ``.item()`` reads (on a CPU these are free, on a GPU each one waits for the step).

Both reference modes compute as the reference did, in float32 without torch.compile,
in the default (contiguous) memory layout, with an unfused Adam, whatever --bf16, --compile and --contiguous
say (those switches set the loop's and bare's ``TrainConfig.amp_bf16``, ``compile`` and
``channels_last``), so the loop/reference ratios show the whole gain of the configured
training over the reference's.

``bare``, ``reference`` and ``reference-bare`` run --warmup steps, then time --steps steps.
Ratios printed: loop / reference, loop / reference-bare, loop / bare.

Each row also carries the variant's work per training item, ``mflop_per_sample`` (the
matrix products and convolutions of one float32 step, forward and backward, as
:func:`flop_per_sample` counts them), and the rate the loop achieves,
``loop_gflop_per_s``. Set beside the device's peak, that shows how much a faster loop
could still gain: on a CPU where the loop already runs near the convolution kernels' own
rate, only less arithmetic or cheaper arithmetic (bf16) can.

``memory`` (:func:`run_memory`) lives here too, as it measures a training job.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mmjsd.bench import ENVIRONMENT_COLUMNS, PAPER_MST_FILE, environment, print_table, run_child, write_csv
from mmjsd.bench.reference_loop import logged_compute, reference_loader, reference_steps
from mmjsd.core import registry
from mmjsd.core.config import Config, TrainConfig, load_config
from mmjsd.core.departures import CORRECTED_PROTOCOL
from mmjsd.core.errors import UserError
from mmjsd.core.io import canonical_json, sha256_file
from mmjsd.core.runtime import resolve_device
from mmjsd.data.hdf5 import SPLITS, dataset_layout, read_attrs, read_split, write_dataset_file
from mmjsd.data.readers import load_split
from mmjsd.models import build_model
from mmjsd.train import RunSpec, TrainingStep, train, without_speed_switches

Batch = dict[str, torch.Tensor]

MODES = ("loop", "bare", "reference", "reference-bare")

DEFAULT_DATA = {
    "mnist_svhn_text": Path("results/datasets/mnist_svhn_text.h5"),
    "celeba": Path("results/datasets/celeba.h5"),
}

#: How to make a missing dataset file.
BUILD_HINTS = {
    "mnist_svhn_text": (
        "build the demo-size file with `snakemake results/datasets/mnist_svhn_text.h5 --configfile "
        "workflow/presets/demo.yaml --cores 2` "
        f"or a paper-scale one with `python -m mmjsd.bench build` (writes {PAPER_MST_FILE})"
    ),
    "celeba": "build it with `snakemake results/datasets/celeba.h5 --configfile workflow/presets/demo.yaml --cores 2`",
}

#: The leading dimension that counts a split's training items in each file layout (MST: pairs).
ITEM_DIMENSION = {"mnist_svhn_text": "P", "celeba": "N"}

#: Distinct pre-made batches the bare modes cycle through.
PREMADE_BATCHES = 8

TRAINING_COLUMNS = (
    "dataset",
    "variant",
    "batch_size",
    "steps",
    "warmup",
    "workers",
    "amp_bf16",
    "compile",
    "channels_last",
    "loop_samples_per_s",
    "bare_samples_per_s",
    "reference_samples_per_s",
    "reference_bare_samples_per_s",
    "loop_over_reference",
    "loop_over_reference_bare",
    "loop_over_bare",
    "mflop_per_sample",
    "loop_gflop_per_s",
    "data",
) + ENVIRONMENT_COLUMNS

TABLE_HEADERS = {
    "torch_threads": "threads",
    "loop_samples_per_s": "loop/s",
    "bare_samples_per_s": "bare/s",
    "reference_samples_per_s": "ref/s",
    "reference_bare_samples_per_s": "ref-bare/s",
    "loop_over_reference": "loop/ref",
    "loop_over_reference_bare": "loop/ref-bare",
    "loop_over_bare": "loop/bare",
    "mflop_per_sample": "MFLOP/item",
    "loop_gflop_per_s": "loop GFLOP/s",
    "load_avg_1m": "load",
}


class ComputeStep(TrainingStep):
    """The production training step of one variant on a model built (and seeded) as train() builds it."""

    def __init__(self, dataset: str, variant: str, cfg: TrainConfig, device: torch.device, fused_adam: bool = True):
        torch.manual_seed(0)
        super().__init__(build_model(dataset, variant, cfg).to(device), cfg, device, fused_adam)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def samples_per_second(
    step: Callable[[], object], warmup: int, steps: int, batch_size: int, device: torch.device
) -> float:
    """Throughput of ``step`` (one batch each call): ``warmup`` untimed calls, then ``steps`` timed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - started)


@dataclass
class BenchInputs:
    """What the modes share within one run: settings, device, and the data each mode reads."""

    args: argparse.Namespace
    device: torch.device
    workdir: Path
    subset: Path | None = None  # the loop's training file: steps × batch items of --data
    batches: list[Batch] | None = None  # pre-made device batches for the bare modes
    arrays: dict[str, np.ndarray] | None = None  # the training split's arrays for the reference loader


def item_count(arrays: Mapping[str, np.ndarray], dataset: str) -> int:
    """Training items (MST: pairs) in a split's arrays."""
    first = next(ds for ds in dataset_layout(dataset).datasets if ds.shape[0] == ITEM_DIMENSION[dataset])
    return len(arrays[first.name])


def write_training_subset(
    source: Path, dataset: str, train: Mapping[str, np.ndarray], items: int, destination: Path
) -> None:
    """Copy ``source`` (whose training split ``train`` holds) to ``destination`` keeping ``items`` random training items
    (all images, the whole test split)."""
    spec = dataset_layout(dataset)
    chosen = np.random.default_rng(0).choice(item_count(train, dataset), items, replace=False)
    splits = {split: read_split(source, spec, split) for split in SPLITS if split != "train"}
    splits["train"] = {
        ds.name: train[ds.name][chosen] if ds.shape[0] == ITEM_DIMENSION[dataset] else train[ds.name]
        for ds in spec.datasets
    }
    write_dataset_file(destination, spec, splits, read_attrs(source, spec))


def premade_batches(dataset: str, path: Path, batch_size: int, device: torch.device) -> list[Batch]:
    """Up to :data:`PREMADE_BATCHES` random training batches of ``path``,
    made on ``device`` by the production gather."""
    split = load_split(dataset, path, "train").to(device)
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))
    count = min(PREMADE_BATCHES, len(split) // batch_size)
    return [split.batch(order[i * batch_size : (i + 1) * batch_size])[0] for i in range(count)]


def prepare_inputs(inputs: BenchInputs) -> None:
    """The selected modes' inputs from one read of the training split, after checking it holds warm-up plus timed steps;
    the pre-made batches (bare modes, FLOP count) go through the production reader."""
    args = inputs.args
    arrays = read_split(args.data, dataset_layout(args.dataset), "train")
    needed = (args.steps + args.warmup) * args.batch_size
    if item_count(arrays, args.dataset) < needed:
        raise UserError(
            f"{args.data} has {item_count(arrays, args.dataset)} training items, fewer than (--steps + "
            f"--warmup) × --batch-size = {needed}; "
            f"use fewer steps or a larger file ({BUILD_HINTS[args.dataset]})"
        )
    if "loop" in args.modes:
        inputs.subset = inputs.workdir / "loop-data.h5"
        write_training_subset(args.data, args.dataset, arrays, args.steps * args.batch_size, inputs.subset)
    inputs.batches = premade_batches(args.dataset, args.data, args.batch_size, inputs.device)
    if "reference" in args.modes:
        inputs.arrays = arrays


def measure_loop(variant: str, cfg: TrainConfig, inputs: BenchInputs) -> float:
    """Samples/s of :func:`mmjsd.train.train`'s second epoch (the first warms up) on the loop's subset file."""
    spec = RunSpec(
        inputs.args.dataset,
        variant,
        0,
        dataclasses.replace(cfg, epochs=2),
        inputs.subset,
        sha256_file(inputs.subset),
        CORRECTED_PROTOCOL,
    )
    run_dir = inputs.workdir / "runs" / variant
    rows = train(spec, run_dir / "out", run_dir / "last.pt", inputs.device, progress=False)
    return rows[-1]["steps"] * cfg.batch_size / rows[-1]["wall_time_s"]


def premade_rate(
    variant: str,
    cfg: TrainConfig,
    inputs: BenchInputs,
    step: Callable[[ComputeStep, Batch], object],
    fused_adam: bool = True,
) -> float:
    """Samples/s of ``step(compute, batch)`` cycling through the pre-made device
    batches, with a fresh :class:`ComputeStep`."""
    compute = ComputeStep(inputs.args.dataset, variant, cfg, inputs.device, fused_adam)
    batches = itertools.cycle(inputs.batches)
    return samples_per_second(
        lambda: step(compute, next(batches)), inputs.args.warmup, inputs.args.steps, cfg.batch_size, inputs.device
    )


def measure_bare(variant: str, cfg: TrainConfig, inputs: BenchInputs) -> float:
    """Samples/s of :class:`ComputeStep` alone on pre-made device batches."""
    return premade_rate(variant, cfg, inputs, ComputeStep.__call__)


def measure_reference_bare(variant: str, cfg: TrainConfig, inputs: BenchInputs) -> float:
    """Samples/s of the reference's compute step (ours in float32, eager, plus per-step
    ``.item()`` reads) on pre-made device batches."""
    return premade_rate(variant, without_speed_switches(cfg), inputs, logged_compute, fused_adam=False)


def measure_reference(variant: str, cfg: TrainConfig, inputs: BenchInputs) -> float:
    """Samples/s of the reference's whole loop (float32, eager); its loader's workers start during the warm-up steps."""
    args = inputs.args
    compute = ComputeStep(args.dataset, variant, without_speed_switches(cfg), inputs.device, fused_adam=False)
    loader = reference_loader(args.dataset, inputs.arrays, cfg.batch_size, args.workers)
    with contextlib.closing(reference_steps(compute, loader, inputs.device)) as steps:
        return samples_per_second(lambda: next(steps), args.warmup, args.steps, cfg.batch_size, inputs.device)


MEASURES: dict[str, Callable[[str, TrainConfig, BenchInputs], float]] = {
    "loop": measure_loop,
    "bare": measure_bare,
    "reference": measure_reference,
    "reference-bare": measure_reference_bare,
}


def flop_per_sample(step: Callable[[Batch], object], batch: Batch) -> float:
    """Floating-point operations of one ``step(batch)`` per item of
    ``batch``, as torch's ``FlopCounterMode`` counts them:
    matrix products and convolutions, forward and backward, two per multiply-add; element-wise work is not counted."""
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return counter.get_total_flops() / len(next(iter(batch.values())))


#: Items of the batch whose step is counted: every counted operation's work grows linearly with the batch, so a
#: small batch gives the per-item count at a fraction of a step's cost (a CelebA step at batch 256 is 2.3 TFLOP).
FLOP_COUNT_ITEMS = 16


def measure_flop_per_sample(variant: str, cfg: TrainConfig, inputs: BenchInputs) -> float:
    """:func:`flop_per_sample` of ``variant``'s float32 eager step (autocast and compile leave the count as it is)
    on the first :data:`FLOP_COUNT_ITEMS` items of a pre-made batch."""
    step = ComputeStep(inputs.args.dataset, variant, without_speed_switches(cfg), inputs.device)
    return flop_per_sample(step, {name: value[:FLOP_COUNT_ITEMS] for name, value in inputs.batches[0].items()})


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` when both were measured."""
    return numerator / denominator if numerator and denominator else None


def benchmark_variant(variant: str, cfg: TrainConfig, inputs: BenchInputs) -> dict:
    """One CSV row: every selected mode's samples/s for ``variant``, the ratios, the settings and the environment."""
    args = inputs.args
    rates = {}
    for mode in args.modes:
        rates[mode] = MEASURES[mode](variant, cfg, inputs)
        print(f"  {variant} {mode}: {rates[mode]:.0f} samples/s", file=sys.stderr)
    loop, reference, reference_bare, bare = (
        rates.get(mode) for mode in ("loop", "reference", "reference-bare", "bare")
    )
    mflop = measure_flop_per_sample(variant, cfg, inputs) / 1e6
    return {
        "dataset": args.dataset,
        "variant": variant,
        "batch_size": cfg.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "workers": args.workers,
        "amp_bf16": cfg.amp_bf16,
        "compile": cfg.compile,
        "channels_last": cfg.channels_last,
        **{f"{mode.replace('-', '_')}_samples_per_s": rate for mode, rate in rates.items()},
        "loop_over_reference": ratio(loop, reference),
        "loop_over_reference_bare": ratio(loop, reference_bare),
        "loop_over_bare": ratio(loop, bare),
        "mflop_per_sample": mflop,
        "loop_gflop_per_s": loop * mflop / 1e3 if loop else None,
        "data": str(args.data),
        **environment(inputs.device),
    }


def variant_config(config: Config, dataset: str, variant: str, args: argparse.Namespace) -> TrainConfig:
    """The configured hyper-parameters of ``variant`` with the benchmark's batch size and switches."""
    cfg = config.train_config(dataset, variant)
    return dataclasses.replace(
        cfg,
        batch_size=args.batch_size,
        amp_bf16=cfg.amp_bf16 or args.bf16,
        compile=cfg.compile or args.compile,
        channels_last=cfg.channels_last and not args.contiguous,
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist_svhn_text", choices=registry.DATASETS.names())
    parser.add_argument("--data", type=Path, help="HDF5 dataset (default: results/datasets/<dataset>.h5)")
    parser.add_argument(
        "--config",
        type=Path,
        nargs="+",
        default=[Path("config.yaml")],
        help="config files for the variants' hyper-parameters, later ones win",
    )
    parser.add_argument(
        "--variants", nargs="+", help="variants to measure (default: every configured variant of --dataset)"
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--steps", type=int, default=20, help="timed steps per mode (the loop also runs as many warm-up steps)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (bare and reference modes)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0],
        help="torch CPU thread counts to measure in turn (0 = torch's default)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=8,
        help="DataLoader worker processes of the reference loop (the reference uses 8)",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast (TrainConfig.amp_bf16) in loop and bare; the reference modes stay float32",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the loss (TrainConfig.compile) in loop and bare; the reference modes stay eager",
    )
    parser.add_argument(
        "--contiguous",
        action="store_true",
        help=(
            "contiguous layout (TrainConfig.channels_last false) in loop and bare, to measure what channels-last gains"
        ),
    )
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/training.csv"), help="CSV to write")


def run_training(args: argparse.Namespace) -> None:
    args.data = args.data or DEFAULT_DATA[args.dataset]
    if not args.data.is_file():
        raise UserError(f"dataset file {args.data} does not exist; {BUILD_HINTS[args.dataset]}")
    config = load_config(*args.config)
    variants = args.variants or config.variants(args.dataset)
    configs = {variant: variant_config(config, args.dataset, variant, args) for variant in variants}
    device = resolve_device(args.device)
    default_threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmjsd-bench-training-") as workdir:
        inputs = BenchInputs(args, device, Path(workdir))
        prepare_inputs(inputs)
        for threads in args.threads:
            torch.set_num_threads(threads or default_threads)
            rows += [benchmark_variant(variant, configs[variant], inputs) for variant in variants]
    print(
        f"\n{args.dataset}, batch {args.batch_size}, {args.steps} timed steps, "
        f"{rows[0]['device_name']}; samples/s and ratios"
    )
    print(
        "(targets on a 2-core CPU for mmjsd: loop/ref >= 3 and loop/ref-bare >= 1; on an "
        "H100: loop >= 56,068 samples/s)"
    )
    print_table(
        rows,
        ("variant", "torch_threads")
        + tuple(c for c in TRAINING_COLUMNS if "_over_" in c or c.endswith(("_per_s", "_per_sample")))
        + ("load_avg_1m",),
        TABLE_HEADERS,
    )
    write_csv(args.csv, rows, TRAINING_COLUMNS)


# ----------------------------------------------------------------------------- memory
MEMORY_DESCRIPTION = """\
``memory``: peak host memory of a full-scale MST training job.

    python -m mmjsd.bench build            # once: writes the paper-scale MST file
    python -m mmjsd.bench memory [--data FILE] [--steps 10]

Runs the pipeline's training command (``python -m mmjsd.train``, as the Snakemake rule
does, with the configured hyper-parameters of --variant, one epoch, and its progress bar
updated every step) in a child process on --data, the paper-scale MST file that ``build``
writes (1,121,360 training pairs). Once the progress bar reports --steps steps, after the
whole file is loaded and training has started, the child is stopped and its own peak
resident memory (VmHWM, see :class:`mmjsd.bench.PeakMemory`) is reported. Target: under 3 GB.
"""

MEMORY_COLUMNS = (
    "dataset",
    "variant",
    "batch_size",
    "steps_seen",
    "seconds",
    "peak_rss_gib",
    "target_gib",
    "data",
) + ENVIRONMENT_COLUMNS

#: Host memory target of an MST training job, GB (reported in GiB for comparison: 3e9 B).
MEMORY_TARGET_GIB = 3e9 / 2**30

_PROGRESS = re.compile(r"(\d+)/\d+ \[")


def steps_done(output: str) -> int:
    """The highest step count a tqdm progress bar in ``output`` has shown (0 before the first)."""
    return max((int(count) for count in _PROGRESS.findall(output)), default=0)


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, default=PAPER_MST_FILE, help="paper-scale MST file (default: where `build` writes it)"
    )
    parser.add_argument("--variant", default="mmjsd")
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[Path("config.yaml")], help="config files, later ones win"
    )
    parser.add_argument("--steps", type=int, default=10, help="training steps to run before the job is stopped")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads of the job (the Snakemake rule gives 1)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds after which the job is stopped anyway")
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/memory.csv"), help="CSV to write")


def run_memory(args: argparse.Namespace) -> None:
    if not args.data.is_file():
        raise UserError(f"dataset file {args.data} does not exist; {BUILD_HINTS['mnist_svhn_text']}")
    dataset = "mnist_svhn_text"
    cfg = load_config(*args.config).train_config(dataset, args.variant)
    cfg = dataclasses.replace(cfg, epochs=1, batch_size=args.batch_size, log_every=1)
    with tempfile.TemporaryDirectory(prefix="mmjsd-bench-memory-") as workdir:
        command = [
            sys.executable,
            "-m",
            "mmjsd.train",
            "--dataset",
            dataset,
            "--variant",
            args.variant,
            "--seed",
            "0",
            "--protocol",
            CORRECTED_PROTOCOL,
            "--hparams",
            canonical_json(dataclasses.asdict(cfg)),
            "--data",
            str(args.data),
            "--out-dir",
            f"{workdir}/run",
            "--checkpoint",
            f"{workdir}/last.pt",
            "--device",
            args.device,
            "--threads",
            str(args.threads),
        ]
        child = run_child(command, stop_when=lambda output: steps_done(output) >= args.steps, timeout_s=args.timeout)
    if steps_done(child.output) == 0:
        raise UserError(
            f"the training job ran no step (exit code {child.exit_code}); its last output:\n{child.output[-2000:]}"
        )
    row = {
        "dataset": dataset,
        "variant": args.variant,
        "batch_size": args.batch_size,
        "steps_seen": steps_done(child.output),
        "seconds": child.wall_s,
        "peak_rss_gib": child.peak_rss_gib,
        "target_gib": MEMORY_TARGET_GIB,
        "data": str(args.data),
        **environment(resolve_device(args.device)),
        "torch_threads": args.threads,  # the job's, not this process's
    }
    print_table([row], ("variant", "steps_seen", "seconds", "peak_rss_gib", "target_gib", "load_avg_1m"))
    write_csv(args.csv, [row], MEMORY_COLUMNS)
