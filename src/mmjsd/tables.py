"""Tables 1-5 of the mmJSD paper from per-run metric files, beside the paper's numbers.

Each paper table is one declarative :class:`TableSpec` (dataset, columns as
``(paper label, metric, key)``, direction, precision). :func:`build_table` aggregates the
metric files of every variant found into mean, sample std (ddof=1) and number of seeds per
cell; missing files and keys become empty cells with footnotes. Writers render the same
rows as tidy CSV, LaTeX (booktabs) and Markdown, and a companion comparison with the
paper (CSV and Markdown).

Command line (one call writes every table of the selected datasets)::

    python -m mmjsd.tables --out-dir results/tables --metrics results/runs
"""

from __future__ import annotations

import argparse
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from mmjsd.cli import main_guard
from mmjsd.config import MODALITIES, OBJECTIVES, parse_variant
from mmjsd.errors import UserError
from mmjsd.io import write_text
from mmjsd.metrics_io import INCEPTION_EXTRACTOR, MetricRecord, load_metric_files
from mmjsd.paper import PaperTable, load_paper_table

#: Opening of every statement that a table must not be set beside the paper's.
NOT_COMPARABLE = "Not comparable with the paper"

DATASET_TITLES = {"mnist_svhn_text": "MNIST-SVHN-Text", "celeba": "CelebA"}

OBJECTIVE_LABELS = {"mvae": "MVAE", "mmvae": "MMVAE", "mmjsd": "mmJSD", "mopoe": "MoPoE"}

LIKELIHOOD_CAVEAT = (
    "The paper's Table 4 was computed with the reference code's importance-sampling grouping "
    "(the log-mean-exp over K samples mixes different test points), which is biased upwards; "
    "ours is the per-point estimator (log-sum-exp over K samples of each test point). "
    "Differences mix model and estimator effects; compare rankings rather than magnitudes."
)
PROBE_CAVEAT = (
    "The mmJSD code fitted its probes on the last training batch (256 pairs, encoded in train mode) and "
    "cannot produce the subset columns; ours are fitted per subset on posterior means of random training "
    "pairs (the MoPoE protocol, sizes in the caption)."
)
COHERENCE_CAVEAT = (
    "Our classifiers run in eval mode (the reference code left dropout and batch statistics on), and random "
    "coherence counts a sample only when all modalities agree; it is not known which formula gave the "
    "paper's random column (the mmJSD code's scores 0.82 on uniformly random predictions)."
)
CELEBA_CAVEAT = (
    "The mmJSD code fitted its probes on the last training batch (256 pairs) and averaged AP over test "
    "batches with classifiers in train mode; ours fits on random training pairs (sizes in the caption), pools "
    "AP over the whole test split per attribute and runs the classifiers in eval mode."
)


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Column:
    """One table column: the paper's header label and where its number comes from."""

    label: str
    metric: str
    key: str


def columns(metric: str, keys_by_label: dict[str, str]) -> tuple[Column, ...]:
    """Columns of one metric, from ``{paper label: key in the metric file's values}``."""
    return tuple(Column(label, metric, key) for label, key in keys_by_label.items())


