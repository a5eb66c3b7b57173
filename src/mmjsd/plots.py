"""Figures: each paper table as ours-vs-paper points per column, and training curves per run group.

Both kinds are written as PNG and PDF through matplotlib's object-oriented API on the Agg
canvas (no pyplot, no display). The table figures show the runs the paper comparison uses
(reference-exact when that protocol ran, else corrected; the title says which), the
paper's values only where the comparison shows them, and each column's chance level as a
dashed line. Command lines::

    python -m mmjsd.plots tables --out-dir results/figures --metrics results/runs --data-source synthetic
    python -m mmjsd.plots curves --out-dir results/figures/corrected --logs results/runs/corrected
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mmjsd.core import registry
from mmjsd.core.cli import main_guard
from mmjsd.core.departures import REFERENCE_EXACT_PROTOCOL
from mmjsd.core.errors import UserError
from mmjsd.core.registry import variant_label, variant_sort_key
from mmjsd.reporting.figures import save_figure
from mmjsd.reporting.metrics_io import TRAIN_LOG_PATTERN, TrainLog, expand_paths, load_metric_files, load_train_log
from mmjsd.reporting.paper import PaperTable, load_paper_table
from mmjsd.tables.aggregate import TableResult, by_protocol, comparability, paper_withheld, protocol_tables
from mmjsd.tables.cli import add_selection_arguments
from mmjsd.tables.context import add_context_arguments, context_from_arguments
from mmjsd.tables.render import direction_text
from mmjsd.tables.specs import Column

MAX_PANELS_PER_ROW = 5
#: Columns of ``train_log.csv`` that are bookkeeping, not curves.
NON_CURVE_COLUMNS = ("epoch", "steps", "wall_time_s")
OURS_COLOR, PAPER_COLOR, SEED_COLOR, CHANCE_COLOR = "tab:blue", "tab:red", "0.55", "0.3"
#: Horizontal offsets of the seed dots, our mean and the paper marker around each model's tick.
SEED_OFFSET, OURS_OFFSET, PAPER_OFFSET = -0.22, -0.05, 0.18


def display_label(label: str) -> str:
    """A column label for a plot title: ``S->M`` → ``S→M``."""
    return label.replace("->", "→")


def new_figure(n_panels: int, panel_size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure on the Agg canvas with ``n_panels`` axes in balanced rows; extras hidden."""
    n_rows = max(1, math.ceil(n_panels / MAX_PANELS_PER_ROW))
    n_cols = max(1, math.ceil(n_panels / n_rows))
    figure = Figure(figsize=(panel_size[0] * n_cols, panel_size[1] * n_rows + 1.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(n_rows, n_cols, squeeze=False).flat)
    for unused in axes[n_panels:]:
        unused.set_visible(False)
    return figure, axes[:n_panels]


# ------------------------------------------------------------------------ table plots
def plot_column(axes: Axes, result: TableResult, column: Column, paper: PaperTable | None) -> None:
    """One panel: per model, single-seed dots, our mean ± std, and the paper's value if given."""
    for x, variant in enumerate(result.variants):
        cell = result.cell(variant, column)
        axes.scatter([x + SEED_OFFSET] * cell.n, cell.values, s=10, color=SEED_COLOR, zorder=2)
        if cell.n:
            std = cell.std if cell.n > 1 else 0.0
            axes.errorbar(x + OURS_OFFSET, cell.mean, yerr=std, fmt="o", color=OURS_COLOR, capsize=3, zorder=3)
        paper_value = paper.get((variant_label(variant), column.label)) if paper is not None else None
        if paper_value is not None:
            axes.plot(x + PAPER_OFFSET, paper_value, "D", color=PAPER_COLOR, markersize=6, zorder=3)
    if result.chance.get(column.label) is not None and result.variants:
        axes.axhline(result.chance[column.label], color=CHANCE_COLOR, linestyle="--", linewidth=1, zorder=1)
    axes.set_title(display_label(column.label), fontsize=10)
    axes.set_xticks(range(len(result.variants)), [variant_label(v) for v in result.variants])
    axes.tick_params(axis="x", labelrotation=40, labelsize=8)
    for tick in axes.get_xticklabels():
        tick.set_horizontalalignment("right")
    axes.set_xlim(-0.6, len(result.variants) - 0.4)
    axes.grid(axis="y", alpha=0.3)


def table_figure(result: TableResult, paper: PaperTable | None) -> Figure:
    """Ours (mean ± std over seeds, single seeds as dots) vs the paper (when
    ``paper`` is given), one panel per column."""
    spec = result.spec
    shown = paper if paper is not None and not comparability(result) else None
    figure, panels = new_figure(len(spec.columns), panel_size=(3.3, 3.0))
    for axes, column in zip(panels, spec.columns, strict=True):
        plot_column(axes, result, column, shown)
        if axes.get_subplotspec().is_first_col():
            axes.set_ylabel(spec.value_label, fontsize=9)
    runs = f"{result.protocol} runs" if result.protocol else "no runs"
    title = f"{spec.heading}: {spec.title}\n{registry.dataset(spec.dataset).title}, {direction_text(spec)}; {runs}"
    if paper_withheld(result):
        title += f"\n(not compared with the paper: {result.context.not_results_label(spec.dataset)})"
    elif paper is not None and shown is None:
        title += " (paper values not shown: different PRD feature extractor, not comparable)"
    elif shown is not None and spec.comparison_caveat and result.protocol != REFERENCE_EXACT_PROTOCOL:
        title += " (protocols differ from the paper's: see the caveat in the comparison table)"
    figure.suptitle(title, fontsize=11)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=SEED_COLOR, markersize=4, label="ours, single seed"),
        Line2D([], [], marker="o", linestyle="-", color=OURS_COLOR, label="ours, mean ± std over seeds"),
    ]
    if shown is not None:
        handles.append(Line2D([], [], marker="D", linestyle="", color=PAPER_COLOR, label="paper"))
    if result.variants and any(level is not None for level in result.chance.values()):
        handles.append(Line2D([], [], linestyle="--", color=CHANCE_COLOR, label="chance"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return figure


def write_table_figures(results: Sequence[TableResult], out_dir: Path) -> list[Path]:
    """``<table>_vs_paper.{png,pdf}`` for every paper table,
    ``<table>.{png,pdf}`` for the others (TableSpec.figure_stem).

    ``results`` are the tables of the protocol the paper comparison uses.
    """
    paths = []
    for result in results:
        paper = load_paper_table(result.spec.paper_csv) if result.spec.compared else None
        paths += save_figure(table_figure(result, paper), out_dir / result.spec.figure_stem)
    return paths


# --------------------------------------------------------------------- training curves
def curve_names(logs: Sequence[TrainLog]) -> list[str]:
    """``loss`` first, then every other logged term in first-seen order."""
    names = dict.fromkeys(name for log in logs for name in log.columns if name not in NON_CURVE_COLUMNS)
    return ["loss"] + [name for name in names if name != "loss"]


def curves_figure(logs: Sequence[TrainLog]) -> Figure:
    """One panel per logged quantity against epoch, one line per seed (logs of one dataset and variant)."""
    names = curve_names(logs)
    figure, panels = new_figure(len(names), panel_size=(3.4, 2.6))
    for axes, name in zip(panels, names, strict=True):
        for log in logs:
            if name in log.columns:
                axes.plot(log.columns["epoch"], log.columns[name], marker=".", label=f"seed {log.seed}")
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("epoch", fontsize=9)
        axes.grid(alpha=0.3)
    first = logs[0]
    figure.suptitle(
        f"Training curves: {registry.dataset(first.dataset).title}, {variant_label(first.variant)}", fontsize=11
    )
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6), fontsize=9)
    return figure


