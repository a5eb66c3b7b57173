"""summary.md from a hand-made results tree: sections, numbers and caveats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import MST, PROBE_MMJSD_MNIST, reference_shift, write_demo_results
from mmjsd import summary
from mmjsd.core.errors import UserError


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


def test_summary_sections_and_numbers(demo):
    page = run_summary(demo, "--data-source", "download")
    headings = (
        "# mmJSD reproduction: summary",
        "## Caveats",
        "## What ran",
        "## Tables vs the paper (the corrected runs)",
        "## Departures",
        "## Classifiers",
    )
    for heading in headings:
        assert f"\n{heading}\n" in f"\n{page}"
    for number in range(1, 6):
        assert f"**Table {number} vs the paper:" in page
    assert "The paper comparison uses the corrected runs (no reference-exact runs were configured" in page
    # what ran: variants, protocols, seeds, settings from config.json, protocols from the metric files
    assert "| MoPoE | corrected | 0 1 | 0 1 |" in page
    assert "| mmJSD (MS) | corrected | 0 1 2 | 0 1 2 |" in page
    assert "0.0005" in page and "| cpu |" in page
    assert "| style beta |" in page and "| 64 | 2.5 | 20 | 30.0 | cpu |" in page  # a preset's style weight is visible
    assert "`num_importance_samples=12`" in page
    # a table cell with its distance from the paper (mmJSD, latent probe on M; paper 0.97)
    values = np.array(list(PROBE_MMJSD_MNIST.values()))
    cell = f"{values.mean():.2f} ± {values.std(ddof=1):.2f}** (0.97; {values.mean() - 0.97:+.2f})"
    assert cell in page
    # classifiers
    assert "| MNIST-SVHN-Text | mnist | coherence | test accuracy | 0.987 |" in page
    assert "| CelebA | img | coherence | test mean AP | 0.654 |" in page
    # caveats: the data, and how the corrected protocol differs from the paper's
    assert "`data.source: download`" in page and "Synthetic data" not in page
    assert "**PRD (Table 3) is not comparable with the paper:**" in page
    assert "importance-sampling grouping" in page
    assert "`classifier_mode=eval`" in page
    assert "all modalities agree" in page
    assert "*validation* partition" in page
    assert "Only the corrected runs ran, so the training departures are not measured" in page


#: A "(paper; ours - paper)" cell, and a number in bold.
PAPER_DELTA = re.compile(r"\(-?\d+(?:\.\d+)?; [+-]\d")
BOLD_NUMBER = re.compile(r"\*\*-?\d")


def test_synthetic_summary_has_no_paper_deltas_no_best_marks_and_shows_chance(demo):
    page = run_summary(demo, "--data-source", "synthetic")
    assert (
        "\n## Tables (not compared with the paper: synthetic data)\n" in page and "## Tables vs the paper" not in page
    )
    assert not PAPER_DELTA.search(page) and not BOLD_NUMBER.search(page)
    assert "(0.97;" not in page and "**Synthetic data.**" in page
    assert "| Chance |  | 0.10 | 0.10 |" in page and "| Chance |  | 0.01 | 0.10 |" in page  # Tables 1 and 2
    assert "| Chance |  | 0.21 | 0.21 | 0.21 | 0.21 | 0.21 |" in page  # CelebA: the recorded attribute prevalence
    assert "importance-sampling grouping" not in page  # no protocol caveats where nothing is compared
    # the same tree as real data keeps the comparison and the bold best
    real = run_summary(demo, "--data-source", "download")
    assert PAPER_DELTA.search(real) and BOLD_NUMBER.search(real)


def test_a_pipeline_check_dataset_says_so_and_is_not_compared(demo):
    page = run_summary(demo, "--data-source", "download", "--pipeline-checks", "celeba")
    assert "**CelebA is a pipeline check** (`report.pipeline_checks`): it ran only to exercise" in page
    assert "### CelebA (`celeba`): a pipeline check, its numbers are not results" in page
    celeba = page[page.index("**Table 5:") : page.index("## Departures")]
    assert "Not compared with the paper: a pipeline check" in celeba
    assert not PAPER_DELTA.search(celeba) and not BOLD_NUMBER.search(celeba)
    assert "**Table 1 vs the paper:" in page and "(0.97;" in page  # MNIST-SVHN-Text is still compared


def test_both_protocols_compare_the_reference_exact_runs_and_show_the_departures(demo):
    write_demo_results(demo, protocol_name="reference-exact", shift=reference_shift)
    page = run_summary(demo, "--data-source", "download", "--protocols", "corrected", "reference-exact")
    assert "\n## Tables vs the paper (the reference-exact runs)\n" in page
    assert "The paper comparison uses the reference-exact runs (every departure switch at reference" in page
    reference = np.array([PROBE_MMJSD_MNIST[seed] + reference_shift("latent_probe", seed) for seed in (0, 1, 2)])
    assert f"{reference.mean():.2f} ± {reference.std(ddof=1):.2f}** (0.97; {reference.mean() - 0.97:+.2f})" in page
    assert "importance-sampling grouping" not in page and "Caveat:" not in page  # like for like
    assert "**Reference-exact runs** compute every departure with a switch as the official code does" in page
    assert "| mmJSD | reference-exact | 0 1 2 | 0 1 2 |" in page and "| mmJSD | corrected | 0 1 2 | 0 1 2 |" in page
    departures = page[page.index("## Departures") : page.index("## Classifiers")]
    # the probe moves by 0.020-0.022 in every cell (beyond noise); coherence by -0.01, 0, +0.01 (noise)
    assert (
        "- Table 1 (Linear classification accuracy of the latent representations, MNIST-SVHN-Text): 28 of 28 cells"
        in departures
    )
    assert "- Table 2 (Coherence of conditional and random generation, MNIST-SVHN-Text): 0 of 40 cells" in departures
    assert "`results/tables/departures/table1_latent_probe.md`" in departures


def test_real_data_source_read_from_a_file(demo, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"source": "download", "files": {}}))
    page = run_summary(demo, "--data-source-file", str(manifest))
    assert "Synthetic data" not in page
    assert "`data.source: download`" in page
    manifest.write_text(json.dumps({"files": {}}))
    with pytest.raises(UserError, match=re.escape("manifest.json must have a 'source' key")):
        run_summary(demo, "--data-source-file", str(manifest))


def test_one_dataset_only_has_its_caveats(demo):
    page = run_summary(demo, "--datasets", MST)
    assert "**Table 5" not in page and "CelebA test split" not in page
    assert "**Data source not recorded**" in page


def test_malformed_inputs_name_the_file(demo):
    config = demo / "runs" / "corrected" / MST / "mvae" / "seed0" / "config.json"
    config.write_text(json.dumps({"dataset": MST, "seed": 0}))
    with pytest.raises(UserError, match=f"{config} lacks the key"):
        run_summary(demo)
    config.write_text(json.dumps({"dataset": MST, "variant": "mvae", "seed": 0, "protocol": "reference-exact"}))
    with pytest.raises(
        UserError, match=f"{config} records protocol 'reference-exact' but lies in the 'corrected' results tree"
    ):
        run_summary(demo)
    config.write_text(json.dumps({"dataset": MST, "variant": "mvae", "seed": 0, "protocol": "corrected"}))
    classifier = demo / "classifiers" / MST / "svhn" / "metrics.json"
    classifier.write_text(json.dumps({"dataset": MST, "modality": "svhn", "test_accuracy": "high"}))
    with pytest.raises(UserError, match=str(classifier)):
        run_summary(demo)


def test_a_run_whose_metrics_read_no_classifier_names_none(demo):
    """The workflow passes an empty --classifier-metrics when no configured metric reads a classifier."""
    out = demo / "summary.md"
    summary.main(
        [
            "--out",
            str(out),
            "--metrics",
            str(demo / "runs"),
            "--run-configs",
            str(demo / "runs"),
            "--classifier-metrics",
        ]
    )
    assert "## Classifiers" in out.read_text() and "_No classifier metrics were given._" in out.read_text()