@dataclass(frozen=True)
class TableSpec:
    """How one paper table is laid out and filled.

    ``name`` is the output file stem, ``number`` the paper's table number, ``paper_csv``
    the bundled file with the paper's values, ``precision`` the decimals shown,
    ``value_label`` the y-axis label of its figure. ``paper_extractor``, when set, is the
    feature extractor the paper used: the comparison is made only when every metric file
    used it. ``comparison_caveat`` is printed with the comparison.
    """

    name: str
    number: int
    title: str
    dataset: str
    columns: tuple[Column, ...]
    paper_csv: str
    precision: int
    value_label: str
    higher_is_better: bool = True
    paper_extractor: str | None = None
    comparison_caveat: str = ""

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric files this table reads, in column order."""
        return tuple(dict.fromkeys(column.metric for column in self.columns))


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        name="table1_latent_probe",
        number=1,
        title="Linear classification accuracy of the latent representations",
        dataset="mnist_svhn_text",
        columns=columns(
            "latent_probe",
            {
                "M": "mnist",
                "S": "svhn",
                "T": "text",
                "M,S": "mnist+svhn",
                "M,T": "mnist+text",
                "S,T": "svhn+text",
                "M-S-T": "mnist+svhn+text",
            },
        ),
        paper_csv="mmjsd_table1_latent_classification.csv",
        precision=2,
        value_label="accuracy",
        comparison_caveat=PROBE_CAVEAT,
    ),
    TableSpec(
        name="table2_coherence",
        number=2,
        title="Coherence of conditional and random generation",
        dataset="mnist_svhn_text",
        columns=columns(
            "coherence",
            {
                "random": "random",
                "S->M": "svhn->mnist",
                "T->M": "text->mnist",
                "S,T->M": "svhn+text->mnist",
                "M->S": "mnist->svhn",
                "T->S": "text->svhn",
                "M,T->S": "mnist+text->svhn",
                "M->T": "mnist->text",
                "S->T": "svhn->text",
                "M,S->T": "mnist+svhn->text",
            },
        ),
        paper_csv="mmjsd_table2_coherence.csv",
        precision=2,
        value_label="coherence",
        comparison_caveat=COHERENCE_CAVEAT,
    ),
    TableSpec(
        name="table3_prd",
        number=3,
        title="Quality of generated images (PRD average precision)",
        dataset="mnist_svhn_text",
        columns=columns(
            "prd",
            {
                "S->M": "svhn->mnist",
                "T->M": "text->mnist",
                "S,T->M": "svhn+text->mnist",
                "random M": "random->mnist",
                "M->S": "mnist->svhn",
                "T->S": "text->svhn",
                "M,T->S": "mnist+text->svhn",
                "random S": "random->svhn",
            },
        ),
        paper_csv="mmjsd_table3_prd_precision.csv",
        precision=3,
        value_label="PRD average precision",
        paper_extractor=INCEPTION_EXTRACTOR,
    ),
    TableSpec(
        name="table4_likelihood",
        number=4,
        title="Test log-likelihood of all modalities (X) with the posterior of each subset as proposal",
        dataset="mnist_svhn_text",
        columns=columns(
            "likelihood",
            {
                "X": "joint|mnist+svhn+text",
                "X|M": "joint|mnist",
                "X|S": "joint|svhn",
                "X|T": "joint|text",
                "X|M,S": "joint|mnist+svhn",
                "X|M,T": "joint|mnist+text",
                "X|S,T": "joint|svhn+text",
            },
        ),
        paper_csv="mmjsd_table4_log_likelihood.csv",
        precision=0,
        value_label="log-likelihood (nats)",
        comparison_caveat=LIKELIHOOD_CAVEAT,
    ),
    TableSpec(
        name="table5_celeba",
        number=5,
        title="Latent representation and generation, mean average precision over the 40 attributes",
        dataset="celeba",
        columns=columns("latent_probe", {"latent I": "img", "latent T": "text", "latent joint": "img+text"})
        + columns("coherence", {"I->T": "img->text", "T->I": "text->img"}),
        paper_csv="mmjsd_table5_celeba.csv",
        precision=2,
        value_label="mean average precision",
        comparison_caveat=CELEBA_CAVEAT,
    ),
)

TABLES_BY_NAME = {spec.name: spec for spec in TABLES}


# --------------------------------------------------------------------------- variants
def variant_label(variant: str) -> str:
    """The paper's row label of a variant: ``mmjsd-ms`` → ``mmJSD (MS)``, ``mopoe`` → ``MoPoE``."""
    objective, modality_specific = parse_variant(variant)
    label = OBJECTIVE_LABELS.get(objective, objective)
    return f"{label} (MS)" if modality_specific else label


def variant_sort_key(variant: str) -> tuple[bool, int]:
    """Row order: mvae, mmvae, mmjsd, mopoe, then the same objectives with ``-ms``."""
    objective, modality_specific = parse_variant(variant)
    return modality_specific, OBJECTIVES.index(objective)


# ------------------------------------------------------------------------ aggregation
@dataclass(frozen=True)
class Cell:
    """The per-seed values of one (variant, column) and the footnotes explaining gaps."""

    seeds: tuple[int, ...]
    values: tuple[float, ...]
    notes: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of seeds that contributed a value."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean over seeds (NaN without values)."""
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds, ddof=1 (NaN with fewer than two values)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else float("nan")


