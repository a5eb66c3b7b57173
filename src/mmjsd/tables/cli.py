"""Command line of the tables step: every table of the selected datasets and protocols, in every format.

    python -m mmjsd.tables --out-dir results/tables --metrics results/runs \
        --data-source-file results/manifests/mnist.json

Writes :func:`~mmjsd.tables.specs.table_files`: each table per protocol, the paper
comparisons from one protocol's runs (:mod:`~mmjsd.tables.compare`) and the departures
tables (:mod:`~mmjsd.tables.departures`). The selection arguments (metric files, datasets,
seeds) and the context arguments (data source, pipeline checks, protocols) are shared with
the figure and summary steps.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from mmjsd.core import registry
from mmjsd.core.departures import CORRECTED_PROTOCOL, REFERENCE_EXACT_PROTOCOL
from mmjsd.core.io import write_text
from mmjsd.reporting.metrics_io import load_metric_files
from mmjsd.reporting.paper import load_paper_table
from mmjsd.tables.aggregate import TableResult, by_protocol, protocol_tables
from mmjsd.tables.compare import comparison_frame, comparison_markdown
from mmjsd.tables.context import ReportContext, add_context_arguments, context_from_arguments
from mmjsd.tables.departures import (
    differences_frame,
    evaluation_differences,
    evaluation_differences_frame,
    evaluation_differences_markdown,
    protocol_differences,
    protocol_differences_markdown,
)
from mmjsd.tables.render import tidy_frame, to_latex, to_markdown
from mmjsd.tables.specs import DEPARTURES_DIR, EVALUATION_DEPARTURES, TABLES_BY_NAME


def frame_csv(frame: pd.DataFrame) -> str:
    """CSV text of a frame (no index; missing values empty)."""
    return frame.to_csv(index=False, lineterminator="\n")


def table_writers(result: TableResult) -> dict[str, Callable[[], str]]:
    """The text of each file of one protocol's table, by its suffix after
    the table name (``.csv``, ``.tex``, ``.md``)."""
    return {
        ".csv": lambda: frame_csv(tidy_frame(result)),
        ".tex": lambda: to_latex(result),
        ".md": lambda: to_markdown(result),
    }


def comparison_writers(result: TableResult) -> dict[str, Callable[[], str]]:
    """The text of each file of a paper comparison, by suffix (``_vs_paper.csv``, ``_vs_paper.md``)."""
    paper = load_paper_table(result.spec.paper_csv)
    return {
        "_vs_paper.csv": lambda: frame_csv(comparison_frame(result, paper)),
        "_vs_paper.md": lambda: comparison_markdown(result, paper),
    }


def departure_writers(result: TableResult) -> dict[str, Callable[[], str]]:
    """The text of each file of a corrected − reference-exact table, by suffix (``.csv``, ``.md``)."""
    return {".csv": lambda: frame_csv(differences_frame(result)), ".md": lambda: protocol_differences_markdown(result)}


def write_files(
    name: str, file_names: Sequence[str], writers: dict[str, Callable[[], str]], out_dir: Path
) -> list[Path]:
    """Write each of ``file_names`` (``name`` + a suffix of ``writers``) into ``out_dir``, atomically."""
    paths = [Path(out_dir) / file_name for file_name in file_names]
    for path in paths:
        write_text(path, writers[path.name.removeprefix(name)]())
    return paths


def write_table_outputs(result: TableResult, out_dir: Path) -> list[Path]:
    """Write the files :attr:`~mmjsd.tables.specs.TableSpec.file_names` of one protocol's table into ``out_dir``."""
    return write_files(result.spec.name, result.spec.file_names, table_writers(result), out_dir)


def write_all_tables(results: dict[str, list[TableResult]], context: ReportContext, out_dir: Path) -> list[Path]:
    """Every file of :func:`~mmjsd.tables.specs.table_files` under ``out_dir``, from each protocol's tables."""
    out_dir = Path(out_dir)
    paths = [
        path
        for protocol, tables in results.items()
        for result in tables
        for path in write_table_outputs(result, out_dir / protocol)
    ]
    for result in results[context.comparison_protocol]:
        if result.spec.compared:
            paths += write_files(
                result.spec.name, result.spec.comparison_file_names, comparison_writers(result), out_dir
            )
    if context.both_protocols:
        for corrected, reference in zip(results[CORRECTED_PROTOCOL], results[REFERENCE_EXACT_PROTOCOL], strict=True):
            differences = protocol_differences(corrected, reference)
            paths += write_files(
                corrected.spec.name,
                corrected.spec.departure_file_names,
                departure_writers(differences),
                out_dir / DEPARTURES_DIR,
            )
    if CORRECTED_PROTOCOL in results:
        effects = evaluation_differences(results[CORRECTED_PROTOCOL])
        stem = out_dir / DEPARTURES_DIR / EVALUATION_DEPARTURES
        write_text(stem.with_suffix(".csv"), frame_csv(evaluation_differences_frame(effects)))
        write_text(stem.with_suffix(".md"), evaluation_differences_markdown(effects))
        paths += [stem.with_suffix(".csv"), stem.with_suffix(".md")]
    return paths


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The metric-file, dataset and seed arguments shared with the plots and summary CLIs."""
    parser.add_argument(
        "--metrics",
        nargs="+",
        required=True,
        help="metric JSON files, or directories searched recursively for metrics/*.json (every protocol's tree)",
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
            "Aggregate per-run metric files (results/runs/<protocol>/<dataset>/<variant>/seed<k>/metrics/*.json) "
            "into the mmJSD paper's Tables 1-5 and one table per metric that no paper "
            "table covers (<dataset>_<metric>, "
            "its value keys as columns): mean ± sample std (ddof=1) over seeds per "
            "variant, and a row of chance levels. "
            "Every variant found becomes a row; missing metric files or values become empty, footnoted cells. "
            "For each protocol P and table NAME it writes P/NAME.csv (tidy: one row per model x column x statistic), "
            "P/NAME.tex (booktabs) and P/NAME.md; for the paper's tables NAME_vs_paper.csv and NAME_vs_paper.md from "
            "the reference-exact runs when that protocol ran, else from the corrected runs (nothing of the paper is "
            "shown for synthetic data or a pipeline check); with both protocols departures/NAME.{csv,md} "
            "(corrected - reference-exact per cell, with the seed spread and a paired t-test against seed noise); and "
            "with the corrected protocol departures/evaluation.{csv,md} (each evaluation switch flipped alone). "
            f"Paper tables: {', '.join(TABLES_BY_NAME)}."
        ),
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="directory for the table files")
    add_selection_arguments(parser)
    add_context_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Write every table of the selected datasets and protocols."""
    args = parse_args(argv)
    records = load_metric_files(args.metrics)
    context = context_from_arguments(args, list(by_protocol(records)))
    write_all_tables(protocol_tables(records, context, args.datasets, args.seeds), context, args.out_dir)
