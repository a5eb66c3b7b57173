"""Tables from hand-made metric files: aggregation, bold, footnotes, LaTeX safety, paper comparison.

The results trees (metric files, run configs, classifier metrics, training logs) are built by
``helpers.py``; the ``demo`` fixture (``conftest.py``) is one.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from helpers import CELEBA_PREVALENCE, MST, PROBE_MMJSD_MNIST, reference_shift, write_demo_results
from mmjsd.core import registry
from mmjsd.core.errors import UserError
from mmjsd.reporting import metrics_io
from mmjsd.reporting.metrics_io import load_metric_file, load_metric_files
from mmjsd.reporting.paper import load_paper_table, paper_csv_text
from mmjsd.tables import aggregate, cli, compare, departures, markup, render, specs


def result_for(root: Path, name: str, seeds=None) -> aggregate.TableResult:
    """Build one table from every metric file under ``root``."""
    return aggregate.build_table(specs.TABLES_BY_NAME[name], load_metric_files([root / "runs"]), seeds)


def column(name: str, label: str) -> specs.Column:
    """The column of table ``name`` headed ``label``."""
    return next(c for c in specs.TABLES_BY_NAME[name].columns if c.label == label)


# ---------------------------------------------------------------------------- specs
def test_specs_cover_the_paper_columns_in_order():
    for spec in specs.TABLES:
        header = next(csv.reader(io.StringIO(paper_csv_text(spec.paper_csv))))
        assert ["model"] + [c.label for c in spec.columns] == header
        paper_models = {model for model, _ in load_paper_table(spec.paper_csv)}
        labels = {registry.variant_label(v) for v in registry.variant_names()}
        assert paper_models <= labels


def test_variant_labels_and_order():
    variants = ["mopoe-ms", "mmjsd", "mvae-ms", "mopoe", "mvae", "mmjsd-ms"]
    ordered = sorted(variants, key=registry.variant_sort_key)
    assert ordered == ["mvae", "mmjsd", "mopoe", "mvae-ms", "mmjsd-ms", "mopoe-ms"]
    assert [registry.variant_label(v) for v in ordered] == [
        "MVAE",
        "mmJSD",
        "MoPoE",
        "MVAE (MS)",
        "mmJSD (MS)",
        "MoPoE (MS)",
    ]


# ---------------------------------------------------------------------- aggregation
def test_mean_and_sample_std_over_seeds(demo):
    result = result_for(demo, "table1_latent_probe")
    cell = result.cell("mmjsd", column("table1_latent_probe", "M"))
    expected = np.array(list(PROBE_MMJSD_MNIST.values()))
    assert cell.n == 3
    assert cell.mean == pytest.approx(expected.mean())
    assert cell.std == pytest.approx(expected.std(ddof=1))
    assert cell.std != pytest.approx(expected.std(ddof=0))
    tidy = render.tidy_frame(result)
    rows = tidy[(tidy.variant == "mmjsd") & (tidy.column == "M")].set_index("statistic")["value"]
    assert float(rows["mean"]) == pytest.approx(expected.mean())
    assert float(rows["std"]) == pytest.approx(expected.std(ddof=1))
    assert int(rows["n_seeds"]) == 3
    latex = render.to_latex(result)
    assert "ddof=1" in latex
    assert f"{expected.mean():.2f} $\\pm$ {expected.std(ddof=1):.2f}" in latex


def test_rows_in_stable_order_with_partial_seeds(demo):
    result = result_for(demo, "table1_latent_probe")
    assert result.variants == ("mvae", "mmjsd", "mopoe", "mmjsd-ms")
    assert result.row_seeds["mopoe"] == (0, 1)
    cell = result.cell("mopoe", column("table1_latent_probe", "S"))
    assert cell.n == 2 and cell.seeds == (0, 1)
    assert cell.notes == ("MoPoE: no latent_probe metric file for seed 2",)
    markdown = render.to_markdown(result)
    assert "| MoPoE | 2 |" in markdown
    assert "| mmJSD (MS) | 3 |" in markdown


def test_best_cell_is_bold_per_column(demo):
    result = result_for(demo, "table2_coherence")
    for spec_column in result.spec.columns:
        assert aggregate.best_variants(result, spec_column) == {"mmjsd-ms"}
    latex_rows = [line for line in render.to_latex(result).splitlines() if line.startswith("mmJSD (MS) &")]
    assert latex_rows[0].count(r"\textbf{") == len(result.spec.columns)
    other_rows = [line for line in render.to_latex(result).splitlines() if line.startswith("mmJSD &")]
    assert r"\textbf" not in other_rows[0]


def test_bold_follows_the_direction():
    spec = specs.TableSpec(
        name="lower",
        number=9,
        title="t",
        dataset=MST,
        columns=specs.columns("coherence", {"random": "random"}),
        paper_csv="mmjsd_table2_coherence.csv",
        precision=2,
        value_label="coherence",
        higher_is_better=False,
    )
    cells = {
        ("mvae", "random"): aggregate.Cell(seeds=(0,), values=(0.3,), notes=()),
        ("mmjsd", "random"): aggregate.Cell(seeds=(0,), values=(0.7,), notes=()),
    }
    result = aggregate.TableResult(spec, (0,), ("mvae", "mmjsd"), {"mvae": (0,), "mmjsd": (0,)}, cells, ())
    assert aggregate.best_variants(result, spec.columns[0]) == {"mvae"}


def test_missing_run_is_an_empty_footnoted_cell(demo):
    result = result_for(demo, "table3_prd")
    cell = result.cell("mmjsd-ms", column("table3_prd", "S->M"))
    assert cell.seeds == (0, 2)
    assert cell.notes == ("mmJSD (MS): no prd metric file for seed 1",)
    likelihood = result_for(demo, "table4_likelihood")
    missing_key = likelihood.cell("mvae", column("table4_likelihood", "X|T"))
    assert missing_key.seeds == (1, 2)
    assert "'joint|text' is absent or null in the likelihood file of seed 0" in missing_key.notes[0]


def test_variant_without_any_file_of_a_metric_is_empty_not_zero(demo):
    (demo / "runs" / "corrected" / MST / "mopoe" / "seed0" / "metrics" / "prd.json").unlink()
    (demo / "runs" / "corrected" / MST / "mopoe" / "seed1" / "metrics" / "prd.json").unlink()
    result = result_for(demo, "table3_prd")
    markdown = render.to_markdown(result)
    mopoe_row = next(line for line in markdown.splitlines() if line.startswith("| MoPoE |"))
    cells = [c.strip() for c in mopoe_row.strip("|").split("|")[2:]]
    assert cells and all(re.fullmatch(r"<sup>[a-z]+</sup>", c) for c in cells)
    assert "0.000" not in mopoe_row
    tidy = render.tidy_frame(result)
    means = tidy[(tidy.variant == "mopoe") & (tidy.statistic == "mean")]["value"]
    assert means.isna().all()
    assert "MoPoE: no prd metric file for seed 0, 1, 2" in markdown


def test_explicit_seeds_footnote_a_seed_nobody_ran(demo):
    result = result_for(demo, "table1_latent_probe", seeds=[0, 1, 2, 3])
    cell = result.cell("mvae", column("table1_latent_probe", "M"))
    assert cell.n == 3
    assert cell.notes == ("MVAE: no latent_probe metric file for seed 3",)


# ---------------------------------------------------------------------------- LaTeX
LATEX_SPECIALS = re.compile(r"[_%#^~]")


def strip_escapes(line: str) -> str:
    """A LaTeX line without escaped specials (``\\&``, ``\\_``, ...)."""
    return re.sub(r"\\[_%&#${}]", "", line)


def check_latex(latex: str, n_columns: int) -> None:
    """Balanced braces and environments, no stray specials, one cell per column in every row."""
    depth = 0
    for char in strip_escapes(latex):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, "closing brace without opening brace"
    assert depth == 0, "unbalanced braces"
    assert re.findall(r"\\begin\{(\w+)\}", latex) == list(reversed(re.findall(r"\\end\{(\w+)\}", latex)))
    tabular = latex.split(r"\midrule")[1].split(r"\bottomrule")[0]
    header = latex.split(r"\toprule")[1].split(r"\midrule")[0]
    for line in filter(None, (header + tabular).splitlines()):
        cleaned = strip_escapes(line)
        spans = sum(int(k) - 1 for k in re.findall(r"\\multicolumn\{(\d+)\}", cleaned))
        assert cleaned.count("&") + 1 + spans == n_columns, line
        assert cleaned.rstrip().endswith(r"\\"), line
    rows = set(filter(None, (header + tabular).splitlines()))
    for line in latex.splitlines():
        if line.startswith("%"):
            continue
        cleaned = strip_escapes(line).replace(r"\\", "")
        assert not LATEX_SPECIALS.search(cleaned), line
        assert line in rows or "&" not in cleaned, line
        assert cleaned.count("$") % 2 == 0, line
    assert "\n\n" not in latex.split(r"\begin{tabular}")[1], "blank line inside the tabular"


def compile_latex(latex: str, directory: Path) -> None:
    """Run pdflatex on a minimal document when it is installed."""
    document = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + latex + "\\end{document}\n"
    (directory / "t.tex").write_text(document)
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout[-2000:]


def test_latex_is_compile_safe_with_special_characters(demo, tmp_path):
    nasty = {"split": "test_50%", "note&#": "a~b^c{d}", "path": r"C:\x$y"}
    for path in (demo / "runs" / "corrected" / MST).glob("*/seed*/metrics/coherence.json"):
        document = json.loads(path.read_text())
        document["protocol"].update(nasty)
        path.write_text(json.dumps(document))
    for name in ("table2_coherence", "table3_prd", "table4_likelihood"):
        result = result_for(demo, name)
        latex = render.to_latex(result)
        check_latex(latex, n_columns=2 + len(result.spec.columns))
        if shutil.which("pdflatex"):
            compile_latex(latex, tmp_path)
    coherence_latex = render.to_latex(result_for(demo, "table2_coherence"))
    assert r"test\_50\%" in coherence_latex
    assert r"S$\to$M" in coherence_latex
    assert r"X\textbar{}M" in render.to_latex(result_for(demo, "table4_likelihood"))
    assert "$-$18" in render.to_latex(result_for(demo, "table4_likelihood"))


def test_latex_without_runs_is_still_a_valid_table(tmp_path):
    result = aggregate.build_table(specs.TABLES_BY_NAME["table5_celeba"], [])
    latex = render.to_latex(result)
    check_latex(latex, n_columns=7)
    assert "no runs found" in latex


def test_caption_states_protocol_and_seeds(demo):
    caption = render.caption(result_for(demo, "table4_likelihood"), markup.MARKDOWN)
    assert "seeds 0, 1, 2" in caption
    assert "`num_importance_samples=12`" in caption
    assert "`split=test`" in caption
    prd_caption = render.caption(result_for(demo, "table3_prd"), markup.LATEX)
    assert r"\texttt{clf\_penult\_128}" in prd_caption
    assert "Not comparable with the paper" in prd_caption


# ------------------------------------------------------------------ paper comparison
def test_comparison_differences_are_ours_minus_paper(demo):
    result = result_for(demo, "table2_coherence")
    paper = load_paper_table(result.spec.paper_csv)
    frame = compare.comparison_frame(result, paper)
    assert set(frame.model) == {"MVAE", "mmJSD", "mmJSD (MS)"}  # MoPoE is not in the paper
    assert len(frame) == 3 * len(result.spec.columns)
    row = frame[(frame.variant == "mmjsd") & (frame.column == "S->M")].iloc[0]
    ours = np.mean([0.5 + 0.10 + 0.01 * seed + 0.001 * 1 for seed in (0, 1, 2)])
    assert row.paper == 0.82
    assert row.ours_mean == pytest.approx(ours)
    assert row.difference == pytest.approx(ours - 0.82)
    assert bool(row.comparable)
    markdown = compare.comparison_markdown(result, paper)
    assert f"({0.82:.2f}; {ours - 0.82:+.2f})" in markdown
    assert "Paper rows without a run here: MMVAE, MMVAE (MS), MVAE (MS)." in markdown


def test_likelihood_comparison_carries_the_estimator_caveat(demo):
    result = result_for(demo, "table4_likelihood")
    paper = load_paper_table(result.spec.paper_csv)
    frame = compare.comparison_frame(result, paper)
    assert frame.comparable.all()
    assert frame.note.str.contains("importance-sampling grouping").all()
    row = frame[(frame.variant == "mvae") & (frame.column == "X")].iloc[0]
    assert row.difference == pytest.approx(row.ours_mean - (-1864))
    assert "importance-sampling grouping" in compare.comparison_markdown(result, paper)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("table1_latent_probe", "last training batch (256 pairs"),
        ("table2_coherence", "only when all modalities agree"),
        ("table5_celeba", "pools AP over the whole test split"),
    ],
)
def test_comparisons_say_how_the_protocol_differs_from_the_paper(demo, name, words):
    result = result_for(demo, name)
    paper = load_paper_table(result.spec.paper_csv)
    frame = compare.comparison_frame(result, paper)
    assert len(frame) and frame.comparable.all() and frame.note.str.contains(words, regex=False).all()
    assert words in compare.comparison_markdown(result, paper)


def test_prd_with_classifier_features_is_not_compared(demo):
    result = result_for(demo, "table3_prd")
    paper = load_paper_table(result.spec.paper_csv)
    frame = compare.comparison_frame(result, paper)
    assert not frame.comparable.any()
    assert frame.ours_mean.isna().all() and frame.difference.isna().all()
    assert frame.note.str.contains("clf_penult_128").all()
    markdown = compare.comparison_markdown(result, paper)
    assert "**Not comparable with the paper.**" in markdown
    assert "clf\\_penult\\_128" in markdown
    assert "(0.19;" not in markdown  # no paper value beside ours


def test_prd_with_inception_features_is_compared(tmp_path):
    root = write_demo_results(tmp_path / "results", extractor=metrics_io.INCEPTION_EXTRACTOR)
    result = result_for(root, "table3_prd")
    frame = compare.comparison_frame(result, load_paper_table(result.spec.paper_csv))
    assert frame.comparable.all()
    row = frame[(frame.variant == "mvae") & (frame.column == "random S")].iloc[0]
    assert row.difference == pytest.approx(row.ours_mean - 0.33)
    assert "Not comparable" not in render.caption(result, markup.MARKDOWN)


def test_mixed_extractors_are_refused(demo):
    path = demo / "runs" / "corrected" / MST / "mvae" / "seed0" / "metrics" / "prd.json"
    document = json.loads(path.read_text())
    document["extractor"]["name"] = metrics_io.INCEPTION_EXTRACTOR
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match="different feature extractors"):
        result_for(demo, "table3_prd")


# ----------------------------------------------------------------------- files, CLI
def written_files(out_dir: Path) -> set[str]:
    """Every file below ``out_dir``, relative to it."""
    return {path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*") if path.is_file()}


def test_cli_writes_every_table_file(demo, tmp_path, capsys):
    out_dir = tmp_path / "tables"
    cli.main(["--out-dir", str(out_dir), "--metrics", str(demo / "runs")])
    expected = specs.table_files(specs.TABLES, ["corrected"])
    assert written_files(out_dir) == set(expected) and len(expected) == len(set(expected))
    assert {f"corrected/{name}" for spec in specs.TABLES for name in spec.file_names} <= written_files(out_dir)
    assert "departures/evaluation.md" in expected and not any(f.startswith("departures/table") for f in expected)
    tidy = pd.read_csv(out_dir / "corrected" / "table1_latent_probe.csv")
    assert set(tidy.statistic) == {"mean", "std", "n_seeds"} and set(tidy.protocol) == {"corrected"}
    assert len(tidy) == 4 * 7 * 3
    assert not list(out_dir.rglob(".*tmp*")), "temporary files left behind"


def test_malformed_metric_file_names_the_file(demo):
    bad = demo / "runs" / "corrected" / MST / "mvae" / "seed0" / "metrics" / "coherence.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=re.escape(str(bad))):
        load_metric_files([demo / "runs"])
    bad.write_text(json.dumps({"metric": "coherence", "dataset": MST, "variant": "mvae", "seed": 0}))
    with pytest.raises(UserError, match="lacks the key"):
        load_metric_file(bad)
    document = {"metric": "coherence", "dataset": MST, "variant": "mvae", "seed": 0, "values": {"random": "x"}}
    bad.write_text(json.dumps(document))
    with pytest.raises(UserError, match=re.escape(str(bad))):
        load_metric_file(bad)


def test_cli_reports_malformed_file_as_error(demo, tmp_path, capsys):
    from mmjsd.core.cli import main_guard

    (demo / "runs" / "corrected" / MST / "mvae" / "seed0" / "metrics" / "prd.json").write_text("[]")
    with pytest.raises(SystemExit) as exit_info:
        main_guard(cli.main, ["--out-dir", str(tmp_path / "t"), "--metrics", str(demo / "runs")])
    assert exit_info.value.code == 2
    assert "prd.json must hold a JSON object" in capsys.readouterr().err


# ------------------------------------------------------------------ chance levels
def test_chance_levels_derive_from_the_number_of_classes_the_formula_and_the_prevalence(demo):
    probe = result_for(demo, "table1_latent_probe")
    assert probe.chance == {label: pytest.approx(1 / 10) for label in probe.chance}
    coherence = result_for(demo, "table2_coherence")
    assert coherence.chance["random"] == pytest.approx(1 / 100)  # all three of ten digits agree: 10 * 10^-3
    assert coherence.chance["S->M"] == pytest.approx(1 / 10)
    assert all(level is None for level in result_for(demo, "table4_likelihood").chance.values())
    assert all(level is None for level in result_for(demo, "table3_prd").chance.values())
    celeba = [c.label for c in specs.TABLES_BY_NAME["table5_celeba"].columns]
    assert result_for(demo, "table5_celeba").chance == {label: pytest.approx(CELEBA_PREVALENCE) for label in celeba}
    # the mmjsd formula (M == S) == (M == T) scores uniform guesses 0.1^2 + 0.9^2
    for path in (demo / "runs" / "corrected" / MST).glob("*/seed*/metrics/coherence.json"):
        document = json.loads(path.read_text())
        document["protocol"]["departures"] = {"random_coherence_formula": "reference"}
        path.write_text(json.dumps(document))
    assert result_for(demo, "table2_coherence").chance["random"] == pytest.approx(0.82)
    # shown as the last row and in the tidy CSV
    markdown = render.to_markdown(coherence)
    chance_line = next(line for line in markdown.splitlines() if line.startswith("| Chance |"))
    assert chance_line.split("|")[3].strip() == "0.01" and chance_line.split("|")[4].strip() == "0.10"
    tidy = render.tidy_frame(coherence)
    assert list(tidy[tidy.column == "random"].chance) == pytest.approx([0.01] * 3 * len(coherence.variants))
    assert "Chance" not in render.to_markdown(result_for(demo, "table4_likelihood"))


def test_prd_captions_carry_the_ceiling(demo):
    assert "0.7204" in render.caption(result_for(demo, "table3_prd"), markup.MARKDOWN)


# ------------------------------------------------------------------ synthetic data, pipeline checks
BOLD_NUMBER = re.compile(r"\*\*-?\d|\\textbf\{")


def test_synthetic_data_gets_no_paper_values_no_best_marks_and_chance_levels(demo, tmp_path):
    out_dir = tmp_path / "tables"
    cli.main(["--out-dir", str(out_dir), "--metrics", str(demo / "runs"), "--data-source", "synthetic"])
    for name in written_files(out_dir):
        text = (out_dir / name).read_text()
        assert not BOLD_NUMBER.search(text), name
    for spec in specs.TABLES:
        frame = pd.read_csv(out_dir / f"{spec.name}_vs_paper.csv")
        assert frame.paper.isna().all() and frame.difference.isna().all() and not frame.comparable.any()
        assert frame.ours_mean.notna().any() and frame.note.str.contains("synthetic data").all()
        markdown = (out_dir / f"{spec.name}_vs_paper.md").read_text()
        assert "Not compared with the paper: synthetic data" in markdown
        assert not re.search(r"\(-?\d+\.?\d*; [+-]", markdown), spec.name  # no "(paper; ours - paper)" cell
    probe = (out_dir / "table1_latent_probe_vs_paper.md").read_text()
    assert "(0.97;" not in probe and "| Chance |  | 0.10 |" in probe
    assert "| Chance |  | 0.01 | 0.10 |" in (out_dir / "corrected" / "table2_coherence.md").read_text()
    assert "No best value is marked." in (out_dir / "corrected" / "table2_coherence.md").read_text()
    assert (
        "Not comparable with the paper: synthetic data"
        in (out_dir / "corrected" / "table1_latent_probe.tex").read_text()
    )


def test_real_data_keeps_the_comparison_and_a_pipeline_check_dataset_is_not_compared(demo, tmp_path):
    out_dir = tmp_path / "tables"
    cli.main(
        [
            "--out-dir",
            str(out_dir),
            "--metrics",
            str(demo / "runs"),
            "--data-source",
            "download",
            "--pipeline-checks",
            "celeba",
        ]
    )
    probe = (out_dir / "table1_latent_probe_vs_paper.md").read_text()
    values = np.array(list(PROBE_MMJSD_MNIST.values()))
    assert f"{values.mean():.2f} ± {values.std(ddof=1):.2f}** (0.97; {values.mean() - 0.97:+.2f})" in probe
    assert "Ours: the corrected runs" in probe and "Caveat: The mmJSD code fitted its probes" in probe
    celeba = (out_dir / "table5_celeba_vs_paper.md").read_text()
    assert "Not compared with the paper: a pipeline check: CelebA ran only to exercise the pipeline" in celeba
    assert "its numbers are not results" in celeba and "(0.42;" not in celeba and not BOLD_NUMBER.search(celeba)
    assert pd.read_csv(out_dir / "table5_celeba_vs_paper.csv").paper.isna().all()
    assert "ran only to exercise the pipeline" in (out_dir / "corrected" / "table5_celeba.tex").read_text()


# ------------------------------------------------------------------ protocols and departures
@pytest.fixture
def both(tmp_path: Path) -> Path:
    """Corrected runs (:func:`write_demo_results`) and reference-exact runs shifted by :func:`reference_shift`."""
    root = write_demo_results(tmp_path / "results")
    return write_demo_results(root, protocol_name="reference-exact", shift=reference_shift)


def test_both_protocols_give_their_tables_the_comparison_from_reference_exact_and_the_departures(both, tmp_path):
    out_dir = tmp_path / "tables"
    cli.main(
        ["--out-dir", str(out_dir), "--metrics", str(both / "runs"), "--protocols", "corrected", "reference-exact"]
    )
    assert written_files(out_dir) == set(specs.table_files(specs.TABLES, ["corrected", "reference-exact"]))
    exact = pd.read_csv(out_dir / "reference-exact" / "table1_latent_probe.csv")
    cell = exact[(exact.variant == "mmjsd") & (exact.column == "M")].set_index("statistic").value
    corrected = np.array(list(PROBE_MMJSD_MNIST.values()))
    reference = corrected + np.array([reference_shift("latent_probe", seed) for seed in (0, 1, 2)])
    assert float(cell["mean"]) == pytest.approx(reference.mean())

    # the paper comparison: the reference-exact runs, like for like (no protocol caveat)
    frame = pd.read_csv(out_dir / "table1_latent_probe_vs_paper.csv")
    row = frame[(frame.variant == "mmjsd") & (frame.column == "M")].iloc[0]
    assert row.protocol == "reference-exact" and row.ours_mean == pytest.approx(reference.mean())
    assert row.difference == pytest.approx(reference.mean() - 0.97) and frame.note.isna().all()
    markdown = (out_dir / "table1_latent_probe_vs_paper.md").read_text()
    assert "Ours: the reference-exact runs" in markdown and "Caveat" not in markdown

    # corrected - reference-exact per cell: paired by seed, seed spread, paired t-test
    differences = pd.read_csv(out_dir / "departures" / "table1_latent_probe.csv")
    stats = differences[(differences.variant == "mmjsd") & (differences.column == "M")].set_index("statistic").value
    paired = corrected - reference
    assert float(stats["mean"]) == pytest.approx(paired.mean()) and float(stats["std"]) == pytest.approx(
        paired.std(ddof=1)
    )
    assert int(stats["n_seeds"]) == 3 and stats["exceeds_seed_noise"] == "yes"
    assert float(stats["p_value"]) == pytest.approx(scipy_stats.ttest_rel(corrected, reference).pvalue)
    coherence = pd.read_csv(out_dir / "departures" / "table2_coherence.csv")
    mopoe = coherence[(coherence.variant == "mopoe") & (coherence.column == "random")].set_index("statistic").value
    # seeds 0, 1: +0.01 - ... = -0.01, 0
    assert float(mopoe["mean"]) == pytest.approx(-0.005) and int(mopoe["n_seeds"]) == 2
    assert mopoe["exceeds_seed_noise"] == "no"
    text = (out_dir / "departures" / "table1_latent_probe.md").read_text()
    assert f"| mmJSD | 3 | {paired.mean():+.3f} ± {paired.std(ddof=1):.3f}† |" in text
    assert "paired two-sided t-test" in text and "**" not in text.split("\n\n", 2)[2]


def test_evaluation_departures_are_each_switch_alone_on_the_corrected_runs(demo, tmp_path):
    effect = {0: 0.03, 1: 0.05, 2: 0.04}
    for path in (demo / "runs" / "corrected" / MST).glob("mmjsd/seed*/metrics/coherence.json"):
        document = json.loads(path.read_text())
        seed = document["seed"]
        document["protocol"]["departures"] = {"classifier_mode": "corrected", "random_coherence_formula": "corrected"}
        document["alternatives"] = {
            "classifier_mode": {k: v - effect[seed] for k, v in document["values"].items()},
            "random_coherence_formula": {**document["values"], "random": 0.8},
        }
        if seed == 2:  # a user flipped the switch for this run: its values are the reference, alternatives corrected
            document["protocol"]["departures"]["classifier_mode"] = "reference"
            document["alternatives"]["classifier_mode"] = {k: v + effect[seed] for k, v in document["values"].items()}
        path.write_text(json.dumps(document))
    out_dir = tmp_path / "tables"
    cli.main(["--out-dir", str(out_dir), "--metrics", str(demo / "runs")])
    frame = pd.read_csv(out_dir / "departures" / "evaluation.csv")
    assert set(frame.departure) == {"classifier_mode", "random_coherence_formula"}
    mode = (
        frame[(frame.departure == "classifier_mode") & (frame.variant == "mmjsd") & (frame.column == "S->M")]
        .set_index("statistic")
        .value
    )
    assert (
        float(mode["mean"]) == pytest.approx(0.04)
        and float(mode["std"]) == pytest.approx(0.01)
        and int(mode["n_seeds"]) == 3
    )
    assert float(mode["p_value"]) == pytest.approx(scipy_stats.ttest_1samp([0.03, 0.05, 0.04], 0.0).pvalue)
    formula = frame[(frame.departure == "random_coherence_formula") & (frame.variant == "mmjsd")]
    means = formula[formula.statistic == "mean"].set_index("column").value.astype(float)
    values = [0.5 + 0.10 + 0.01 * seed for seed in (0, 1, 2)]  # spec_values of "random" (column 0)
    assert means["random"] == pytest.approx(np.mean(values) - 0.8)
    assert (means.drop("random") == 0).all()  # the formula moves no conditional coherence
    assert set(formula[(formula.statistic == "exceeds_seed_noise") & (formula.column != "random")].value) == {"no"}
    text = (out_dir / "departures" / "evaluation.md").read_text()
    assert (
        "## `classifier_mode`" in text and "## `random_coherence_formula`" in text and "## `probe_protocol`" not in text
    )


def test_seed_noise_test_is_the_paired_t_test():
    rng = np.random.default_rng(3)
    for n in (2, 3, 5):
        sample = rng.normal(0.01, 0.02, size=n)
        test = departures.seed_noise_test(list(sample))
        assert test.p_value == pytest.approx(scipy_stats.ttest_1samp(sample, 0.0).pvalue)
        assert test.verdict == ("yes" if test.p_value < 0.05 else "no")
    assert departures.seed_noise_test([0.2]) == departures.NoiseTest(None, "n/a (1 seed)")
    assert (
        departures.seed_noise_test([0.0, 0.0]).verdict == "no"
        and departures.seed_noise_test([0.1, 0.1]).verdict == "yes"
    )


def test_protocols_are_never_mixed(both, tmp_path):
    records = load_metric_files([both / "runs"])
    with pytest.raises(UserError, match="one table cannot mix protocols"):
        aggregate.build_table(specs.TABLES_BY_NAME["table1_latent_probe"], records)
    with pytest.raises(UserError, match="metric files of protocol 'reference-exact' were given"):
        cli.main(["--out-dir", str(tmp_path / "t"), "--metrics", str(both / "runs"), "--protocols", "corrected"])
    # a file in the other protocol's tree
    path = both / "runs" / "corrected" / MST / "mvae" / "seed0" / "metrics" / "prd.json"
    document = json.loads(path.read_text())
    document["protocol"]["name"] = "reference-exact"
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match="records protocol 'reference-exact' but lies in the 'corrected' results tree"):
        load_metric_file(path)
    del document["protocol"]["name"]
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match=re.escape("'protocol.name' must be one of corrected, reference-exact")):
        load_metric_file(path)


def test_protocol_items_merge_consistent_switch_subsets_and_keep_real_differences():
    """Each run records only the switches acting on it; the caption states their union once. Runs that disagree on a
    value (a key or a shared switch) are still listed apart and marked as varying."""

    def records(*protocols):
        return [types.SimpleNamespace(protocol=protocol) for protocol in protocols]

    mmjsd = {"n_test": 1000, "departures": {"text_likelihood": "corrected", "dynamic_prior_epsilon": "corrected"}}
    mvae = {"n_test": 1000, "departures": {"text_likelihood": "corrected", "mvae_unimodal_kl": "corrected"}}
    assert aggregate.protocol_items(records(mmjsd, mvae)) == [
        'departures={"dynamic_prior_epsilon":"corrected","mvae_unimodal_kl":"corrected","text_likelihood":"corrected"}',
        "n_test=1000",
    ]
    flipped = {"n_test": 500, "departures": {"text_likelihood": "reference"}}
    assert aggregate.protocol_items(records(mmjsd, flipped)) == [
        'departures={"dynamic_prior_epsilon":"corrected","text_likelihood":"corrected"}/{"text_likelihood":"reference"}'
        " (varies between runs)",
        "n_test=1000/500 (varies between runs)",
    ]
