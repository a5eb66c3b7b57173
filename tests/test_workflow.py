"""The whole workflow on the CI preset: a complete run, then what reruns after each kind of change.

One complete run (module fixture) on a copy of the project; every later test edits a
fresh copy of that finished tree and asks Snakemake's dry run which jobs it would run.
The resilience tests then run jobs for real: a killed training job resumes from its
checkpoint, and with --keep-going a failing job does not stop independent ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import copy_project
from mmjsd.config import load_config

pytestmark = pytest.mark.workflow

PRESET = "workflow/presets/ci.yaml"
MST_RUNS = ("results/runs/mnist_svhn_text/mmjsd/seed0", "results/runs/mnist_svhn_text/mopoe-ms/seed0")
JOB_LINE = re.compile(r"^(\w+)\s+(\d+)$")


def snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True, extra_configs: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir`` with the CI preset (plus overlays); output captured."""
    cmd = [sys.executable, "-m", "snakemake", "--configfile", PRESET, *extra_configs, "--cores", "2", *args]
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}  # no user or site profile
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-6000:]}")
    return proc


def planned_jobs(workdir: Path, *extra_configs: str) -> dict[str, int]:
    """Job counts per rule of a dry run (empty when nothing is to be done)."""
    out = snakemake(workdir, "-n", "--quiet", "rules", extra_configs=extra_configs).stdout
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for line in table:
        match = JOB_LINE.match(line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    counts.pop("total", None)
    return counts


def write_overlay(workdir: Path, name: str, content: dict) -> str:
    path = workdir / name
    path.write_text(yaml.safe_dump(content))
    return name


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A copy of the project after a complete CI-preset run, report included."""
    workdir = copy_project(tmp_path_factory.mktemp("workflow") / "project")
    started = time.perf_counter()
    snakemake(workdir, "--report-after-run", "--report", "results/report.html")
    print(f"complete CI-preset run: {time.perf_counter() - started:.0f} s")
    return workdir


@pytest.fixture
def workdir(finished, tmp_path) -> Path:
    """A private copy of the finished run (metadata and timestamps kept)."""
    target = tmp_path / "project"
    shutil.copytree(finished, target, symlinks=True, copy_function=shutil.copy2)
    return target


def test_complete_run_produces_every_table_figure_summary_and_report(finished):
    tables = finished / "results/tables"
    for name in ("table1_latent_probe", "table2_coherence", "table3_prd", "table4_likelihood", "table5_celeba"):
        for suffix in (".csv", ".tex", ".md", "_vs_paper.csv", "_vs_paper.md"):
            assert (tables / f"{name}{suffix}").stat().st_size > 0, name + suffix
        assert (finished / f"results/figures/{name}_vs_paper.png").is_file()
    figures = finished / "results/figures"
    for stem in ("mnist_svhn_text_mmjsd_conditional_svhn", "mnist_svhn_text_mopoe-ms_random", "celeba_mmjsd-ms_text_to_img"):
        assert (figures / f"{stem}.png").is_file() and (figures / f"{stem}.pdf").is_file()
    assert (figures / "training_curves_mnist_svhn_text_mopoe-ms.png").is_file()
    summary = (finished / "results/summary.md").read_text()
    assert "synthetic" in summary and "mmJSD" in summary
    report = (finished / "results/report.html").read_text(errors="replace")
    assert "table1_latent_probe" in report and len(report) > 100_000
    for run in MST_RUNS:
        for metric in ("latent_probe", "coherence", "prd", "likelihood"):
            assert (finished / run / "metrics" / f"{metric}.json").is_file()
    assert not (finished / "results/runs/celeba/mmjsd-ms/seed0/metrics/likelihood.json").exists()
    # PRD on CelebA is in no paper table: it gets a table of its own, without a comparison, and is in the summary
    ours = pd.read_csv(tables / "celeba_prd.csv")
    assert set(ours.model) == {"mmJSD (MS)"} and set(ours.key) == {"text->img", "random->img"}
    assert not (tables / "celeba_prd_vs_paper.csv").exists() and (finished / "results/figures/celeba_prd.png").is_file()
    assert "Not in the paper: Quality of generated images (PRD average precision), CelebA" in summary


def test_nothing_changed_nothing_reruns(workdir):
    assert planned_jobs(workdir) == {}


def test_reordering_config_keys_reruns_nothing(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())

    def reverse(node):
        return {k: reverse(node[k]) for k in reversed(list(node))} if isinstance(node, dict) else node

    (workdir / "config.yaml").write_text(yaml.safe_dump(reverse(config), sort_keys=False))
    assert planned_jobs(workdir) == {}


def test_resources_rerun_nothing(workdir):
    """The resources block is no job's params and leaves every shell command as it is: sharing GPUs otherwise
    (other slot units, another SLURM group) or giving a stage other memory and time reruns nothing."""
    overlay = write_overlay(workdir, "resources.yaml", {
        "resources": {"mnist_svhn_text": {"jobs_per_gpu": 2, "train": {"mem_mb": 9000, "runtime": 30}}},
    })
    assert planned_jobs(workdir, overlay) == {}


def test_one_variant_hyperparameter_reruns_only_that_variant(workdir):
    overlay = write_overlay(workdir, "lr.yaml", {"training": {"mnist_svhn_text": {"overrides": {"mopoe-ms": {"lr": 2.0e-3}}}}})
    assert planned_jobs(workdir, overlay) == {
        "train": 1,
        "evaluate": 4,
        "samples_mnist_svhn_text": 1,
        "training_curves": 1,
        "tables": 1,
        "table_figures": 1,
        "summary": 1,
        "all": 1,
    }


def test_one_evaluation_setting_reruns_only_that_metric(workdir):
    overlay = write_overlay(workdir, "k.yaml", {"evaluation": {"likelihood": {"num_importance_samples": 12}}})
    assert planned_jobs(workdir, overlay) == {"evaluate": 2, "tables": 1, "table_figures": 1, "summary": 1, "all": 1}


def test_a_departure_switch_reruns_only_the_jobs_it_acts_on(workdir):
    """docs/departures.md: a training switch retrains the runs it can change, an evaluation switch reruns its metric's jobs."""
    evaluation = write_overlay(workdir, "mode.yaml", {"departures": {"classifier_mode": "reference"}})
    assert planned_jobs(workdir, evaluation) == {"evaluate": 3, "tables": 1, "table_figures": 1, "summary": 1, "all": 1}
    training = write_overlay(workdir, "eps.yaml", {"departures": {"dynamic_prior_epsilon": "reference"}})
    planned = planned_jobs(workdir, training)  # mmjsd on MST and mmjsd-ms on CelebA, not mopoe-ms
    assert planned["train"] == 2 and planned["evaluate"] == 4 + 3
    no_mvae = write_overlay(workdir, "mvae.yaml", {"departures": {"mvae_unimodal_kl": "reference"}})
    assert planned_jobs(workdir, no_mvae) == {}  # the CI preset trains no MVAE


def test_code_changes_rerun_only_the_steps_that_import_them(workdir):
    prd_eval = workdir / "src/mmjsd/evaluation/prd_eval.py"
    prd_eval.write_text(prd_eval.read_text().replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n")
    assert planned_jobs(workdir) == {}  # docstrings and comments are not code
    prd_eval.write_text(prd_eval.read_text() + "\nUNUSED_CONSTANT = 1\n")
    assert planned_jobs(workdir) == {"evaluate": 3, "tables": 1, "table_figures": 1, "summary": 1, "all": 1}


def test_killed_training_job_resumes_from_its_checkpoint(workdir, tmp_path):
    overlay = write_overlay(workdir, "epochs.yaml", {"training": {"mnist_svhn_text": {"overrides": {"mmjsd": {"epochs": 4}}}}})
    model = workdir / MST_RUNS[0] / "model.pt"
    checkpoint = workdir / "results/checkpoints/mnist_svhn_text/mmjsd/seed0/last.pt"
    cmd = [sys.executable, "-m", "snakemake", "--configfile", PRESET, overlay, "--cores", "1", str(model.relative_to(workdir))]
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not checkpoint.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a node failure would
    proc.wait()
    assert checkpoint.is_file() and not model.exists()
    snakemake(workdir, "--unlock", extra_configs=(overlay,))
    snakemake(workdir, "--rerun-incomplete", str(model.relative_to(workdir)), extra_configs=(overlay,))
    log = (workdir / "results/logs/train/mnist_svhn_text/mmjsd/seed0.log").read_text()
    assert "resuming mnist_svhn_text/mmjsd seed 0 after epoch" in log
    resumed = torch.load(model, weights_only=False)
    assert resumed["epoch"] == 4 and not checkpoint.exists()

    # the same run uninterrupted, straight through the step's CLI
    fresh = tmp_path / "fresh"
    cfg = load_config(workdir / "config.yaml", workdir / PRESET, workdir / overlay)
    params = json.dumps(dataclasses.asdict(cfg.train_config("mnist_svhn_text", "mmjsd")))
    subprocess.run(
        [sys.executable, "-m", "mmjsd.train", "--dataset", "mnist_svhn_text", "--variant", "mmjsd", "--seed", "0", "--hparams", params,
         "--data", str(workdir / "results/datasets/mnist_svhn_text.h5"), "--out-dir", str(fresh), "--checkpoint", str(tmp_path / "ck.pt"),
         "--device", "cpu", "--threads", "1", "--no-progress"],  # one thread, as the rule: same arithmetic
        check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(workdir / "src")},
    )
    uninterrupted = torch.load(fresh / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(uninterrupted[k], resumed["state_dict"][k]) for k in uninterrupted)


def test_keep_going_lets_independent_jobs_finish(workdir):
    overlay = write_overlay(
        workdir,
        "fail.yaml",
        # an absurd learning rate makes mmjsd's loss non-finite (the job fails with a message);
        # mopoe-ms's new batch size is an independent change that must still be carried out
        {"training": {"mnist_svhn_text": {"overrides": {"mmjsd": {"lr": 1.0e+8}, "mopoe-ms": {"batch_size": 64}}}}},
    )
    before = (workdir / MST_RUNS[1] / "model.pt").stat().st_mtime
    proc = snakemake(workdir, "--keep-going", extra_configs=(overlay,), check=False)
    assert proc.returncode != 0
    assert "non-finite loss" in (workdir / "results/logs/train/mnist_svhn_text/mmjsd/seed0.log").read_text()
    assert not (workdir / MST_RUNS[0] / "model.pt").exists()  # a failed job leaves no output
    assert (workdir / MST_RUNS[1] / "model.pt").stat().st_mtime > before
    assert (workdir / MST_RUNS[1] / "metrics/likelihood.json").stat().st_mtime > before
