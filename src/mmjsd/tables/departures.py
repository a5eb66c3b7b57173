"""What the corrections change: corrected − reference-exact per table cell, and each evaluation switch alone.

Two kinds of table, both written under ``results/tables/departures/`` (docs/departures.md):

* **per table** (:func:`protocol_differences`), when both protocols ran: for every cell
  (variant × column), the per-seed differences corrected − reference-exact of runs with the
  same seed. Training departures act here together, since a run is trained once per
  protocol with every training switch at that protocol's value; evaluation departures
  act together on top.
* **evaluation** (:func:`evaluation_differences`): for each evaluation departure, the effect of
  flipping it alone on the corrected runs, from the metric files' ``alternatives``
  (``values`` − ``alternatives[d]``, signed so that it is always corrected − reference). It
  needs no reference-exact runs and no retraining.

Each cell holds the differences as a :class:`~mmjsd.tables.aggregate.Cell`, so its mean, sample
std (ddof=1: the seed spread) and n are those of every other table, and the same writers
render it. Whether a difference exceeds seed noise is decided by :func:`seed_noise_test`: a
paired two-sided t-test at :data:`SIGNIFICANCE`, possible from two seeds on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from mmjsd.core.departures import BY_NAME, CORRECTED, DEPARTURES, EVALUATION
from mmjsd.core.registry import variant_label, variant_sort_key
from mmjsd.reporting.metrics_io import MetricRecord
from mmjsd.tables.aggregate import Cell, TableResult, seed_list
from mmjsd.tables.markup import MARKDOWN, format_number, markdown_escape
from mmjsd.tables.render import TIDY_COLUMNS, markdown_table_block, table_title, tidy_frame
from mmjsd.tables.specs import Column

#: Level of the paired two-sided t-test that decides whether a difference exceeds seed noise.
SIGNIFICANCE = 0.05
#: Marker of a cell whose difference exceeds seed noise.
EXCEEDS_MARK = "†"
#: Columns of the tidy frame that a difference has no value for.
DROPPED_COLUMNS = ("protocol", "chance")


@dataclass(frozen=True)
class NoiseTest:
    """The paired t-test of one cell: its p-value (None when it cannot be computed) and the verdict in words."""

    p_value: float | None
    verdict: str  # "yes", "no", "n/a (1 seed)", "n/a (no seed)"

    @property
    def exceeds(self) -> bool:
        return self.verdict == "yes"


def seed_noise_test(differences: Sequence[float]) -> NoiseTest:
    """Whether paired per-seed differences exceed seed noise: a two-sided one-sample t-test of mean zero at 5%.

    t = mean / (s / sqrt(n)) with s the sample std (ddof=1) and n - 1 degrees of freedom;
    the difference exceeds seed noise when p < :data:`SIGNIFICANCE`. With n = 1 there is no
    spread to compare with ("n/a (1 seed)"). With s = 0 the differences are identical: p = 1
    when they are all zero, else p = 0.
    """
    n = len(differences)
    if n < 2:
        return NoiseTest(None, "n/a (1 seed)" if n == 1 else "n/a (no seed)")
    mean = math.fsum(differences) / n
    spread = math.sqrt(math.fsum((d - mean) ** 2 for d in differences) / (n - 1))
    if spread == 0:
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(2.0 * stats.t.sf(abs(mean) / (spread / math.sqrt(n)), n - 1))
    return NoiseTest(p_value, "yes" if p_value < SIGNIFICANCE else "no")


def paired_cell(label: str, corrected: Cell | None, reference: Cell | None, what: str) -> Cell:
    """Per-seed ``corrected - reference`` over the seeds both cells have; seeds with one side only are footnoted."""
    first = dict(zip(corrected.seeds, corrected.values, strict=True)) if corrected else {}
    second = dict(zip(reference.seeds, reference.values, strict=True)) if reference else {}
    paired = sorted(set(first) & set(second))
    notes = [
        f"{label}: seed {seed_list(sorted(set(side) - set(paired)))} has a {name} value but no {other} one"
        for side, name, other in ((first, what[0], what[1]), (second, what[1], what[0]))
        if set(side) - set(paired)
    ]
    return Cell(seeds=tuple(paired), values=tuple(first[s] - second[s] for s in paired), notes=tuple(notes))


def difference_result(
    base: TableResult, columns: Sequence[Column], cells: dict[tuple[str, str], Cell], title: str
) -> TableResult:
    """A table of differences laid out as ``base`` (its spec with ``columns``, one more decimal, ``title``)."""
    variants = tuple(sorted({variant for variant, _ in cells}, key=variant_sort_key))
    spec = dataclasses.replace(base.spec, title=title, columns=tuple(columns), precision=base.spec.precision + 1)
    return TableResult(
        spec=spec,
        seeds=base.seeds,
        variants=variants,
        row_seeds={v: tuple(sorted({s for (w, _), c in cells.items() if w == v for s in c.seeds})) for v in variants},
        cells=cells,
        records=(),
        context=base.context,
        differences=True,
    )


def protocol_differences(corrected: TableResult, reference: TableResult) -> TableResult:
    """corrected − reference-exact per cell, paired by seed (both tables of the same spec)."""
    variants = sorted(set(corrected.variants) | set(reference.variants), key=variant_sort_key)
    cells = {
        (variant, column.label): paired_cell(
            variant_label(variant),
            corrected.cells.get((variant, column.label)),
            reference.cells.get((variant, column.label)),
            ("corrected", "reference-exact"),
        )
        for variant in variants
        for column in corrected.spec.columns
    }
    return difference_result(
        corrected, corrected.spec.columns, cells, f"{corrected.spec.title}: corrected − reference-exact"
    )


def signed_effect(record: MetricRecord, departure: str, key: str) -> float | None:
    """``values − alternatives[departure]`` of one file, signed as corrected
    − reference whatever the file's own switch."""
    value, alternative = record.values.get(key), record.alternatives.get(departure, {}).get(key)
    if value is None or alternative is None:
        return None
    difference = value - alternative
    return difference if record.departures.get(departure, CORRECTED) == CORRECTED else -difference