@dataclass(frozen=True)
class TableResult:
    """One aggregated table: rows (variants), cells and the metric files they came from."""

    spec: TableSpec
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    row_seeds: dict[str, tuple[int, ...]]
    cells: dict[tuple[str, str], Cell]
    records: tuple[MetricRecord, ...]

    def cell(self, variant: str, column: Column) -> Cell:
        """The cell of ``variant`` under ``column``."""
        return self.cells[(variant, column.label)]


def _seed_list(seeds: Iterable[int]) -> str:
    """``0, 1, 2`` for a caption or note."""
    return ", ".join(str(seed) for seed in seeds)


def build_cell(
    files: dict[tuple[str, int, str], MetricRecord], variant: str, column: Column, seeds: Sequence[int]
) -> Cell:
    """Collect ``column``'s value from each seed's file of ``variant``; note missing files and keys."""
    label = variant_label(variant)
    missing_files = [seed for seed in seeds if (variant, seed, column.metric) not in files]
    present = [files[(variant, seed, column.metric)] for seed in seeds if seed not in missing_files]
    missing_keys = [record.seed for record in present if record.values.get(column.key) is None]
    found = [record for record in present if record.values.get(column.key) is not None]
    notes = []
    if missing_files:
        notes.append(f"{label}: no {column.metric} metric file for seed {_seed_list(missing_files)}")
    if missing_keys:
        notes.append(
            f"{label}: '{column.key}' is absent or null in the {column.metric} file of seed {_seed_list(missing_keys)}"
        )
    return Cell(
        seeds=tuple(record.seed for record in found),
        values=tuple(record.values[column.key] for record in found),
        notes=tuple(notes),
    )


def check_single_extractor(records: Sequence[MetricRecord]) -> None:
    """Refuse to aggregate one metric measured with different feature extractors."""
    by_metric: dict[str, dict[str | None, Path]] = {}
    for record in records:
        by_metric.setdefault(record.metric, {}).setdefault(record.extractor_name, record.path)
    for metric, examples in by_metric.items():
        if len(examples) > 1:
            listing = "; ".join(f"{name or 'none recorded'} (e.g. {path})" for name, path in examples.items())
            raise UserError(
                f"the {metric} metric files use different feature extractors: {listing}. "
                "Values from different extractors cannot be averaged; re-evaluate with one extractor"
            )


def build_table(spec: TableSpec, records: Sequence[MetricRecord], seeds: Sequence[int] | None = None) -> TableResult:
    """Aggregate one table from all metric files given.

    Rows are the variants with any metric file of the table's dataset; expected seeds are
    ``seeds`` or, when not given, every seed seen in that dataset. Files of other seeds
    are ignored.
    """
    dataset_records = [r for r in records if r.dataset == spec.dataset]
    expected = tuple(sorted(set(seeds) if seeds is not None else {r.seed for r in dataset_records}))
    used = tuple(r for r in dataset_records if r.metric in spec.metrics and r.seed in expected)
    check_single_extractor(used)
    files = {(r.variant, r.seed, r.metric): r for r in used}
    variants = tuple(sorted({r.variant for r in dataset_records}, key=variant_sort_key))
    return TableResult(
        spec=spec,
        seeds=expected,
        variants=variants,
        row_seeds={v: tuple(s for s in expected if any((v, s, m) in files for m in spec.metrics)) for v in variants},
        cells={(v, c.label): build_cell(files, v, c, expected) for v in variants for c in spec.columns},
        records=used,
    )


def build_tables(
    records: Sequence[MetricRecord], datasets: Sequence[str] | None = None, seeds: Sequence[int] | None = None
) -> list[TableResult]:
    """Every table of ``datasets`` (default: the datasets that have metric files)."""
    selected = set(datasets) if datasets is not None else {r.dataset for r in records}
    return [build_table(spec, records, seeds) for spec in TABLES if spec.dataset in selected]


