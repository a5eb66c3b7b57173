"""Writers of one aggregated table: LaTeX (booktabs), Markdown and the tidy CSV frame.

Every writer renders the same rows (:func:`table_rows`): ``mean ± std`` per cell, the
best mean in bold, footnote markers for gaps, and a caption with the aggregation and the
protocol read from the metric files.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from mmjsd import registry
from mmjsd.registry import variant_label
from mmjsd.tables.aggregate import Cell, TableResult, best_variants, comparability, footnote_markers, protocol_items, seed_list
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


def table_rows(result: TableResult, markup: Markup, decorate: CellRenderer | None = None) -> list[list[str]]:
    """Header and body rows shared by the LaTeX and Markdown writers.

    Each cell is ``mean ± std`` (bold when best) followed by its footnote markers;
    ``decorate(variant, column, text)`` may append to the text (the paper comparison).
    """
    spec = result.spec
    markers = footnote_markers(result)
    best = {column.label: best_variants(result, column) for column in spec.columns}
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
    sentences = [
        markup.text("Mean")
        + markup.plus_minus
        + markup.text(
            f"sample standard deviation (ddof=1) over seeds {seeds}; the std is shown only when n > 1; "
            "n = seeds with results per row. Best mean per column (at the shown precision) in bold."
        ),
    ]
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
        rf"\caption{{{latex_escape(table_title(result.spec))}{paper_reference(result.spec)}. {caption(result, LATEX)}}}",
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
    "dataset",
    "variant",
    "model",
    "column",
    "metric",
    "key",
    "statistic",
    "value",
    "seeds",
    "notes",
]


def tidy_frame(result: TableResult) -> pd.DataFrame:
    """One row per model x column x statistic (mean, std, n_seeds); empty values are missing."""
    rows = []
    for variant in result.variants:
        for column in result.spec.columns:
            cell = result.cell(variant, column)
            for statistic, value in (("mean", cell.mean), ("std", cell.std), ("n_seeds", cell.n)):
                rows.append(
                    {
                        "table": result.spec.name,
                        "dataset": result.spec.dataset,
                        "variant": variant,
                        "model": variant_label(variant),
                        "column": column.label,
                        "metric": column.metric,
                        "key": column.key,
                        "statistic": statistic,
                        "value": value,
                        "seeds": " ".join(str(seed) for seed in cell.seeds),
                        "notes": "; ".join(cell.notes),
                    }
                )
    return pd.DataFrame(rows, columns=TIDY_COLUMNS, dtype=object)