def switch_effect(result: TableResult, departure: str) -> TableResult | None:
    """The effect of flipping ``departure`` alone on the runs of ``result``
    (None when no file of its columns reports one)."""
    spec = result.spec
    columns = [c for c in spec.columns if BY_NAME[departure].acts_on_metric(spec.dataset, c.metric)]
    if not columns:
        return None
    files = {(r.variant, r.seed, r.metric): r for r in result.records}
    cells = {}
    for variant in result.variants:
        for column in columns:
            seeds, values = [], []
            for seed in result.seeds:
                record = files.get((variant, seed, column.metric))
                effect = signed_effect(record, departure, column.key) if record else None
                if effect is not None:
                    seeds.append(seed)
                    values.append(effect)
            missing = [s for s in result.cell(variant, column).seeds if s not in seeds]
            notes = (
                (f"{variant_label(variant)}: no '{departure}' alternative for seed {seed_list(missing)}",)
                if missing
                else ()
            )
            cells[(variant, column.label)] = Cell(seeds=tuple(seeds), values=tuple(values), notes=notes)
    if not any(cell.n for cell in cells.values()):
        return None
    return difference_result(result, columns, cells, f"{spec.title}: {departure} corrected − reference")


def evaluation_differences(results: Sequence[TableResult]) -> dict[str, list[TableResult]]:
    """For each evaluation departure (registry order), its effect alone on each table it acts on."""
    effects: dict[str, list[TableResult]] = {}
    for departure in (d.name for d in DEPARTURES if d.stage == EVALUATION):
        tables = [effect for result in results if (effect := switch_effect(result, departure)) is not None]
        if tables:
            effects[departure] = tables
    return effects


# ------------------------------------------------------------------------------ writers
def noise_tests(result: TableResult) -> dict[tuple[str, str], NoiseTest]:
    """The seed-noise test of every cell."""
    return {key: seed_noise_test(cell.values) for key, cell in result.cells.items()}


def exceeding_cells(result: TableResult) -> tuple[int, int]:
    """(cells whose difference exceeds seed noise, cells with a difference)."""
    tests = [seed_noise_test(cell.values) for cell in result.cells.values() if cell.n]
    return sum(t.exceeds for t in tests), len(tests)


