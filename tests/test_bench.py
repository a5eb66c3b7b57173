"""Benchmark suite smoke test: every subcommand runs on tiny data and writes its documented CSV.

Speed and memory targets are what the benchmarks measure; they are never asserted here.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mmjsd.bench import build, evaluation, training
from mmjsd.bench.__main__ import main
from mmjsd.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = [str(ROOT / "config.yaml"), str(ROOT / "workflow" / "presets" / "demo.yaml")]




def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV file."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def test_training_measures_every_mode_and_ratio(mst_h5, tmp_path):
    out = tmp_path / "training.csv"
    main(["training", "--data", str(mst_h5), "--config", *CONFIG, "--variants", "mmjsd", "mvae-ms", "--steps", "2", "--warmup", "1",
          "--batch-size", "16", "--threads", "1", "--workers", "0", "--device", "cpu", "--csv", str(out)])
    header, rows = read_csv(out)
    assert tuple(header) == training.TRAINING_COLUMNS
    assert [row["variant"] for row in rows] == ["mmjsd", "mvae-ms"]
    rate_columns = [c for c in header if c.endswith("_samples_per_s") or "_over_" in c]
    assert len(rate_columns) == 7
    assert all(float(row[c]) > 0 for row in rows for c in rate_columns)
    assert {row["torch_threads"] for row in rows} == {"1"}


def test_training_refuses_a_file_too_small_for_the_steps(mst_h5, tmp_path):
    with pytest.raises(UserError, match="fewer than"):
        main(["training", "--data", str(mst_h5), "--config", *CONFIG, "--variants", "mmjsd", "--steps", "1000", "--device", "cpu",
              "--csv", str(tmp_path / "t.csv")])


def test_build_reports_time_and_peak_memory(tmp_path):
    out = tmp_path / "build.csv"
    main(["build", "--scale", "0.002", "--pairs-per-image", "2", "--raw-dir", str(tmp_path / "raw"), "--output", str(tmp_path / "mst.h5"),
          "--csv", str(out)])
    header, rows = read_csv(out)
    assert tuple(header) == build.COLUMNS
    assert float(rows[0]["peak_rss_gib"]) > 0 and float(rows[0]["build_s"]) > 0
    assert (tmp_path / "mst.h5").is_file()


def test_evaluation_reports_seconds_per_metric(mst_h5, tmp_path):
    out = tmp_path / "evaluation.csv"
    main(["evaluation", "--data", str(mst_h5), "--config", *CONFIG, "--metrics", "coherence", "likelihood", "--n-test", "16",
          "--threads", "1", "--device", "cpu", "--csv", str(out)])
    header, rows = read_csv(out)
    assert tuple(header) == evaluation.COLUMNS
    assert [row["metric"] for row in rows] == ["coherence", "likelihood"]


def test_memory_stops_the_training_job_and_reports_its_peak(mst_h5, tmp_path):
    out = tmp_path / "memory.csv"
    main(["memory", "--data", str(mst_h5), "--config", *CONFIG, "--steps", "1", "--batch-size", "16", "--device", "cpu", "--csv", str(out)])
    header, rows = read_csv(out)
    assert tuple(header) == training.MEMORY_COLUMNS
    assert int(rows[0]["steps_seen"]) >= 1
    assert float(rows[0]["peak_rss_gib"]) > 0.1  # a torch process; the target itself is for the benchmark, not a test
