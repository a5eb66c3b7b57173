"""Figures from hand-made metric files and training logs: files written, content as claimed."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.lines import Line2D

from helpers import MST, write_demo_results, write_train_log
from mmjsd import plots
from mmjsd.core.errors import UserError
from mmjsd.reporting.metrics_io import load_metric_files, load_train_log
from mmjsd.reporting.paper import load_paper_table
from mmjsd.tables import aggregate, specs
from mmjsd.tables.context import ReportContext

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def table_result(root: Path, name: str) -> aggregate.TableResult:
    return aggregate.build_table(specs.TABLES_BY_NAME[name], load_metric_files([root / "runs"]))


def paper_markers(figure) -> list[Line2D]:
    """The paper's diamonds on all panels."""
    return [line for axes in figure.axes for line in axes.get_lines() if line.get_marker() == "D"]


def test_table_figure_shows_ours_and_the_paper(demo):
    result = table_result(demo, "table2_coherence")
    paper = load_paper_table(result.spec.paper_csv)
    figure = plots.table_figure(result, paper)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == [c.label.replace("->", "→") for c in result.spec.columns]
    labels = [tick.get_text() for tick in panels[0].get_xticklabels()]
    assert labels == ["MVAE", "mmJSD", "MoPoE", "mmJSD (MS)"]
    # the paper reports 3 of our 4 rows (no MoPoE) in each of 10 columns
    markers = paper_markers(figure)
    assert len(markers) == 3 * len(result.spec.columns)
    assert markers[0].get_ydata()[0] == paper[("MVAE", "random")]


def test_non_comparable_prd_figure_has_no_paper_values(demo):
    result = table_result(demo, "table3_prd")
    figure = plots.table_figure(result, load_paper_table(result.spec.paper_csv))
    assert paper_markers(figure) == []
    assert "not comparable" in figure.get_suptitle()


def test_synthetic_figures_show_chance_and_no_paper_values(demo):
    records = load_metric_files([demo / "runs"])
    result = aggregate.build_table(
        specs.TABLES_BY_NAME["table2_coherence"], records, context=ReportContext("synthetic")
    )
    figure = plots.table_figure(result, load_paper_table(result.spec.paper_csv))
    assert paper_markers(figure) == []
    assert (
        "not compared with the paper: synthetic data" in figure.get_suptitle()
        and "corrected runs" in figure.get_suptitle()
    )
    panels = [axes for axes in figure.axes if axes.get_visible()]
    chance = [line for line in panels[0].get_lines() if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in chance] == [pytest.approx(0.01)]  # random coherence: three digits agree


def test_figures_use_the_reference_exact_runs_when_they_ran(demo, tmp_path, monkeypatch):
    write_demo_results(demo, protocol_name="reference-exact", shift=lambda metric, seed: -0.3)
    out_dir = tmp_path / "figures"
    drawn = []
    write = plots.write_table_figures
    monkeypatch.setattr(plots, "write_table_figures", lambda results, out: drawn.extend(results) or write(results, out))
    plots.main(
        [
            "tables",
            "--metrics",
            str(demo / "runs"),
            "--datasets",
            MST,
            "--out-dir",
            str(out_dir),
            "--data-source",
            "download",
        ]
    )
    assert (out_dir / "table2_coherence_vs_paper.png").read_bytes().startswith(PNG_MAGIC)
    assert {result.protocol for result in drawn} == {"reference-exact"} and len(drawn) == 4
    records = [r for r in load_metric_files([demo / "runs"]) if r.protocol_name == "reference-exact"]
    result = aggregate.build_table(specs.TABLES_BY_NAME["table2_coherence"], records, context=ReportContext("download"))
    figure = plots.table_figure(result, load_paper_table(result.spec.paper_csv))
    assert "reference-exact runs" in figure.get_suptitle() and "caveat" not in figure.get_suptitle()
    assert len(paper_markers(figure)) == 3 * len(result.spec.columns)


def test_cli_writes_png_and_pdf(demo, tmp_path):
    out_dir = tmp_path / "figures"
    plots.main(["tables", "--metrics", str(demo / "runs"), "--datasets", "celeba", "--out-dir", str(out_dir)])
    png, pdf = out_dir / "table5_celeba_vs_paper.png", out_dir / "table5_celeba_vs_paper.pdf"
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in out_dir.iterdir()) == [pdf.name, png.name]


def test_training_curves_one_line_per_seed_and_term(demo, tmp_path):
    for seed in (0, 1, 2):
        write_train_log(demo, MST, "mmjsd", seed)
    logs = [load_train_log(p) for p in sorted((demo / "runs").rglob("train_log.csv"))]
    figure = plots.curves_figure(logs)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == ["loss", "rec/mnist", "kl/content"]
    assert all(len(axes.get_lines()) == 3 for axes in panels)
    assert list(panels[1].get_lines()[2].get_ydata()) == [100.0 / epoch + 2 for epoch in range(1, 6)]
    out_dir = tmp_path / "figures"
    plots.main(["curves", "--out-dir", str(out_dir), "--logs", str(demo / "runs")])
    assert (out_dir / "training_curves_mnist_svhn_text_mmjsd.png").read_bytes().startswith(PNG_MAGIC)
    assert (out_dir / "training_curves_mnist_svhn_text_mmjsd.pdf").is_file()


def test_bad_training_logs_name_the_file(demo, tmp_path):
    log = write_train_log(demo, MST, "mvae", 0)
    log.write_text("epoch,steps\n1,10\n")
    with pytest.raises(UserError, match=f"{log} lacks the column 'loss'"):
        load_train_log(log)
    stray = tmp_path / "train_log.csv"
    stray.write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(UserError, match="not inside a run directory"):
        load_train_log(stray)
