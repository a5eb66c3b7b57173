"""Benchmark suite: ``python -m mmjsd.bench {training,build,evaluation,memory,precision,concurrent,gpu-memory,syncs}``.

Every subcommand prints a table and writes a CSV whose rows carry the subcommand's
settings and the environment of :func:`environment` (device and its name, torch and numpy
versions, CPU count, torch threads, 1-minute load average), so figures from different
machines can be told apart. Run ``python -m mmjsd.bench --help`` for the targets.

This module holds what the subcommands share: the environment columns, CSV and table
output, and :func:`run_child`, which runs a command in a child process and reads that
child's own peak resident memory.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmjsd.core.io import write_text

#: Where ``build`` writes the paper-scale MST file by default, and where ``memory`` reads it.
PAPER_MST_FILE = Path(tempfile.gettempdir()) / "mmjsd-paper-mst" / "mnist_svhn_text.h5"

#: The columns :func:`environment` adds to every row.
ENVIRONMENT_COLUMNS = ("device", "device_name", "torch", "numpy", "cpu_count", "torch_threads", "load_avg_1m")


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def environment(device: torch.device) -> dict[str, object]:
    """The :data:`ENVIRONMENT_COLUMNS` of a row measured now on ``device``."""
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def format_value(value: object) -> str:
    """Table cell text: floats with 2 decimals below 100 and none above, anything else as str."""
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def print_table(rows: Sequence[dict], columns: Sequence[str], headers: Mapping[str, str] | None = None) -> None:
    """Print ``columns`` of ``rows`` as an aligned text table; ``headers`` gives short titles for some columns."""
    titles = [(headers or {}).get(column, column) for column in columns]
    cells = [[format_value(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, title in enumerate(titles)]
    print("  ".join(title.rjust(width) for title, width in zip(titles, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` (missing columns left empty) as CSV, atomically; floats keep 4 decimals."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(
        [{key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()} for row in rows]
    )
    write_text(path, buffer.getvalue())
    print(f"wrote {path}")


@dataclass(frozen=True)
class ChildRun:
    """What :func:`run_child` measured: wall seconds, the child's peak RSS, its exit code and captured output."""

    wall_s: float
    peak_rss_gib: float
    exit_code: int
    output: str


#: How often a running child's memory high-water mark is read.
_POLL_S = 0.2


class PeakMemory:
    """A child's peak resident memory, read from ``/proc/<pid>/status`` (``VmHWM``) while it runs.

    ``wait4``'s ``ru_maxrss`` is no good here: a child forked from a large parent (pytest,
    a benchmark that has loaded data) inherits the parent's high-water mark at fork time.
    ``VmHWM`` belongs to the child's own address space after exec. Linux only; elsewhere
    the peak stays 0.
    """

    def __init__(self, pid: int):
        self.status = Path(f"/proc/{pid}/status")
        self.kib = 0

    def update(self) -> None:
        try:
            lines = self.status.read_text().splitlines()
        except OSError:  # the child is gone (or not Linux)
            return
        for line in lines:
            if line.startswith("VmHWM:"):
                self.kib = max(self.kib, int(line.split()[1]))

    @property
    def gib(self) -> float:
        return self.kib / 2**20


def run_child(
    command: Sequence[str], stop_when: Callable[[str], bool] | None = None, timeout_s: float = 3600.0
) -> ChildRun:
    """Run ``command`` and return its wall time and its own peak resident memory (:class:`PeakMemory`).

    Without ``stop_when`` the child's output goes to the terminal and it runs to the end.
    With it, the output (stdout and stderr together) is captured and the child is sent
    SIGTERM as soon as ``stop_when(output so far)`` holds or ``timeout_s`` has passed.
    """
    started = time.perf_counter()
    watched = stop_when is not None
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE if watched else None, stderr=subprocess.STDOUT if watched else None
    )
    peak = PeakMemory(process.pid)
    if watched:
        output = _follow_until(process, stop_when, started + timeout_s, peak)
    else:
        output = ""
        while process.poll() is None:
            peak.update()
            time.sleep(_POLL_S)
    process.wait()
    return ChildRun(time.perf_counter() - started, peak.gib, process.returncode, output)


def _follow_until(
    process: subprocess.Popen, stop_when: Callable[[str], bool], deadline: float, peak: PeakMemory
) -> str:
    """Read the child's output until ``stop_when`` holds, it closes its
    output or ``deadline`` passes; then SIGTERM it."""
    output = ""
    pipe = process.stdout.fileno()
    while time.perf_counter() < deadline and not stop_when(output):
        peak.update()
        ready, _, _ = select.select([pipe], [], [], _POLL_S)
        if ready:
            chunk = os.read(pipe, 1 << 16)
            if not chunk:
                break
            output += chunk.decode(errors="replace")
    peak.update()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.stdout.close()
    return output
