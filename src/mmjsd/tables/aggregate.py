"""Aggregation: metric files → cells of mean, sample std (ddof=1) and seeds, with footnotes for gaps.

:func:`build_table` fills one :class:`~mmjsd.tables.specs.TableSpec` from the metric files
of every variant found, all of one protocol (corrected or reference-exact); missing files
and keys become empty cells with footnotes, and each column gets its chance level (the
metric spec's ``chance``). :func:`protocol_tables` builds every table of the selected
datasets (the paper's and one per metric no paper table covers) for every configured
protocol. Also here: what may be compared with the paper (:func:`comparability`), whether
best values are marked (:func:`marks_best`) and the protocol read from the files
(:func:`protocol_items`).
"""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmjsd.core import registry
from mmjsd.core.errors import UserError
from mmjsd.core.registry import ChanceQuery, variant_label, variant_sort_key
from mmjsd.reporting.metrics_io import MetricRecord
from mmjsd.tables.context import ReportContext
from mmjsd.tables.specs import Column, TableSpec, columns, planned_tables


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
    """One aggregated table: rows (variants), cells and the metric files they came from.

    ``protocol`` is the protocol of those files (None without files), ``context`` what the
    configuration says about the data (:class:`~mmjsd.tables.context.ReportContext`),
    ``chance`` the chance level per column label (None where the metric has none).
    ``differences`` marks a table whose cells are differences between two computations
    (:mod:`mmjsd.tables.departures`): no best value, no chance level.
    """

    spec: TableSpec
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    row_seeds: dict[str, tuple[int, ...]]
    cells: dict[tuple[str, str], Cell]
    records: tuple[MetricRecord, ...]
    protocol: str | None = None
    context: ReportContext = field(default_factory=ReportContext)
    chance: dict[str, float | None] = field(default_factory=dict)
    differences: bool = False

    def cell(self, variant: str, column: Column) -> Cell:
        """The cell of ``variant`` under ``column``."""
        return self.cells[(variant, column.label)]


def seed_list(seeds: Iterable[int]) -> str:
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
        notes.append(f"{label}: no {column.metric} metric file for seed {seed_list(missing_files)}")
    if missing_keys:
        notes.append(
            f"{label}: '{column.key}' is absent or null in the {column.metric} file of seed {seed_list(missing_keys)}"
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


def value_key_columns(metric: str, records: Sequence[MetricRecord]) -> tuple[Column, ...]:
    """One column per value key of ``metric``'s files, in first-seen order (files sorted by path)."""
    keys = dict.fromkeys(
        key for record in sorted(records, key=lambda r: r.path) if record.metric == metric for key in record.values
    )
    return columns(metric, {key: key for key in keys})


def single_protocol(records: Sequence[MetricRecord]) -> str | None:
    """The one protocol of ``records`` (None for none); files of two protocols are never averaged together."""
    found = {r.protocol_name: r.path for r in records}
    if len(found) > 1:
        listing = "; ".join(f"{name} (e.g. {path})" for name, path in sorted(found.items()))
        raise UserError(f"one table cannot mix protocols: {listing}. Pass the metric files of one protocol")
    return next(iter(found), None)


def by_protocol(records: Sequence[MetricRecord]) -> dict[str, list[MetricRecord]]:
    """The records of each protocol found."""
    groups: dict[str, list[MetricRecord]] = {}
    for record in records:
        groups.setdefault(record.protocol_name, []).append(record)
    return groups


def chance_level(column: Column, dataset: str, records: Sequence[MetricRecord]) -> float | None:
    """The chance level of ``column`` (its metric spec's ``chance``), averaged over the files that report it.

    The level may depend on what each file records (its switches, the attribute prevalence
    of its test rows); None when the metric has none or no file reports the column.
    """
    spec, dataset_spec = registry.metric(column.metric), registry.dataset(dataset)
    levels = [
        spec.chance(ChanceQuery(dataset_spec, column.key, record.departures, record.attribute_prevalence))
        for record in records
        if record.metric == column.metric and record.values.get(column.key) is not None
    ]
    if not levels or any(level is None for level in levels):
        return None
    return float(np.mean(levels))


def build_table(
    spec: TableSpec,
    records: Sequence[MetricRecord],
    seeds: Sequence[int] | None = None,
    context: ReportContext | None = None,
) -> TableResult:
    """Aggregate one table from all metric files given (all of one protocol).

    Rows are the variants with any metric file of the table's dataset; expected seeds are
    ``seeds`` or, when not given, every seed seen in that dataset. Files of other seeds
    are ignored. A table with ``columns_of`` gets its columns from the files. ``context`` defaults to an empty
    :class:`ReportContext`.
    """
    dataset_records = [r for r in records if r.dataset == spec.dataset]
    expected = tuple(sorted(set(seeds) if seeds is not None else {r.seed for r in dataset_records}))
    used = tuple(r for r in dataset_records if r.metric in spec.metrics and r.seed in expected)
    if spec.columns_of is not None:
        spec = dataclasses.replace(spec, columns=value_key_columns(spec.columns_of, used))
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
        protocol=single_protocol(dataset_records),
        context=context or ReportContext(),
        chance={c.label: chance_level(c, spec.dataset, used) for c in spec.columns},
    )


