"""scripts/gpu_check.sh, the prepared GPU check, in its --smoke form: every part runs on the CPU on tiny data
and the summary reports what each part measured. The figures are the GPU session's to read, never asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmjsd.bench.gpu import study_gpu_hours

ROOT = Path(__file__).resolve().parents[1]


def test_study_projection_is_items_over_rate():
    # 40 runs x 100 epochs x 1,121,280 items at 80,000 samples/s: 4.485e9 items / 8e4 per s = 56,064 s = 15.57 h
    assert study_gpu_hours(40, 100, 1_121_280, 80_000.0) == pytest.approx(4_485_120_000 / 80_000 / 3600)
    assert study_gpu_hours(40, 100, 1_121_280, 80_000.0) == pytest.approx(15.5733, abs=1e-4)


@pytest.mark.workflow
def test_gpu_check_smoke_runs_every_part(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_WORK=str(tmp_path / "work"))
    env.pop("SNAKEMAKE_PROFILE", None)
    res = subprocess.run(
        ["bash", str(ROOT / "scripts/gpu_check.sh"), str(out), "--smoke"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    parts = dict(line.split("\t")[:2] for line in (out / "parts.tsv").read_text().splitlines())
    assert parts == dict.fromkeys(("ci", "build", "training", "epoch", "concurrent", "syncs", "training_bf16"), "ok"), (
        parts
    )
    for name in ("training", "training_bf16", "concurrent", "syncs", "build"):
        assert (out / f"{name}.csv").is_file(), name
    summary = (out / "summary.md").read_text()
    for line in (
        "| ci | ok |",
        "Training loop, mmjsd",
        "One MST epoch of mmjsd:",
        "| jobs at once |",
        "Host syncs in 2 steps on cpu: 0",
        "MST study projection (40 runs x 100 epochs x",
    ):
        assert line in summary, summary