def group_logs(logs: Sequence[TrainLog]) -> dict[tuple[str, str], list[TrainLog]]:
    """Logs by (dataset, variant) in table order, each group sorted by seed."""
    groups: dict[tuple[str, str], list[TrainLog]] = {}
    for log in sorted(logs, key=lambda g: (g.dataset, variant_sort_key(g.variant), g.seed)):
        groups.setdefault((log.dataset, log.variant), []).append(log)
    return groups


def write_curve_figures(logs: Sequence[TrainLog], out_dir: Path) -> list[Path]:
    """``training_curves_<dataset>_<variant>.{png,pdf}`` for every (dataset, variant)."""
    paths = []
    for (dataset, variant), group in group_logs(logs).items():
        paths += save_figure(curves_figure(group), out_dir / f"training_curves_{dataset}_{variant}")
    return paths


# ------------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments of ``python -m mmjsd.plots``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.plots",
        description="Figures as PNG and PDF. 'tables': one figure per table, ours (mean ± std over seeds, "
        "single seeds as dots, chance as a dashed line) beside the paper's value per column, written as "
        "<table>_vs_paper.{png,pdf} (<table>.{png,pdf} for tables the paper does not have), from the runs the "
        "paper comparison uses (reference-exact when listed in --protocols, else corrected); the paper's values are "
        "left out for synthetic data, pipeline checks and PRD without Inception features. "
        "'curves': training curves (loss and each logged term against epoch, one line per seed) per "
        "(dataset, variant), written as training_curves_<dataset>_<variant>.{png,pdf}.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    table_parser = commands.add_parser("tables", help="ours vs paper, one figure per table")
    add_selection_arguments(table_parser)
    add_context_arguments(table_parser)
    curve_parser = commands.add_parser("curves", help="training curves from train_log.csv files")
    curve_parser.add_argument(
        "--logs",
        nargs="+",
        required=True,
        help=(
            "train_log.csv files inside runs/<protocol>/<dataset>/<variant>/seed<k>/ (one protocol), or "
            "directories searched for them"
        ),
    )
    for sub in (table_parser, curve_parser):
        sub.add_argument("--out-dir", required=True, type=Path, help="directory for the figure files")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the requested figures."""
    args = parse_args(argv)
    if args.command == "tables":
        records = load_metric_files(args.metrics)
        context = context_from_arguments(args, list(by_protocol(records)))
        results = protocol_tables(records, context, args.datasets, args.seeds)
        write_table_figures(results[context.comparison_protocol], args.out_dir)
    else:
        logs = [load_train_log(path) for path in expand_paths(args.logs, TRAIN_LOG_PATTERN)]
        if not logs:
            raise UserError(f"no {TRAIN_LOG_PATTERN} files found in {', '.join(args.logs)}")
        write_curve_figures(logs, args.out_dir)


if __name__ == "__main__":
    main_guard(main)
