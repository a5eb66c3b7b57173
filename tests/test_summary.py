"""summary.md from a hand-made results tree: sections, numbers and caveats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmjsd import summary
from mmjsd.errors import UserError
from test_tables import MST, PROBE_MMJSD_MNIST, write_demo_results


def run_summary(root: Path, *extra: str) -> str:
    """Run the CLI on ``root`` and return the page."""
    out = root / "summary.md"
    summary.main(
        [
            "--out",
            str(out),
            "--metrics",
            str(root / "runs"),
            "--run-configs",
            str(root / "runs"),
            "--classifier-metrics",
            str(root / "classifiers"),
            *extra,
        ]
    )
    return out.read_text()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write_demo_results(tmp_path / "results")


def test_summary_sections_and_numbers(demo):
    page = run_summary(demo, "--data-source", "synthetic")
    headings = (
        "# mmJSD reproduction: summary",
        "## Caveats",
        "## What ran",
        "## Tables vs the paper",
        "## Classifiers",
    )
    for heading in headings:
        assert f"\n{heading}\n" in f"\n{page}"
    for number in range(1, 6):
        assert f"**Table {number} vs the paper:" in page
    # what ran: variants, seeds, settings from config.json, protocols from the metric files
    assert "| MoPoE | 0 1 | 0 1 |" in page
    assert "| mmJSD (MS) | 0 1 2 | 0 1 2 |" in page
    assert "0.0005" in page and "| cpu |" in page
    assert "`num_importance_samples=12`" in page
    # a table cell with its distance from the paper (mmJSD, latent probe on M; paper 0.97)
    values = np.array(list(PROBE_MMJSD_MNIST.values()))
    cell = f"{values.mean():.2f} ± {values.std(ddof=1):.2f}** (0.97; {values.mean() - 0.97:+.2f})"
    assert cell in page
    # classifiers
    assert "| MNIST-SVHN-Text | mnist | coherence | test accuracy | 0.987 |" in page
    assert "| CelebA | img | coherence | test mean AP | 0.654 |" in page
    # caveats
    assert "**Synthetic data.**" in page
    assert "**PRD (Table 3) is not comparable with the paper:**" in page
    assert "importance-sampling grouping" in page
    assert "`classifier_mode=eval`" in page
    assert "all modalities agree" in page
    assert "*validation* partition" in page


def test_real_data_source_read_from_a_file(demo, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"source": "download", "files": {}}))
    page = run_summary(demo, "--data-source-file", str(manifest))
    assert "Synthetic data" not in page
    assert "`data.source: download`" in page
    manifest.write_text(json.dumps({"files": {}}))
    with pytest.raises(UserError, match="manifest.json must have a 'source' key"):
        run_summary(demo, "--data-source-file", str(manifest))


def test_one_dataset_only_has_its_caveats(demo):
    page = run_summary(demo, "--datasets", MST)
    assert "**Table 5" not in page and "CelebA test split" not in page
    assert "**Data source not recorded**" in page


def test_malformed_inputs_name_the_file(demo):
    config = demo / "runs" / MST / "mvae" / "seed0" / "config.json"
    config.write_text(json.dumps({"dataset": MST, "seed": 0}))
    with pytest.raises(UserError, match=f"{config} lacks the key"):
        run_summary(demo)
    config.write_text(json.dumps({"dataset": MST, "variant": "mvae", "seed": 0}))
    classifier = demo / "classifiers" / MST / "svhn" / "metrics.json"
    classifier.write_text(json.dumps({"dataset": MST, "modality": "svhn", "test_accuracy": "high"}))
    with pytest.raises(UserError, match=str(classifier)):
        run_summary(demo)
