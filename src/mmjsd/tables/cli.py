"""Command line of the tables step: every table of the selected datasets, in every format.

    python -m mmjsd.tables --out-dir results/tables --metrics results/runs

The selection arguments (metric files, datasets, seeds) are shared with the figure and
summary steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from mmjsd import registry
from mmjsd.io import write_text
from mmjsd.metrics_io import load_metric_files
from mmjsd.paper import load_paper_table
from mmjsd.tables.aggregate import TableResult, build_tables
from mmjsd.tables.compare import comparison_frame, comparison_markdown
from mmjsd.tables.render import tidy_frame, to_latex, to_markdown
from mmjsd.tables.specs import TABLES_BY_NAME


def frame_csv(frame: pd.DataFrame) -> str:
    """CSV text of a frame (no index; missing values empty)."""
    return frame.to_csv(index=False, lineterminator="\n")


def table_writers(result: TableResult) -> dict[str, Callable[[], str]]:
    """The text of each file of a table, by the suffix after its name (``.csv``, ``_vs_paper.md``, ...)."""
    writers = {
        ".csv": lambda: frame_csv(tidy_frame(result)),
        ".tex": lambda: to_latex(result),
        ".md": lambda: to_markdown(result),
    }
    if result.spec.compared:
        paper = load_paper_table(result.spec.paper_csv)
        writers["_vs_paper.csv"] = lambda: frame_csv(comparison_frame(result, paper))
        writers["_vs_paper.md"] = lambda: comparison_markdown(result, paper)
    return writers


def write_table_outputs(result: TableResult, out_dir: Path) -> list[Path]:
    """Write the files :attr:`~mmjsd.tables.specs.TableSpec.file_names` of one table, atomically."""
    writers = table_writers(result)
    paths = [Path(out_dir) / name for name in result.spec.file_names]
    for path in paths:
        write_text(path, writers[path.name.removeprefix(result.spec.name)]())
    return paths


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The metric-file, dataset and seed arguments shared with the plots and summary CLIs."""
    parser.add_argument(
        "--metrics",
        nargs="+",
        required=True,
        help="metric JSON files, or directories searched recursively for metrics/*.json",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=registry.DATASETS.names(),
        help="datasets whose tables to produce, even if they have no metric files (default: those found)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help="seeds every variant is expected to have; missing ones are footnoted and others ignored "
        "(default: every seed found in the dataset)",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments of ``python -m mmjsd.tables``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.tables",
        description=(
            "Aggregate per-run metric files (results/runs/<dataset>/<variant>/seed<k>/metrics/*.json) "
            "into the mmJSD paper's Tables 1-5 and one table per metric that no paper table covers (<dataset>_<metric>, "
            "its value keys as columns): mean ± sample std (ddof=1) over seeds per variant. "
            "Every variant found becomes a row; missing metric files or values become empty, footnoted cells. "
            "For each table NAME of the selected datasets it writes NAME.csv (tidy: one row per model x "
            "column x statistic), NAME.tex (booktabs), NAME.md and, for the paper's tables, NAME_vs_paper.csv and "
            f"NAME_vs_paper.md. Paper tables: {', '.join(TABLES_BY_NAME)}."
        ),
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="directory for the table files")
    add_selection_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Write every table of the selected datasets."""
    args = parse_args(argv)
    records = load_metric_files(args.metrics)
    for result in build_tables(records, args.datasets, args.seeds):
        write_table_outputs(result, args.out_dir)
