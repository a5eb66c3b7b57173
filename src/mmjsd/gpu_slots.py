"""GPU slots: pin a job to one GPU before it starts, and never put more on a GPU than it has room for.

    python -m mmjsd.gpu_slots --units U -- COMMAND [ARGS...]
    python -m mmjsd.gpu_slots --list

Snakemake counts resources but does not hand out device ids (snakemake/snakemake#281), so every GPU rule's
shell command starts with this wrapper. Each visible GPU has :data:`UNITS_PER_GPU` slot units, one lock file
each; a job that may share a GPU with ``k - 1`` others takes ``UNITS_PER_GPU / k`` units, all on one GPU. It
holds an exclusive ``flock`` on each of its unit files, sets ``CUDA_VISIBLE_DEVICES`` to that GPU and replaces
itself with COMMAND (``os.execvp``), which inherits the open lock files. The kernel releases the locks when the
job's process ends, however it ends (SIGKILL included): there is no daemon, PID file or clean-up. Mixed job
sizes share GPUs safely, since a unit file is held by one job at a time. A job that finds no GPU with enough
free units waits (logging once why) and takes the GPU with the most free units as soon as one has room.

Which GPUs: ``CUDA_VISIBLE_DEVICES`` when set (so ``CUDA_VISIBLE_DEVICES=0,1 snakemake ...`` restricts a run
to two GPUs), else every GPU ``nvidia-smi -L`` lists. With none, or with ``--units 0`` (a config that pins
the CPU), COMMAND runs unchanged. The job also gets ``MMJSD_GPU_MEMORY_FRACTION`` = its share of the GPU,
which :func:`mmjsd.core.runtime.resolve_device` turns into a cap on torch's memory, so that one job cannot starve
the others on its GPU.

Lock files live in ``$MMJSD_GPU_SLOT_DIR`` (default ``<tmp>/mmjsd-gpu-slots-<uid>``, on the machine's own
disk: ``flock`` is unreliable on network file systems). Inside a SLURM allocation they go to a subdirectory of
the allocation, as device numbers there belong to that allocation alone. Torch-free: it runs before torch
starts, and Snakemake imports it at parse time.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmjsd.core.errors import UserError

#: Slot units of one GPU; a job of a dataset with ``jobs_per_gpu`` k takes 24 / k of them, so k must divide 24.
UNITS_PER_GPU = 24

#: The jobs-per-GPU settings a GPU's units divide into (config key resources.<dataset>.jobs_per_gpu).
JOBS_PER_GPU_CHOICES = tuple(k for k in range(1, UNITS_PER_GPU + 1) if UNITS_PER_GPU % k == 0)

#: Environment variable through which the job learns its share of the GPU (see mmjsd.core.runtime.resolve_device).
MEMORY_FRACTION_VARIABLE = "MMJSD_GPU_MEMORY_FRACTION"
#: Environment variable (comma-separated datasets) through which the workflow tells training jobs that they are packed
#: (:func:`packed_training_group`): SLURM resubmits a failed pack whole, so its members keep their final checkpoint
#: (mmjsd.train). Not a job parameter: changing jobs_per_gpu must not rerun training.
PACKED_DATASETS_VARIABLE = "MMJSD_PACKED_DATASETS"


def job_units(jobs_per_gpu: int) -> int:
    """Units one job takes when ``jobs_per_gpu`` such jobs may share a GPU."""
    if jobs_per_gpu not in JOBS_PER_GPU_CHOICES:
        raise UserError(
            f"jobs per GPU must be one of {list(JOBS_PER_GPU_CHOICES)} (a GPU has {UNITS_PER_GPU} "
            f"slot units), got {jobs_per_gpu}"
        )
    return UNITS_PER_GPU // jobs_per_gpu


def packed_training_group(jobs_per_gpu: int) -> str:
    """The Snakemake group of training jobs that share GPUs ``jobs_per_gpu`` at a time; the SLURM profile packs each
    such group's jobs ``jobs_per_gpu`` to an allocation with one GPU. The name carries the number, so the profile
    sets group-components for every choice without reading the config."""
    return f"train_{jobs_per_gpu}_per_gpu"


def packed_datasets(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The datasets whose training jobs the workflow packs, as it set :data:`PACKED_DATASETS_VARIABLE`."""
    return [name for name in environ.get(PACKED_DATASETS_VARIABLE, "").split(",") if name]