def tables_of(records: Sequence[MetricRecord], datasets: Sequence[str] | None = None) -> list[TableSpec]:
    """The tables of ``datasets`` (default: the datasets that have metric
    files): the paper's, then ours per metric found."""
    selected = list(datasets) if datasets is not None else sorted({r.dataset for r in records})
    return planned_tables({d: sorted({r.metric for r in records if r.dataset == d}) for d in selected})


def protocol_tables(
    records: Sequence[MetricRecord],
    context: ReportContext,
    datasets: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> dict[str, list[TableResult]]:
    """Every table of every configured protocol (``context.protocols``), each from that protocol's files.

    The same tables for every protocol, planned from all files; files of a protocol that is
    not configured are refused, so no result is silently left out.
    """
    groups = by_protocol(records)
    unexpected = sorted(set(groups) - set(context.protocols))
    if unexpected:
        example = groups[unexpected[0]][0].path
        raise UserError(
            f"metric files of protocol '{unexpected[0]}' were given (e.g. {example}), but the configured protocols are "
            f"{', '.join(context.protocols)}; pass --protocols with every protocol whose files you pass"
        )
    specs = tables_of(records, datasets)
    return {p: [build_table(spec, groups.get(p, []), seeds, context) for spec in specs] for p in context.protocols}


def marks_best(result: TableResult) -> bool:
    """Whether the best mean per column is marked: not among differences, synthetic data or a pipeline check.

    On synthetic data and in a pipeline check the rows differ by noise around chance, so a
    "best" mark would claim a result that is not there.
    """
    return not result.differences and not result.context.not_results(result.spec.dataset)


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


def paper_withheld(result: TableResult) -> bool:
    """Whether the paper's values must not appear beside ``result`` at all (synthetic data, a pipeline check)."""
    return bool(result.context.not_results(result.spec.dataset))


def comparability(result: TableResult) -> str:
    """Why ``result`` must not be compared with the paper ('' when it may be): its data, or its PRD features."""
    not_results = result.context.not_results(result.spec.dataset)
    if not_results:
        return not_results
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


def compact_value(value: object) -> str:
    """A protocol value as one line of text: strings with whitespace collapsed, others as compact JSON."""
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def merged_mappings(values: list[object]) -> list[object]:
    """``values`` as one mapping when they are mappings that never disagree on a key, else unchanged.

    Each run records only the departure switches that act on it (docs/departures.md), so the
    runs of a table carry different subsets of one consistent setting; their union says it
    once instead of listing every subset.
    """
    if not values or not all(isinstance(value, Mapping) for value in values):
        return values
    union: dict = {}
    for value in values:
        for key, item in value.items():
            if union.setdefault(key, item) != item:
                return values
    return [union]


def protocol_items(records: Iterable[MetricRecord]) -> list[str]:
    """``key=value`` for each protocol key of ``records``; values that differ are joined with ``/``
    (mappings that agree on every shared key are merged first: :func:`merged_mappings`)."""
    seen: dict[str, list[object]] = {}
    for record in records:
        for key, value in record.protocol.items():
            seen.setdefault(key, []).append(value)
    items = []
    for key, values in sorted(seen.items()):
        distinct = list(dict.fromkeys(compact_value(value) for value in merged_mappings(values)))
        items.append(f"{key}={'/'.join(distinct)}" + (" (varies between runs)" if len(distinct) > 1 else ""))
    return items
