"""Writers of one aggregated table: LaTeX (booktabs), Markdown and the tidy CSV frame.

Every writer renders the same rows (:func:`table_rows`): ``mean ± std`` per cell, the
best mean in bold (on real data only, :func:`~mmjsd.tables.aggregate.marks_best`), footnote
markers for gaps, a row of chance levels, and a caption with the aggregation, the protocol
of the runs and the measurement protocol read from the metric files.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mmjsd.core import registry
from mmjsd.core.departures import PROTOCOL_DESCRIPTIONS
from mmjsd.core.registry import variant_label
from mmjsd.tables.aggregate import (
    Cell,
    TableResult,
    best_variants,
    comparability,
    footnote_markers,
    marks_best,
    protocol_items,
    seed_list,
)
from mmjsd.tables.markup import LATEX, MARKDOWN, Markup, format_number, latex_escape, markdown_escape, markdown_grid
from mmjsd.tables.specs import NOT_COMPARABLE, Column, TableSpec


def mean_std_text(cell: Cell, precision: int, markup: Markup) -> str:
    """``mean ± std`` (std only when n > 1); empty without values."""
    if not cell.n:
        return ""
    text = format_number(cell.mean, precision, markup.minus)
    if cell.n > 1:
        text += markup.plus_minus + format_number(cell.std, precision, markup.minus)
    return text


CellRenderer = Callable[[str, Column, str], str]


#: Label of the row of chance levels.
CHANCE_ROW = "Chance"


def has_chance_row(result: TableResult) -> bool:
    """Whether the table shows a row of chance levels (some column has one, and there are rows to compare)."""
    return bool(result.variants) and any(level is not None for level in result.chance.values())


def chance_row(result: TableResult, markup: Markup) -> list[str]:
    """``Chance`` and each column's chance level (empty where the metric has none)."""
    return [markup.text(CHANCE_ROW), ""] + [
        ""
        if result.chance.get(column.label) is None
        else format_number(result.chance[column.label], result.spec.precision, markup.minus)
        for column in result.spec.columns
    ]


def table_rows(result: TableResult, markup: Markup, decorate: CellRenderer | None = None) -> list[list[str]]:
    """Header and body rows shared by the LaTeX and Markdown writers.

    Each cell is ``mean ± std`` (bold when best and best values are marked) followed by its
    footnote markers; ``decorate(variant, column, text)`` may rewrite the text (the paper
    comparison, the departures tables). A last row gives the chance levels, if any.
    """
    spec = result.spec
    markers = footnote_markers(result)
    best = {column.label: best_variants(result, column) if marks_best(result) else set() for column in spec.columns}
    header = ["Model", "n"] + [markup.label(column.label) for column in spec.columns]
    rows = [header]
    for variant in result.variants:
        row = [markup.text(variant_label(variant)), str(len(result.row_seeds[variant]))]
        for column in spec.columns:
            cell = result.cell(variant, column)
            text = mean_std_text(cell, spec.precision, markup)
            if text and variant in best[column.label]:
                text = markup.bold(text)
            if decorate is not None:
                text = decorate(variant, column, text)
            if cell.notes:
                text += markup.marker(",".join(markers[note] for note in cell.notes))
            row.append(text)
        rows.append(row)
    if has_chance_row(result):
        rows.append(chance_row(result, markup))
    return rows


def direction_text(spec: TableSpec) -> str:
    """``higher is better`` or ``lower is better``."""
    return "higher is better" if spec.higher_is_better else "lower is better"


def table_title(spec: TableSpec) -> str:
    """``<title>, <dataset> (higher is better)``: what the table shows."""
    return f"{spec.title}, {registry.dataset(spec.dataset).title} ({direction_text(spec)})"


def paper_reference(spec: TableSpec) -> str:
    """``; the paper's Table 3`` for a paper table, ``; not in the paper`` for one of ours (LaTeX caption)."""
    return f"; the paper's Table {spec.number}" if spec.number is not None else "; not in the paper"