def visible_gpus(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The GPUs jobs may use, as ``CUDA_VISIBLE_DEVICES`` entries: that variable's own entries up to the first
    negative one (CUDA ignores the rest) when it is set, else every GPU ``nvidia-smi -L`` lists, else none."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        gpus = []
        for entry in (entry.strip() for entry in environ["CUDA_VISIBLE_DEVICES"].split(",")):
            if not entry or entry.startswith("-"):
                break
            gpus.append(entry)
        return gpus
    nvidia_smi = shutil.which("nvidia-smi", path=environ.get("PATH", os.defpath))
    if nvidia_smi is None:
        return []
    try:
        listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):  # a driver without GPUs, or one that does not answer
        return []
    return [str(index) for index, _ in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def slot_directory(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the lock files live (module docstring)."""
    base = Path(environ.get("MMJSD_GPU_SLOT_DIR") or Path(tempfile.gettempdir()) / f"mmjsd-gpu-slots-{os.getuid()}")
    return base / f"slurm-{environ['SLURM_JOB_ID']}" if environ.get("SLURM_JOB_ID") else base


def _lock_free_units(directory: Path, gpu: str) -> list[int]:
    """Open descriptors holding every unit of ``gpu`` that nobody else holds (non-blocking flock)."""
    held = []
    for unit in range(UNITS_PER_GPU):
        fd = os.open(directory / f"gpu-{gpu.replace('/', '_')}.unit{unit:02d}", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
        else:
            held.append(fd)
    return held


def try_take(directory: Path, gpus: Sequence[str], units: int) -> tuple[str, list[int]] | None:
    """``units`` units on the GPU with the most free ones (the first such GPU on ties), as (gpu, held descriptors);
    None when no GPU has that many free. The caller holds the directory's mutex, so no other job takes units
    meanwhile: this job locks every free unit to count them and keeps only what it needs."""
    free = {gpu: _lock_free_units(directory, gpu) for gpu in gpus}
    best = max(gpus, key=lambda gpu: len(free[gpu]))
    chosen = free[best][:units] if len(free[best]) >= units else None
    for fd in (fd for held in free.values() for fd in held if chosen is None or fd not in chosen):
        os.close(fd)
    return (best, chosen) if chosen is not None else None


def take(gpus: Sequence[str], units: int, directory: Path, poll_s: float) -> tuple[str, list[int]]:
    """Block until ``units`` units of one GPU are free, then hold them; says once on stderr if it has to wait."""
    directory.mkdir(parents=True, exist_ok=True)
    mutex = os.open(directory / "mutex", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        waiting_since = None
        while True:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            taken = try_take(directory, gpus, units)
            fcntl.flock(mutex, fcntl.LOCK_UN)
            if taken is not None:
                return taken
            if waiting_since is None:
                waiting_since = time.monotonic()
                print(
                    f"gpu_slots: waiting for {units} free units on one of GPUs {','.join(gpus)} ({directory})",
                    file=sys.stderr,
                    flush=True,
                )
            time.sleep(poll_s)
    finally:
        os.close(mutex)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.gpu_slots", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--units",
        type=int,
        default=0,
        help=f"slot units the job takes on one GPU (of {UNITS_PER_GPU}); 0 runs COMMAND as it is",
    )
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="how often a waiting job looks for free units")
    parser.add_argument(
        "--list", action="store_true", help="print the GPUs jobs would use and where their slots live, then exit"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    gpus = visible_gpus()
    if args.list:
        print(f"GPUs: {','.join(gpus) or 'none'}; {UNITS_PER_GPU} units each; slots in {slot_directory()}")
        return
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UserError("no command given: python -m mmjsd.gpu_slots --units U -- COMMAND [ARGS...]")
    if not 0 <= args.units <= UNITS_PER_GPU:
        raise UserError(f"--units must be between 0 and {UNITS_PER_GPU} (one GPU), got {args.units}")
    env = dict(os.environ)
    if args.units and gpus:
        started = time.monotonic()
        gpu, held = take(gpus, args.units, slot_directory(), args.poll_seconds)
        for fd in held:
            os.set_inheritable(fd, True)  # the locks must outlive exec: they are the job's claim on the GPU
        env.update(CUDA_VISIBLE_DEVICES=gpu, **{MEMORY_FRACTION_VARIABLE: f"{args.units / UNITS_PER_GPU:.6g}"})
        print(
            f"gpu_slots: {time.strftime('%Y-%m-%d %H:%M:%S')} GPU {gpu}, {args.units} of {UNITS_PER_GPU} units, "
            f"after {time.monotonic() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    elif args.units:
        print(
            "gpu_slots: no GPU visible (CUDA_VISIBLE_DEVICES, nvidia-smi -L); the job runs unpinned",
            file=sys.stderr,
            flush=True,
        )
    try:
        os.execvpe(command[0], command, env)
    except OSError as err:
        raise UserError(f"cannot run {command[0]!r}: {err}") from err


if __name__ == "__main__":
    from mmjsd.core.cli import main_guard

    main_guard(main)
