"""The workflow definition itself: lint-clean, and the paper configuration's DAG."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mmjsd.core import registry
from mmjsd.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )


def test_lint_is_clean():
    proc = snakemake("--lint")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in out, out[-3000:]


def test_paper_configuration_dag(tmp_path):
    """config.yaml: 8 MST variants x 5 seeds x 4 metrics, 4 CelebA variants x 5 seeds x 3 metrics, 323 jobs in all."""
    proc = snakemake(
        "-n",
        "--quiet",
        "rules",
        "--directory",
        str(tmp_path),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--configfile",
        str(ROOT / "config.yaml"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout[proc.stdout.index("Job stats:") :], re.M))
    assert counts["train"] == "60" and counts["evaluate"] == "220" and counts["train_classifier"] == "8"
    assert counts["total"] == "323"
    # the same counts from the config and the registry: runs x metrics, one classifier per modality and feature modality
    cfg = load_config(ROOT / "config.yaml")
    runs = {d: len(cfg.variants(d)) * len(cfg.seeds) for d in cfg.datasets}
    assert int(counts["train"]) == sum(runs.values())
    assert int(counts["evaluate"]) == sum(runs[d] * len(cfg.evaluation.metrics[d]) for d in cfg.datasets)
    specs = [registry.dataset(d) for d in cfg.datasets]
    assert int(counts["train_classifier"]) == sum(len(s.modalities) + len(s.feature_modalities) for s in specs)


def make_commands(target: str) -> list[str]:
    """The commands ``make <target>`` would run (``make -n``), continuation lines joined, spaces normalised."""
    proc = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [" ".join(line.split()) for line in proc.stdout.replace("\\\n", " ").splitlines()]


def test_make_demo_runs_the_demo_preset_and_writes_the_report_the_readme_promises():
    """README: `make demo` leaves results/summary.md and results/report.html. The workflow test runs these same
    Snakemake options (``--report-after-run --report``) and checks the report they write."""
    commands = make_commands("demo")
    command = next(line for line in commands if "snakemake" in line and "--cores" in line)
    assert "--configfile workflow/presets/demo.yaml" in command
    assert "--report-after-run --report results/report.html" in command


def test_make_test_is_the_fast_subset_and_ci_lints_then_runs_every_test():
    """README "Tests": `make test` leaves out the workflow and SLURM tests, `make test-all` runs every test, `make lint`
    runs ruff and Snakemake's lint, and CI (`.ci/run`) runs `make lint` and `make test-all`."""
    (fast,) = [c for c in make_commands("test") if " -m pytest" in c]
    assert fast.endswith('-m pytest -m "not workflow and not slurm"'), fast
    (every,) = [c for c in make_commands("test-all") if " -m pytest" in c]
    assert every.endswith("-m pytest"), every
    installing = (" -m venv ", " -m pip ")  # what `make -n` lists first where .venv is not installed yet
    lint = [c.split(" -m ", 1)[1] for c in make_commands("lint") if " -m " in c and not any(i in c for i in installing)]
    assert lint == ["ruff check .", "ruff format --check .", "snakemake --lint"], lint
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    make_targets = [line.removeprefix("make ") for line in ci if line.startswith("make ")]
    assert make_targets == ["lint", "test-all"], make_targets
    readme = (ROOT / "README.md").read_text()
    assert "`make test-all`" in readme and "CI (`bash .ci/run`) runs `make lint`" in readme
