"""docs/extending.md, followed literally: its code blocks are the example plugins, and run through the workflow.

The page's annotated blocks (``<!-- file: path -->`` before a fenced block) are the files of
``examples/plugins/``; the first test keeps the two identical. The workflow test writes the
blocks into a temporary directory outside the project, overlays the CI preset with the
page's config overlays, and runs Snakemake: the plugin objective (MVTCAE) is trained,
evaluated and tabled, the plugin metric (active units) computed and tabled, and no file
under ``src/`` changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import copy_project
from mmjsd.core import registry
from mmjsd.data.readers import load_split
from mmjsd.evaluation.runs import load_run
from mmjsd.reporting.metrics_io import load_metric_file

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", re.S)
MVTCAE, ACTIVE_UNITS = "examples/plugins/mvtcae", "examples/plugins/active_units"
RUN = "results/runs/corrected/mnist_svhn_text/mvtcae/seed0"


def doc_files() -> dict[str, str]:
    """``{repository path: content}`` of every annotated block of docs/extending.md."""
    return dict(FILE_BLOCK.findall(DOC.read_text()))


def test_the_page_shows_the_example_plugins_verbatim():
    blocks = doc_files()
    shipped = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "examples" / "plugins").rglob("*")
        if p.suffix in (".py", ".yaml")
    }
    assert set(blocks) == shipped
    for path, content in blocks.items():
        assert content == (ROOT / path).read_text(), f"docs/extending.md and {path} differ"


def write_plugin(blocks: dict[str, str], example: str, directory: Path) -> dict:
    """The example's Python blocks as files under ``directory``; returns its config overlay (a block too)."""
    for path, content in blocks.items():
        if path.startswith(example + "/") and path.endswith(".py"):
            target = directory / path.removeprefix(example + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
    return yaml.safe_load(blocks[f"{example}/config.yaml"])


def tree_digest(directory: Path) -> str:
    """sha256 over every file's path and bytes below ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def active_units_by_hand(run_dir: Path, data: Path, threshold: float) -> dict[str, int]:
    """Active units of every subset of the trained model, from its encoders in batches, with numpy's variance."""
    run = load_run(run_dir, torch.device("cpu"))
    split = load_split("mnist_svhn_text", data, "test")
    batches = [split.batch(index)[0] for index in torch.arange(len(split)).split(100)]
    counts = {}
    with torch.inference_mode():
        encodings = [run.model.encode(batch) for batch in batches]
        for subset in run.model.subsets:
            means = np.concatenate([run.model.subset_posterior(e, subset).mean.numpy() for e in encodings]).astype(
                np.float64
            )
            counts["+".join(subset)] = int((means.var(axis=0) > threshold).sum())
    return counts


@pytest.mark.workflow
def test_plugin_objective_and_metric_from_the_page_run_through_the_workflow(tmp_path, monkeypatch):
    workdir = copy_project(tmp_path / "project")
    blocks = doc_files()
    plugins = tmp_path / "my_plugins"  # outside the project: nothing is added to src/
    overlays = [
        write_plugin(blocks, MVTCAE, plugins / "mvtcae"),
        write_plugin(blocks, ACTIVE_UNITS, plugins / "active_units"),
    ]
    # both plugins in one overlay (the page: lists replace), the page's
    # settings, CI sizes: one variant on MNIST-SVHN-Text
    overlay = {
        "plugins": overlays[0]["plugins"] + overlays[1]["plugins"],
        "plugin_paths": [str(plugins / "mvtcae"), str(plugins / "active_units")],
        "datasets": ["mnist_svhn_text"],
        "training": {"mnist_svhn_text": {**overlays[0]["training"]["mnist_svhn_text"], "variants": ["mvtcae"]}},
        "evaluation": {
            "metrics": {"mnist_svhn_text": ["latent_probe", "likelihood", "active_units"]},
            "active_units": overlays[1]["evaluation"]["active_units"],
        },
    }
    (workdir / "plugins.yaml").write_text(yaml.safe_dump(overlay))
    src_before = tree_digest(workdir / "src")
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", "workflow/presets/ci.yaml", "plugins.yaml", "--cores", "2"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    print(f"plugin workflow run: {time.perf_counter() - started:.0f} s")
    assert tree_digest(workdir / "src") == src_before

    # the objective: trained with its own terms, evaluated, a row of the paper's tables with real numbers
    log = pd.read_csv(workdir / RUN / "train_log.csv")
    assert {"kl/cvib/mnist", "kl/cvib/svhn", "kl/cvib/text", "kl/content"} <= set(log.columns)
    tables = workdir / "results" / "tables"
    for table, columns in (("table1_latent_probe", 7), ("table4_likelihood", 7)):
        tidy = pd.read_csv(tables / "corrected" / f"{table}.csv")
        means = tidy[(tidy.model == "MVTCAE") & (tidy.statistic == "mean")]
        assert len(means) == columns and np.isfinite(means.value.astype(float)).all(), table
    assert "MVTCAE" in (tables / "table1_latent_probe_vs_paper.md").read_text()

    # the metric: its file equals an independent count, and its own table shows it
    monkeypatch.syspath_prepend(str(plugins / "mvtcae"))
    with registry.restored_registries():
        registry.load_plugins(["mmjsd_mvtcae.plugin"])
        expected = active_units_by_hand(workdir / RUN, workdir / "results/datasets/mnist_svhn_text.h5", 0.01)
        record = load_metric_file(workdir / RUN / "metrics" / "active_units.json")
    test_pairs = len(load_split("mnist_svhn_text", workdir / "results/datasets/mnist_svhn_text.h5", "test"))
    assert record.values == expected and record.protocol["n_test"] == test_pairs
    assert max(expected.values()) > 0
    tidy = pd.read_csv(tables / "corrected" / "mnist_svhn_text_active_units.csv")
    means = tidy[(tidy.model == "MVTCAE") & (tidy.statistic == "mean")]
    assert dict(zip(means.key, means.value.astype(float), strict=True)) == {
        key: float(value) for key, value in expected.items()
    }
    assert not (tables / "mnist_svhn_text_active_units_vs_paper.csv").exists()
    assert (workdir / "results/figures/mnist_svhn_text_active_units.png").is_file()
    summary = (workdir / "results/summary.md").read_text()
    assert "Active units of each subset's posterior mean" in summary and "| MVTCAE |" in summary
