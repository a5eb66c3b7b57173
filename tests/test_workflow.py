"""The whole workflow on the CI preset: a complete run, then what reruns after each kind of change.

One complete run (module fixture) on a copy of the project; every later test edits a
fresh copy of that finished tree and asks Snakemake's dry run which jobs it would run.
The resilience tests then run jobs for real: a killed training job resumes from its
checkpoint, and with --keep-going a failing job does not stop independent ones.
"""

from __future__ import annotations

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

from helpers import copy_project, train_cli_args
from mmjsd.core.config import load_config
from mmjsd.tables import specs

pytestmark = pytest.mark.workflow

PRESET = "workflow/presets/ci.yaml"
MST = "mnist_svhn_text"
MST_RUNS = (
    "results/runs/corrected/mnist_svhn_text/mmjsd/seed0",
    "results/runs/corrected/mnist_svhn_text/mopoe-ms/seed0",
)
JOB_LINE = re.compile(r"^(\w+)\s+(\d+)$")


def snakemake(
    workdir: Path, *args: str, timeout: float = 900, check: bool = True, extra_configs: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
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
        for file in (
            f"corrected/{name}.csv",
            f"corrected/{name}.tex",
            f"corrected/{name}.md",
            f"{name}_vs_paper.csv",
            f"{name}_vs_paper.md",
        ):
            assert (tables / file).stat().st_size > 0, file
        assert (finished / f"results/figures/{name}_vs_paper.png").is_file()
    assert not (tables / "reference-exact").exists() and (tables / "departures/evaluation.md").is_file()
    figures = finished / "results/figures/corrected"
    for stem in (
        "mnist_svhn_text_mmjsd_conditional_svhn",
        "mnist_svhn_text_mopoe-ms_random",
        "celeba_mmjsd-ms_text_to_img",
    ):
        assert (figures / f"{stem}.png").is_file() and (figures / f"{stem}.pdf").is_file()
    assert (figures / "training_curves_mnist_svhn_text_mopoe-ms.png").is_file()
    summary = (finished / "results/summary.md").read_text()
    assert "synthetic" in summary and "mmJSD" in summary
    report = (finished / "results/report.html").read_text(errors="replace")
    assert "table1_latent_probe" in report and len(report) > 100_000
    for run in MST_RUNS:
        for metric in ("latent_probe", "coherence", "prd", "likelihood"):
            assert (finished / run / "metrics" / f"{metric}.json").is_file()
    assert not (finished / "results/runs/corrected/celeba/mmjsd-ms/seed0/metrics/likelihood.json").exists()
    # PRD on CelebA is in no paper table: it gets a table of its own, without a comparison, and is in the summary
    ours = pd.read_csv(tables / "corrected/celeba_prd.csv")
    assert set(ours.model) == {"mmJSD (MS)"} and set(ours.key) == {"text->img", "random->img"}
    assert not (tables / "celeba_prd_vs_paper.csv").exists() and (finished / "results/figures/celeba_prd.png").is_file()
    assert "Not in the paper: Quality of generated images (PRD average precision), CelebA" in summary
    # synthetic data: nothing set beside the paper, no best marks, chance levels instead (issue 12)
    assert "## Tables (not compared with the paper: synthetic data)" in summary and "| Chance |" in summary
    assert not re.search(r"\(-?\d+(?:\.\d+)?; [+-]\d", summary) and not re.search(r"\*\*-?\d", summary)


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
    overlay = write_overlay(
        workdir,
        "resources.yaml",
        {
            "resources": {"mnist_svhn_text": {"jobs_per_gpu": 2, "train": {"mem_mb": 9000, "runtime": 30}}},
        },
    )
    assert planned_jobs(workdir, overlay) == {}


def test_one_variant_hyperparameter_reruns_only_that_variant(workdir):
    overlay = write_overlay(
        workdir, "lr.yaml", {"training": {"mnist_svhn_text": {"overrides": {"mopoe-ms": {"lr": 2.0e-3}}}}}
    )
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
    """docs/departures.md: a training switch retrains the runs it can change, an
    evaluation switch reruns its metric's jobs."""
    evaluation = write_overlay(workdir, "mode.yaml", {"departures": {"classifier_mode": "reference"}})
    assert planned_jobs(workdir, evaluation) == {"evaluate": 3, "tables": 1, "table_figures": 1, "summary": 1, "all": 1}
    training = write_overlay(workdir, "eps.yaml", {"departures": {"dynamic_prior_epsilon": "reference"}})
    planned = planned_jobs(workdir, training)  # mmjsd on MST and mmjsd-ms on CelebA, not mopoe-ms
    assert planned["train"] == 2 and planned["evaluate"] == 4 + 3
    no_mvae = write_overlay(workdir, "mvae.yaml", {"departures": {"mvae_unimodal_kl": "reference"}})
    assert planned_jobs(workdir, no_mvae) == {}  # the CI preset trains no MVAE
    # adding the reference-exact protocol adds its runs and reruns no corrected
    # job: 3 runs, 11 metric jobs, as the first run
    assert planned_jobs(workdir, "workflow/presets/reference-exact.yaml") == {
        "train": 3, "evaluate": 11, "samples_mnist_svhn_text": 2, "samples_celeba": 1, "training_curves": 3,
        "tables": 1, "table_figures": 1, "summary": 1, "all": 1,
    }  # fmt: skip
    checks = write_overlay(workdir, "checks.yaml", {"report": {"pipeline_checks": ["celeba"]}})
    assert planned_jobs(workdir, checks) == {"tables": 1, "table_figures": 1, "summary": 1, "all": 1}


# ------------------------------------------------ both protocols (docs/departures.md,
# workflow/presets/reference-exact.yaml)
#: The reference-exact overlay on the CI preset, kept cheap: one MST variant and the CelebA variant, CelebA a pipeline
#: check.
BOTH_OVERLAY = {"training": {"mnist_svhn_text": {"variants": ["mmjsd"]}}, "report": {"pipeline_checks": ["celeba"]}}
BOTH_CONFIGS = ("workflow/presets/reference-exact.yaml", "both.yaml")


@pytest.fixture(scope="module")
def finished_both(tmp_path_factory) -> Path:
    """A copy of the project after a complete run of the CI preset with the reference-exact overlay."""
    workdir = copy_project(tmp_path_factory.mktemp("workflow_both") / "project")
    write_overlay(workdir, "both.yaml", BOTH_OVERLAY)
    started = time.perf_counter()
    snakemake(workdir, extra_configs=BOTH_CONFIGS)
    print(f"complete CI-preset run, both protocols: {time.perf_counter() - started:.0f} s")
    return workdir


def metric_values(workdir: Path, protocol: str, dataset: str, variant: str, metric: str) -> dict:
    """The metric file of seed 0 of a run."""
    return json.loads(
        (workdir / f"results/runs/{protocol}/{dataset}/{variant}/seed0/metrics/{metric}.json").read_text()
    )


def cell(frame: pd.DataFrame, variant: str, column: str) -> pd.Series:
    """The statistics of one cell of a tidy table frame, by statistic."""
    return frame[(frame.variant == variant) & (frame.column == column)].set_index("statistic").value


def test_both_protocols_give_both_tables_the_comparison_from_reference_exact_and_the_departures(finished_both):
    workdir, tables = finished_both, finished_both / "results/tables"
    cfg = load_config(workdir / "config.yaml", workdir / PRESET, *(workdir / c for c in BOTH_CONFIGS))
    expected = specs.table_files(
        specs.planned_tables({d: cfg.evaluation.metrics[d] for d in cfg.datasets}), cfg.protocols
    )
    assert {p.relative_to(tables).as_posix() for p in tables.rglob("*") if p.is_file()} == set(expected)
    assert {
        "reference-exact/table1_latent_probe.tex",
        "departures/table5_celeba.md",
        "departures/evaluation.csv",
    } <= set(expected)

    # the reference-exact runs: every switch at reference, recorded in the run and its metric files
    exact = metric_values(workdir, "reference-exact", MST, "mmjsd", "coherence")
    assert exact["protocol"]["name"] == "reference-exact" and set(exact["protocol"]["departures"].values()) == {
        "reference"
    }
    run_config = json.loads((workdir / "results/runs/reference-exact/celeba/mmjsd-ms/seed0/config.json").read_text())
    assert (
        run_config["protocol"] == "reference-exact"
        and run_config["train_config"]["departures"]["gradient_clipping"] == "reference"
    )
    corrected = metric_values(workdir, "corrected", MST, "mmjsd", "coherence")
    assert corrected["protocol"]["name"] == "corrected" and corrected["values"] != exact["values"]

    # the paper comparison is made from the reference-exact runs (synthetic data: ours only, no paper values)
    comparison = pd.read_csv(tables / "table2_coherence_vs_paper.csv")
    row = comparison[(comparison.variant == "mmjsd") & (comparison.column == "S->M")].iloc[0]
    assert row.protocol == "reference-exact" and row.ours_mean == pytest.approx(exact["values"]["svhn->mnist"])
    assert comparison.paper.isna().all()
    probe = pd.read_csv(tables / "reference-exact/table1_latent_probe.csv")
    assert float(cell(probe, "mmjsd", "M")["mean"]) == pytest.approx(
        metric_values(workdir, "reference-exact", MST, "mmjsd", "latent_probe")["values"]["mnist"]
    )

    # corrected - reference-exact per cell, recomputed from the metric files (one seed: no noise test)
    differences = pd.read_csv(tables / "departures/table2_coherence.csv")
    random = cell(differences, "mmjsd", "random")
    assert float(random["mean"]) == pytest.approx(corrected["values"]["random"] - exact["values"]["random"])
    assert int(random["n_seeds"]) == 1 and random["exceeds_seed_noise"] == "n/a (1 seed)"
    celeba = cell(pd.read_csv(tables / "departures/table5_celeba.csv"), "mmjsd-ms", "T->I")
    expected_celeba = (
        metric_values(workdir, "corrected", "celeba", "mmjsd-ms", "coherence")["values"]["text->img"]
        - metric_values(workdir, "reference-exact", "celeba", "mmjsd-ms", "coherence")["values"]["text->img"]
    )
    assert float(celeba["mean"]) == pytest.approx(expected_celeba)

    # each evaluation switch alone: values - alternatives of the corrected metric files
    evaluation = pd.read_csv(tables / "departures/evaluation.csv")
    mode = evaluation[
        (evaluation.departure == "classifier_mode") & (evaluation.variant == "mmjsd") & (evaluation.column == "S->M")
    ]
    expected_mode = corrected["values"]["svhn->mnist"] - corrected["alternatives"]["classifier_mode"]["svhn->mnist"]
    assert float(mode.set_index("statistic").value["mean"]) == pytest.approx(expected_mode)
    likelihood = metric_values(workdir, "corrected", MST, "mmjsd", "likelihood")
    grouping = evaluation[(evaluation.departure == "importance_sampling_grouping") & (evaluation.column == "X")]
    expected_grouping = (
        likelihood["values"]["joint|mnist+svhn+text"]
        - likelihood["alternatives"]["importance_sampling_grouping"]["joint|mnist+svhn+text"]
    )
    assert float(grouping.set_index("statistic").value["mean"]) == pytest.approx(expected_grouping)

    # figures and the summary: per protocol, the comparison's runs named, departures, CelebA a pipeline check
    for protocol in ("corrected", "reference-exact"):
        assert (workdir / f"results/figures/{protocol}/training_curves_mnist_svhn_text_mmjsd.png").is_file()
        assert (workdir / f"results/figures/{protocol}/celeba_mmjsd-ms_text_to_img.png").is_file()
    summary = (workdir / "results/summary.md").read_text()
    assert "Our numbers from the reference-exact runs" in summary and "\n## Departures\n" in summary
    assert "`results/tables/departures/table2_coherence.md`" in summary
    assert "**CelebA is a pipeline check**" in summary
    assert not re.search(r"\(-?\d+(?:\.\d+)?; [+-]\d", summary) and not re.search(r"\*\*-?\d", summary)


def test_a_switch_in_the_departures_block_reruns_only_corrected_runs(finished_both, tmp_path):
    """The reference-exact runs take every switch at reference whatever the
    block says: flipping one touches none of them."""
    workdir = tmp_path / "project"
    shutil.copytree(finished_both, workdir, symlinks=True, copy_function=shutil.copy2)
    assert planned_jobs(workdir, *BOTH_CONFIGS) == {}
    training = write_overlay(workdir, "eps.yaml", {"departures": {"dynamic_prior_epsilon": "reference"}})
    planned = planned_jobs(workdir, *BOTH_CONFIGS, training)  # the corrected mmjsd (MST) and mmjsd-ms (CelebA) runs
    assert planned["train"] == 2 and planned["evaluate"] == 4 + 3 and planned["samples_mnist_svhn_text"] == 1
    evaluation = write_overlay(workdir, "mode.yaml", {"departures": {"classifier_mode": "reference"}})
    assert planned_jobs(workdir, *BOTH_CONFIGS, evaluation) == {
        "evaluate": 2,
        "tables": 1,
        "table_figures": 1,
        "summary": 1,
        "all": 1,
    }


def test_code_changes_rerun_only_the_steps_that_import_them(workdir):
    prd_eval = workdir / "src/mmjsd/evaluation/prd_eval.py"
    prd_eval.write_text(prd_eval.read_text().replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n")
    assert planned_jobs(workdir) == {}  # docstrings and comments are not code
    prd_eval.write_text(prd_eval.read_text() + "\nUNUSED_CONSTANT = 1\n")
    assert planned_jobs(workdir) == {"evaluate": 3, "tables": 1, "table_figures": 1, "summary": 1, "all": 1}


def test_killed_training_job_resumes_from_its_checkpoint(workdir, tmp_path):
    overlay = write_overlay(
        workdir, "epochs.yaml", {"training": {"mnist_svhn_text": {"overrides": {"mmjsd": {"epochs": 4}}}}}
    )
    model = workdir / MST_RUNS[0] / "model.pt"
    checkpoint = workdir / "results/checkpoints/corrected/mnist_svhn_text/mmjsd/seed0/last.pt"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--configfile",
        PRESET,
        overlay,
        "--cores",
        "1",
        str(model.relative_to(workdir)),
    ]
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not checkpoint.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a node failure would
    proc.wait()
    assert checkpoint.is_file() and not model.exists()
    snakemake(workdir, "--unlock", extra_configs=(overlay,))
    snakemake(workdir, "--rerun-incomplete", str(model.relative_to(workdir)), extra_configs=(overlay,))
    log = (workdir / "results/logs/train/corrected/mnist_svhn_text/mmjsd/seed0.log").read_text()
    assert "resuming mnist_svhn_text/mmjsd seed 0 after epoch" in log
    resumed = torch.load(model, weights_only=False)
    assert resumed["epoch"] == 4 and not checkpoint.exists()

    # the same run uninterrupted, straight through the step's CLI
    fresh = tmp_path / "fresh"
    cfg = load_config(workdir / "config.yaml", workdir / PRESET, workdir / overlay)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mmjsd.train",
            *train_cli_args(
                cfg.train_config("mnist_svhn_text", "mmjsd"),
                workdir / "results/datasets/mnist_svhn_text.h5",
                fresh,
                tmp_path / "ck.pt",
            ),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(workdir / "src")},
    )
    uninterrupted = torch.load(fresh / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(uninterrupted[k], resumed["state_dict"][k]) for k in uninterrupted)


def test_keep_going_lets_independent_jobs_finish(workdir):
    overlay = write_overlay(
        workdir,
        "fail.yaml",
        # an absurd learning rate makes mmjsd's loss non-finite (the job fails with a message);
        # mopoe-ms's new batch size is an independent change that must still be carried out
        {"training": {"mnist_svhn_text": {"overrides": {"mmjsd": {"lr": 1.0e8}, "mopoe-ms": {"batch_size": 64}}}}},
    )
    before = (workdir / MST_RUNS[1] / "model.pt").stat().st_mtime
    proc = snakemake(workdir, "--keep-going", extra_configs=(overlay,), check=False)
    assert proc.returncode != 0
    assert "non-finite loss" in (workdir / "results/logs/train/corrected/mnist_svhn_text/mmjsd/seed0.log").read_text()
    assert not (workdir / MST_RUNS[0] / "model.pt").exists()  # a failed job leaves no output
    assert (workdir / MST_RUNS[1] / "model.pt").stat().st_mtime > before
    assert (workdir / MST_RUNS[1] / "metrics/likelihood.json").stat().st_mtime > before
