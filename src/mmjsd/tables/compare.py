"""Our tables beside the paper's: per cell the paper's value and ours − paper (CSV and Markdown).

Only tables with a bundled paper CSV (:attr:`~mmjsd.tables.specs.TableSpec.compared`) get
a comparison; a table whose features differ from the paper's (PRD) shows ours under a
statement of why the paper's values are withheld.
"""

from __future__ import annotations

import pandas as pd

from mmjsd.paper import PaperTable
from mmjsd.registry import variant_label
from mmjsd.tables.aggregate import TableResult, comparability
from mmjsd.tables.markup import format_number, markdown_escape
from mmjsd.tables.render import markdown_table_block, table_title
from mmjsd.tables.specs import NOT_COMPARABLE, Column

COMPARISON_COLUMNS = [
    "table",
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
    "comparable",
    "note",
]


def comparison_frame(result: TableResult, paper: PaperTable) -> pd.DataFrame:
    """Paper value, ours and ours − paper for every cell the paper reports for one of our rows.

    When the table is not comparable (other PRD features) our numbers are left out and
    ``note`` says why.
    """
    reason = comparability(result)
    rows = []
    for variant in result.variants:
        for column in result.spec.columns:
            paper_value = paper.get((variant_label(variant), column.label))
            if paper_value is None:
                continue
            cell = result.cell(variant, column)
            ours_mean, ours_std = (float("nan"), float("nan")) if reason else (cell.mean, cell.std)
            rows.append(
                {
                    "table": result.spec.name,
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
                    "comparable": not reason,
                    "note": f"{NOT_COMPARABLE}: {reason}" if reason else result.spec.comparison_caveat,
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
        "Each cell: ours as mean ± std over seeds, then (paper value; ours − paper) where the paper reports one.",
    ]
    if spec.comparison_caveat:
        parts.append(f"Caveat: {markdown_escape(spec.comparison_caveat)}")
    missing = paper_models_without_runs(result, paper)
    if missing:
        parts.append("Paper rows without a run here: " + ", ".join(missing) + ".")
    parts.append(markdown_table_block(result, with_paper))
    return "\n\n".join(parts) + "\n"