def best_variants(result: TableResult, column: Column) -> set[str]:
    """Variants with the best mean in ``column`` at the shown precision (ties share); none with < 2 rows."""
    rounded = {
        variant: round(result.cell(variant, column).mean, result.spec.precision)
        for variant in result.variants
        if result.cell(variant, column).n
    }
    if len(rounded) < 2:
        return set()
    best = max(rounded.values()) if result.spec.higher_is_better else min(rounded.values())
    return {variant for variant, value in rounded.items() if value == best}


def footnote_markers(result: TableResult) -> dict[str, str]:
    """``{note text: marker}`` with markers a, b, ..., z, aa, bb, ... in row-major order."""
    notes = dict.fromkeys(note for cell in result.cells.values() for note in cell.notes)
    letters = string.ascii_lowercase
    return {note: letters[i % 26] * (i // 26 + 1) for i, note in enumerate(notes)}


def comparability(result: TableResult) -> str:
    """Why ``result`` must not be compared with the paper ('' when it may be)."""
    required = result.spec.paper_extractor
    if required is None:
        return ""
    extractors = sorted({r.extractor_name or "none recorded" for r in result.records})
    if extractors == [required]:
        return ""
    ours = ", ".join(extractors) if extractors else "unknown (no metric files)"
    return (
        f"our PRD features come from {ours}, the paper's from "
        f"Inception-v3 pool3 ({required}); PRD values depend on the feature space, so only "
        "rankings between our own rows are meaningful"
    )


# ------------------------------------------------------------------------- protocols
def compact_value(value: object) -> str:
    """A protocol value as one line of text: strings with whitespace collapsed, others as compact JSON."""
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def protocol_items(records: Iterable[MetricRecord]) -> list[str]:
    """``key=value`` for each protocol key of ``records``; values that differ are joined with ``/``."""
    seen: dict[str, dict[str, None]] = {}
    for record in records:
        for key, value in record.protocol.items():
            seen.setdefault(key, {})[compact_value(value)] = None
    return [
        f"{key}={'/'.join(values)}" + (" (varies between runs)" if len(values) > 1 else "")
        for key, values in sorted(seen.items())
    ]


# ---------------------------------------------------------------------------- markup
#: Text-mode replacements of LaTeX's special characters (``<``, ``>``, ``|`` print wrongly in OT1).
LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}

#: Characters Markdown tables, emphasis or inline HTML would interpret.
MARKDOWN_REPLACEMENTS = {"\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "<": "&lt;"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters for text mode."""
    return "".join(LATEX_REPLACEMENTS.get(char, char) for char in text)


def latex_label(text: str) -> str:
    """Escape a label, writing ``->`` as an arrow (``S->M`` → ``S$\\to$M``)."""
    return r"$\to$".join(latex_escape(part) for part in text.split("->"))


def markdown_escape(text: str) -> str:
    """Escape characters that Markdown tables or emphasis would interpret."""
    return "".join(MARKDOWN_REPLACEMENTS.get(char, char) for char in text)


def markdown_label(text: str) -> str:
    """Escape a label, writing ``->`` as an arrow (``S->M`` → ``S→M``)."""
    return "→".join(markdown_escape(part) for part in text.split("->"))


@dataclass(frozen=True)
class Markup:
    """How one output format writes text, labels, bold, footnote markers, code and numbers."""

    text: Callable[[str], str]
    label: Callable[[str], str]
    bold: Callable[[str], str]
    marker: Callable[[str], str]
    code: Callable[[str], str]
    plus_minus: str
    minus: str


LATEX = Markup(
    text=latex_escape,
    label=latex_label,
    bold=lambda s: rf"\textbf{{{s}}}",
    marker=lambda s: rf"\textsuperscript{{{s}}}",
    code=lambda s: rf"\texttt{{{latex_escape(s)}}}",
    plus_minus=r" $\pm$ ",
    minus="$-$",
)

MARKDOWN = Markup(
    text=markdown_escape,
    label=markdown_label,
    bold=lambda s: f"**{s}**",
    marker=lambda s: f"<sup>{s}</sup>",
    code=lambda s: f"`{s}`",
    plus_minus=" ± ",
    minus="-",
)


def format_number(value: float, precision: int, minus: str = "-", signed: bool = False) -> str:
    """Fixed-point text; no ``-0``; ``signed`` adds ``+`` to positive numbers (for differences)."""
    text = f"{value:+.{precision}f}" if signed else f"{value:.{precision}f}"
    if float(text) == 0:
        text = text.lstrip("+-")
        return f"+{text}" if signed else text
    return minus + text[1:] if text.startswith("-") else text


def mean_std_text(cell: Cell, precision: int, markup: Markup) -> str:
    """``mean ± std`` (std only when n > 1); empty without values."""
    if not cell.n:
        return ""
    text = format_number(cell.mean, precision, markup.minus)
    if cell.n > 1:
        text += markup.plus_minus + format_number(cell.std, precision, markup.minus)
    return text


# ------------------------------------------------------------------------ table rows
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
    return f"{spec.title}, {DATASET_TITLES[spec.dataset]} ({direction_text(spec)})"


def caption(result: TableResult, markup: Markup) -> str:
    """How the table was aggregated and the protocol read from the metric files (title excluded)."""
    spec = result.spec
    seeds = _seed_list(result.seeds) or "none found"
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
        rf"\caption{{{latex_escape(table_title(result.spec))}; the paper's Table {result.spec.number}. "
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


def markdown_grid(rows: list[list[str]]) -> str:
    """A pipe table: first row is the header; the model column left, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(rows[0]) - 1)
    return "\n".join("| " + " | ".join(row) + " |" for row in [rows[0], align, *rows[1:]])


def markdown_table_block(result: TableResult, decorate: CellRenderer | None = None) -> str:
    """The Markdown grid with its footnotes (or a line saying there are no runs)."""
    rows = table_rows(result, MARKDOWN, decorate)
    grid = markdown_grid(rows) if len(rows) > 1 else "_No runs found for this dataset._"
    notes = footnote_lines(result, MARKDOWN)
    return grid + ("\n\n" + "\n".join(f"- {note}" for note in notes) if notes else "")


def to_markdown(result: TableResult) -> str:
    """The table as Markdown: caption paragraph, grid, footnotes."""
    heading = f"**Table {result.spec.number}: {markdown_escape(table_title(result.spec))}**"
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


# ------------------------------------------------------------------ paper comparison
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
    title = f"**Table {spec.number} vs the paper: {markdown_escape(table_title(spec))}**"
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


# ------------------------------------------------------------------------------- CLI
def frame_csv(frame: pd.DataFrame) -> str:
    """CSV text of a frame (no index; missing values empty)."""
    return frame.to_csv(index=False, lineterminator="\n")


def table_output_paths(spec: TableSpec, out_dir: Path) -> dict[str, Path]:
    """The five files written per table."""
    return {
        "csv": out_dir / f"{spec.name}.csv",
        "tex": out_dir / f"{spec.name}.tex",
        "md": out_dir / f"{spec.name}.md",
        "paper_csv": out_dir / f"{spec.name}_vs_paper.csv",
        "paper_md": out_dir / f"{spec.name}_vs_paper.md",
    }


def write_table_outputs(result: TableResult, out_dir: Path) -> list[Path]:
    """Write CSV, LaTeX, Markdown and the paper comparison of one table, atomically."""
    paper = load_paper_table(result.spec.paper_csv)
    paths = table_output_paths(result.spec, out_dir)
    contents = {
        "csv": frame_csv(tidy_frame(result)),
        "tex": to_latex(result),
        "md": to_markdown(result),
        "paper_csv": frame_csv(comparison_frame(result, paper)),
        "paper_md": comparison_markdown(result, paper),
    }
    for kind, path in paths.items():
        write_text(path, contents[kind])
    return list(paths.values())


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
        choices=sorted(MODALITIES),
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
            "into the mmJSD paper's Tables 1-5: mean ± sample std (ddof=1) over seeds per variant. "
            "Every variant found becomes a row; missing metric files or values become empty, footnoted cells. "
            "For each table NAME of the selected datasets it writes NAME.csv (tidy: one row per model x "
            "column x statistic), NAME.tex (booktabs), NAME.md, NAME_vs_paper.csv and NAME_vs_paper.md. "
            f"Table names: {', '.join(TABLES_BY_NAME)}."
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


if __name__ == "__main__":
    main_guard(main)
