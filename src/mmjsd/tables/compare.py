"""Our tables beside the paper's: per cell the paper's value and ours − paper (CSV and Markdown).

Only tables with a bundled paper CSV (:attr:`~mmjsd.tables.specs.TableSpec.compared`) get
a comparison. It is made from the runs of one protocol: reference-exact when that protocol
ran (the official computation, like for like: no protocol caveat), else corrected (with the
table's caveat on how the protocols differ); it says which. A table whose features differ
from the paper's (PRD) shows ours under a statement of why the paper's values are withheld;
on synthetic data, or for a dataset that is a pipeline check, the paper's values appear
nowhere and ours are shown with their chance levels.
"""

from __future__ import annotations

import pandas as pd

from mmjsd.core.departures import REFERENCE_EXACT_PROTOCOL
from mmjsd.core.registry import variant_label
from mmjsd.reporting.paper import PaperTable
from mmjsd.tables.aggregate import TableResult, comparability, paper_withheld
from mmjsd.tables.markup import format_number, markdown_escape
from mmjsd.tables.render import markdown_table_block, table_title
from mmjsd.tables.specs import NOT_COMPARABLE, Column

COMPARISON_COLUMNS = [
    "table",
    "protocol",
    "variant",
    "model",
    "column",
    "metric",
    "key",
    "paper",
    "ours_mean",
    "ours_std",
    "n_seeds",
    "difference",
    "chance",
    "comparable",
    "note",
]


def protocol_caveat(result: TableResult) -> str:
    """The table's caveat on how our protocol differs from the paper's: none for reference-exact runs."""
    return "" if result.protocol == REFERENCE_EXACT_PROTOCOL else result.spec.comparison_caveat


def runs_statement(result: TableResult) -> str:
    """Which runs the comparison is made from, in words."""
    if result.protocol == REFERENCE_EXACT_PROTOCOL:
        return (
            "Ours: the reference-exact runs (every departure switch at reference, the official computation), "
            "like for like."
        )
    return (
        "Ours: the corrected runs (no reference-exact runs were configured; docs/departures.md says how to add them)."
    )


def comparison_frame(result: TableResult, paper: PaperTable) -> pd.DataFrame:
    """Paper value, ours and ours − paper for every cell the paper reports for one of our rows.

    When the table is not comparable because of its PRD features our numbers are left out
    and ``note`` says why; on synthetic data or in a pipeline check the paper's values are
    left out instead (one row per cell of ours, ``paper`` and ``difference`` empty). ``chance``
    is the column's chance level.
    """
    reason, withheld = comparability(result), paper_withheld(result)
    rows = []
    for variant in result.variants:
        for column in result.spec.columns:
            paper_value = float("nan") if withheld else paper.get((variant_label(variant), column.label))
            if paper_value is None:
                continue
            cell = result.cell(variant, column)
            hidden = reason and not withheld
            ours_mean, ours_std = (float("nan"), float("nan")) if hidden else (cell.mean, cell.std)
            rows.append(
                {
                    "table": result.spec.name,
                    "protocol": result.protocol,
                    "variant": variant,
                    "model": variant_label(variant),
                    "column": column.label,
                    "metric": column.metric,
                    "key": column.key,
                    "paper": paper_value,
                    "ours_mean": ours_mean,
                    "ours_std": ours_std,
                    "n_seeds": cell.n,
                    "difference": ours_mean - paper_value,
                    "chance": result.chance.get(column.label),
                    "comparable": not reason,
                    "note": f"{NOT_COMPARABLE}: {reason}" if reason else protocol_caveat(result),
                }
            )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def paper_models_without_runs(result: TableResult, paper: PaperTable) -> list[str]:
    """Paper rows that have no variant in our table."""
    ours = {variant_label(variant) for variant in result.variants}
    return sorted({model for model, _ in paper} - ours)


def comparison_markdown(result: TableResult, paper: PaperTable) -> str:
    """Our table with, in each cell the paper reports, ``(paper; ours − paper)``.

    A non-comparable table (other PRD features) shows our numbers only, under a statement
    of why the paper's are withheld.
    """
    spec = result.spec
    reason = comparability(result)
    if paper_withheld(result):
        intro = (
            f"**Not compared with the paper: {markdown_escape(reason)}.** No value of the paper is shown, and no best "
            "value is marked; the Chance row gives what predictions that ignore the input score."
        )
        return (
            f"**{spec.heading}: {markdown_escape(table_title(spec))}**\n\n{intro}\n\n{markdown_table_block(result)}\n"
        )
    title = f"**{spec.heading} vs the paper: {markdown_escape(table_title(spec))}**"
    if reason:
        intro = (
            f"**{NOT_COMPARABLE}.** {markdown_escape(reason[0].upper() + reason[1:])}. "
            "The paper's values are therefore not shown beside ours."
        )
        return f"{title}\n\n{intro}\n\n{markdown_table_block(result)}\n"

    def with_paper(variant: str, column: Column, text: str) -> str:
        paper_value = paper.get((variant_label(variant), column.label))
        cell = result.cell(variant, column)
        if paper_value is None:
            return text
        paper_text = format_number(paper_value, spec.precision)
        if not cell.n:
            return f"(paper {paper_text})"
        difference = format_number(cell.mean - paper_value, spec.precision, signed=True)
        return f"{text} ({paper_text}; {difference})"

    parts = [
        title,
        markdown_escape(runs_statement(result))
        + " Each cell: ours as mean ± std over seeds, then (paper value; ours − paper) where the paper reports one.",
    ]
    if protocol_caveat(result):
        parts.append(f"Caveat: {markdown_escape(protocol_caveat(result))}")
    missing = paper_models_without_runs(result, paper)
    if missing:
        parts.append("Paper rows without a run here: " + ", ".join(missing) + ".")
    parts.append(markdown_table_block(result, with_paper))
    return "\n\n".join(parts) + "\n"