def caption(result: TableResult, markup: Markup) -> str:
    """How the table was aggregated and the protocol read from the metric files (title excluded)."""
    spec = result.spec
    seeds = seed_list(result.seeds) or "none found"
    if marks_best(result):
        best = " Best mean per column (at the shown precision) in bold."
    else:
        best = "" if result.differences else " No best value is marked."
    sentences = [
        markup.text("Mean")
        + markup.plus_minus
        + markup.text(
            f"sample standard deviation (ddof=1) over seeds {seeds}; the std is shown only when n > 1; "
            f"n = seeds with results per row.{best}"
        ),
    ]
    if result.protocol is not None:
        sentences.append(
            markup.text(f"Runs: {result.protocol}, {PROTOCOL_DESCRIPTIONS[result.protocol]} (docs/departures.md).")
        )
    if has_chance_row(result):
        sentences.append(markup.text(f"{CHANCE_ROW}: what predictions that ignore the input score."))
    for metric in spec.metrics:
        records = [r for r in result.records if r.metric == metric]
        items = protocol_items(records)
        if items:
            sentences.append(
                markup.text(f"Protocol of {metric}: ") + ", ".join(markup.code(item) for item in items) + "."
            )
        extractors = sorted({r.extractor_name for r in records if r.extractor_name})
        if extractors:
            sentences.append(
                markup.text("Feature extractor: ") + ", ".join(markup.code(name) for name in extractors) + "."
            )
        if registry.metric(metric).caption:
            sentences.append(markup.text(registry.metric(metric).caption))
    reason = comparability(result)
    if reason:
        sentences.append(markup.text(f"{NOT_COMPARABLE}: {reason}."))
    return " ".join(sentences)


def footnote_lines(result: TableResult, markup: Markup) -> list[str]:
    """One line per footnote: marker and text."""
    return [markup.marker(marker) + " " + markup.text(note) for note, marker in footnote_markers(result).items()]


# --------------------------------------------------------------------------- writers
def to_latex(result: TableResult) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    rows = table_rows(result, LATEX)
    width = len(rows[0])
    body = [" & ".join(row) + r" \\" for row in rows[1:]] or [rf"\multicolumn{{{width}}}{{c}}{{no runs found}} \\"]
    lines = [
        r"% requires \usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table_title(result.spec))}{paper_reference(result.spec)}. "
        rf"{caption(result, LATEX)}}}",
        rf"\label{{tab:{result.spec.name.replace('_', '-')}}}",
        rf"\begin{{tabular}}{{lr{'c' * len(result.spec.columns)}}}",
        r"\toprule",
        " & ".join(rows[0]) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]
    notes = footnote_lines(result, LATEX)
    if notes:
        lines += [r"\par\smallskip", r"\footnotesize"] + [note + r"\par" for note in notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def markdown_table_block(result: TableResult, decorate: CellRenderer | None = None) -> str:
    """The Markdown grid with its footnotes (or a line saying there are no runs)."""
    rows = table_rows(result, MARKDOWN, decorate)
    grid = markdown_grid(rows) if len(rows) > 1 else "_No runs found for this dataset._"
    notes = footnote_lines(result, MARKDOWN)
    return grid + ("\n\n" + "\n".join(f"- {note}" for note in notes) if notes else "")


def to_markdown(result: TableResult) -> str:
    """The table as Markdown: caption paragraph, grid, footnotes."""
    heading = f"**{result.spec.heading}: {markdown_escape(table_title(result.spec))}**"
    return f"{heading}\n\n{caption(result, MARKDOWN)}\n\n{markdown_table_block(result)}\n"


TIDY_COLUMNS = [
    "table",
    "protocol",
    "dataset",
    "variant",
    "model",
    "column",
    "metric",
    "key",
    "statistic",
    "value",
    "chance",
    "seeds",
    "notes",
]


def tidy_frame(result: TableResult) -> pd.DataFrame:
    """One row per model x column x statistic (mean, std, n_seeds), with the
    column's chance level; empty values are missing."""
    rows = []
    for variant in result.variants:
        for column in result.spec.columns:
            cell = result.cell(variant, column)
            for statistic, value in (("mean", cell.mean), ("std", cell.std), ("n_seeds", cell.n)):
                rows.append(
                    {
                        "table": result.spec.name,
                        "protocol": result.protocol,
                        "dataset": result.spec.dataset,
                        "variant": variant,
                        "model": variant_label(variant),
                        "column": column.label,
                        "metric": column.metric,
                        "key": column.key,
                        "statistic": statistic,
                        "value": value,
                        "chance": result.chance.get(column.label),
                        "seeds": " ".join(str(seed) for seed in cell.seeds),
                        "notes": "; ".join(cell.notes),
                    }
                )
    return pd.DataFrame(rows, columns=TIDY_COLUMNS, dtype=object)