def difference_text(result: TableResult, variant: str, column: Column) -> str:
    """``+0.012 ± 0.004†``: signed mean ± seed spread, marked when it exceeds seed noise."""
    cell = result.cell(variant, column)
    if not cell.n:
        return ""
    precision = result.spec.precision
    text = format_number(cell.mean, precision, signed=True)
    if cell.n > 1:
        text += MARKDOWN.plus_minus + format_number(cell.std, precision)
    return text + (EXCEEDS_MARK if seed_noise_test(cell.values).exceeds else "")


def differences_caption(what: str) -> str:
    """How to read a table of differences (Markdown)."""
    return (
        f"Each cell: the mean over seeds of {what}, paired by seed, ± the sample standard deviation of those "
        "differences (ddof=1: the seed spread); n = seeds with a pair. "
        f"{EXCEEDS_MARK} marks a difference that exceeds seed noise: a paired two-sided t-test "
        f"(t = mean / (std / √n), n − 1 degrees of freedom) rejects a zero difference at the {SIGNIFICANCE:.0%} level. "
        "With one seed there is no spread to test against (n/a (1 seed) in the CSV)."
    )


def differences_frame(result: TableResult, **labels: str) -> pd.DataFrame:
    """The tidy frame of a table of differences, with each cell's p-value and verdict as two more statistics."""
    frame = tidy_frame(result)
    tests = noise_tests(result)
    extra = []
    for row in frame[frame.statistic == "mean"].to_dict("records"):
        test = tests[(row["variant"], row["column"])]
        extra += [
            {**row, "statistic": "p_value", "value": test.p_value},
            {**row, "statistic": "exceeds_seed_noise", "value": test.verdict},
        ]
    frame = pd.concat([frame, pd.DataFrame(extra, columns=frame.columns)], ignore_index=True)
    frame = frame.drop(columns=list(DROPPED_COLUMNS))
    for position, (name, value) in enumerate(labels.items()):
        frame.insert(position, name, value)
    return frame


def protocol_differences_markdown(result: TableResult) -> str:
    """The corrected − reference-exact table of one paper (or metric) table as Markdown."""
    heading = f"**{result.spec.heading}, departures: {markdown_escape(table_title(result.spec))}**"
    caption = differences_caption("corrected − reference-exact (runs of the same seed)") + (
        " The corrected and reference-exact runs are trained separately, so every training departure acting on a "
        "row acts here together with its evaluation departures; departures/evaluation.md shows each evaluation "
        "departure alone (docs/departures.md)."
    )
    table = markdown_table_block(result, lambda v, c, _: difference_text(result, v, c))
    return f"{heading}\n\n{markdown_escape(caption)}\n\n{table}\n"


def evaluation_differences_markdown(effects: dict[str, list[TableResult]]) -> str:
    """Every evaluation departure's effect alone on the corrected runs, one section per departure."""
    parts = [
        "# Evaluation departures, each flipped alone on the corrected runs",
        markdown_escape(
            differences_caption(
                "values − alternatives[switch] of the corrected runs' metric files, i.e. corrected − reference"
            )
            + " The metric files compute each alternative from the same encodings, draws and generations, so these "
            "differences cost no retraining. Training departures have no such alternative: the departures table of "
            "each paper table shows them together, from the reference-exact runs (docs/departures.md)."
        ),
    ]
    if not effects:
        parts.append("_No metric file of the corrected runs carries an alternative._")
    for departure, tables in effects.items():
        parts.append(f"## `{departure}`\n\n{markdown_escape('Official code: ' + BY_NAME[departure].official + '.')}")
        parts += [
            f"**{markdown_escape(table_title(result.spec))}**\n\n"
            + markdown_table_block(result, lambda v, c, _, result=result: difference_text(result, v, c))
            for result in tables
        ]
    return "\n\n".join(parts) + "\n"


def evaluation_differences_frame(effects: dict[str, list[TableResult]]) -> pd.DataFrame:
    """One tidy frame of every evaluation departure's effect, with a ``departure`` column."""
    frames = [
        differences_frame(result, departure=departure) for departure, tables in effects.items() for result in tables
    ]
    if not frames:
        return pd.DataFrame(columns=["departure"] + [c for c in TIDY_COLUMNS if c not in DROPPED_COLUMNS])
    return pd.concat(frames, ignore_index=True)
