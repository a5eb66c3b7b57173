"""``results/summary.md``: the page to read first.

What ran (datasets, variants, seeds and protocols, key settings from the runs' ``config.json``
and the metric files' protocols), every paper table beside the paper (from the
reference-exact runs when that protocol ran, else the corrected runs; it says which), what
the corrections change when both protocols ran, the classifiers' test scores, and the
caveats that decide how far the numbers can be trusted. On synthetic data, and for a
dataset that ran only as a pipeline check, nothing is set beside the paper and no best value
is marked: our numbers are shown with the chance level of each metric. Command line::

    python -m mmjsd.summary --out results/summary.md --metrics results/runs \\
        --run-configs results/runs --classifier-metrics results/classifiers --data-source synthetic
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmjsd.core import registry
from mmjsd.core.cli import main_guard
from mmjsd.core.departures import CORRECTED_PROTOCOL, PROTOCOL_DESCRIPTIONS, REFERENCE_EXACT_PROTOCOL
from mmjsd.core.io import write_text
from mmjsd.core.registry import variant_label, variant_sort_key
from mmjsd.reporting.metrics_io import (
    CLASSIFIER_METRICS_PATTERN,
    CLASSIFIER_SCORES,
    RUN_CONFIG_PATTERN,
    MetricRecord,
    expand_paths,
    load_classifier_metrics,
    load_metric_files,
    load_run_config,
)
from mmjsd.reporting.paper import load_paper_table
from mmjsd.tables.aggregate import (
    TableResult,
    by_protocol,
    compact_value,
    comparability,
    protocol_items,
    protocol_tables,
)
from mmjsd.tables.cli import add_selection_arguments
from mmjsd.tables.compare import comparison_markdown
from mmjsd.tables.context import ReportContext, add_context_arguments, context_from_arguments
from mmjsd.tables.departures import evaluation_differences, exceeding_cells, protocol_differences
from mmjsd.tables.markup import markdown_escape, markdown_grid
from mmjsd.tables.render import to_markdown
from mmjsd.tables.specs import DEPARTURES_DIR, EVALUATION_DEPARTURES, LIKELIHOOD_CAVEAT, NOT_COMPARABLE

#: Settings shown per (dataset, variant): ``(key searched for in config.json, column header)``.
RUN_SETTINGS = (
    ("epochs", "epochs"),
    ("lr", "lr"),
    ("batch_size", "batch size"),
    ("beta", "beta"),
    ("shared_dim", "shared dim"),
    ("style_dim", "style dim"),
    ("beta_style", "style beta"),
    ("device", "device"),
    ("wall_time_s", "wall time (s)"),
)


# --------------------------------------------------------------------------- what ran
def find_setting(document: dict[str, Any], key: str) -> Any:
    """The value of ``key`` at the shallowest depth of a nested config (None when absent)."""
    level = [document]
    while level:
        for mapping in level:
            if key in mapping:
                return mapping[key]
        level = [value for mapping in level for value in mapping.values() if isinstance(value, dict)]
    return None


def setting_text(values: Sequence[Any]) -> str:
    """Distinct values of one setting across a variant's seeds, joined with `` / ``."""
    distinct = dict.fromkeys(compact_value(value) for value in values if value is not None)
    return markdown_escape(" / ".join(distinct))


def _seed_text(seeds: Sequence[int]) -> str:
    """``0 1 2`` for a table cell."""
    return " ".join(str(seed) for seed in seeds)


def runs_table(dataset: str, records: Sequence[MetricRecord], configs: Sequence[dict[str, Any]]) -> str:
    """Markdown table of the runs of ``dataset``, one row per (protocol, variant): seeds with results and key settings.

    Settings that no config of the dataset records are left out.
    """
    dataset_configs = [c for c in configs if c["dataset"] == dataset]
    rows_of = sorted(
        {(r.protocol_name, r.variant) for r in records if r.dataset == dataset}
        | {(c["protocol"], c["variant"]) for c in dataset_configs},
        key=lambda row: (row[0], variant_sort_key(row[1])),
    )
    settings = [
        (key, header) for key, header in RUN_SETTINGS if any(find_setting(c, key) is not None for c in dataset_configs)
    ]
    rows = [["Variant", "protocol", "seeds with configs", "seeds with metrics"] + [header for _, header in settings]]
    for protocol, variant in rows_of:
        run_configs = [c for c in dataset_configs if (c["protocol"], c["variant"]) == (protocol, variant)]
        config_seeds = sorted({c["seed"] for c in run_configs})
        metric_seeds = sorted(
            {r.seed for r in records if (r.dataset, r.variant, r.protocol_name) == (dataset, variant, protocol)}
        )
        rows.append(
            [markdown_escape(variant_label(variant)), protocol, _seed_text(config_seeds), _seed_text(metric_seeds)]
            + [setting_text([find_setting(c, key) for c in run_configs]) for key, _ in settings]
        )
    return markdown_grid(rows)


def protocol_lines(dataset: str, records: Sequence[MetricRecord]) -> list[str]:
    """One bullet per metric of ``dataset``: its protocol as read from the metric files."""
    metrics = sorted({r.metric for r in records if r.dataset == dataset})
    lines = []
    for metric in metrics:
        of_metric = [r for r in records if (r.dataset, r.metric) == (dataset, metric)]
        items = protocol_items(of_metric)
        extractors = sorted({r.extractor_name for r in of_metric if r.extractor_name})
        if extractors:
            items.append("extractor=" + "/".join(extractors))
        lines.append(f"- {markdown_escape(metric)}: " + (", ".join(f"`{i}`" for i in items) or "no protocol recorded"))
    return lines


def what_ran_section(
    datasets: Sequence[str], records: Sequence[MetricRecord], configs: Sequence[dict], context: ReportContext
) -> str:
    """``## What ran``: the protocols, then per dataset the runs table and each protocol's evaluation protocol."""
    protocols = "; ".join(f"`{p}`: {PROTOCOL_DESCRIPTIONS[p]}" for p in context.protocols)
    parts = ["## What ran", f"Protocols (docs/departures.md): {markdown_escape(protocols)}."]
    groups = by_protocol(records)
    for dataset in datasets:
        heading = f"### {registry.dataset(dataset).title} (`{dataset}`)"
        if context.pipeline_check(dataset):
            heading += ": a pipeline check, its numbers are not results"
        parts += [heading, runs_table(dataset, records, configs)]
        for protocol in context.protocols:
            lines = protocol_lines(dataset, groups.get(protocol, []))
            if lines:
                parts.append(
                    f"Evaluation protocol of the {protocol} runs, from the metric files:\n\n" + "\n".join(lines)
                )
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- tables
def tables_section(results: Sequence[TableResult], context: ReportContext) -> str:
    """``## Tables``: each paper table beside the paper where that is meaningful, then our other tables.

    Synthetic data compare nothing with the paper (the heading says so); otherwise the
    section says which runs the comparison uses.
    """
    runs = f"the {context.comparison_protocol} runs"
    if context.synthetic:
        parts = [
            "## Tables (not compared with the paper: synthetic data)",
            f"Our numbers from {runs}, with the chance level of each metric; no best value is marked. Every protocol's "
            "tables are under `results/tables/<protocol>/`.",
        ]
    else:
        like_for_like = (
            " (every departure switch at reference: the official computation, like for like)"
            if context.comparison_protocol == REFERENCE_EXACT_PROTOCOL
            else " (no reference-exact runs were configured, so each comparison carries its protocol caveat)"
        )
        parts = [
            f"## Tables vs the paper ({runs})",
            f"The paper comparison uses {runs}{like_for_like}. Every protocol's tables are under "
            "`results/tables/<protocol>/`.",
        ]
    parts += [
        comparison_markdown(result, load_paper_table(result.spec.paper_csv)).rstrip()
        if result.spec.compared
        else to_markdown(result).rstrip()
        for result in results
    ]
    return "\n\n".join(parts)


def departures_section(results: dict[str, list[TableResult]], context: ReportContext) -> str | None:
    """``## Departures``: how many cells each correction moves beyond seed noise, and where the tables are.

    Corrected − reference-exact per table when both protocols ran, and each evaluation
    switch alone on the corrected runs (docs/departures.md); None without corrected runs.
    """
    if CORRECTED_PROTOCOL not in results:
        return None
    where = f"results/tables/{DEPARTURES_DIR}"
    parts = ["## Departures"]
    if context.both_protocols:
        lines = []
        for corrected, reference in zip(results[CORRECTED_PROTOCOL], results[REFERENCE_EXACT_PROTOCOL], strict=True):
            exceeding, total = exceeding_cells(protocol_differences(corrected, reference))
            lines.append(
                f"- {corrected.spec.heading} ({markdown_escape(corrected.spec.title)}, "
                f"{registry.dataset(corrected.spec.dataset).title}): "
                f"{exceeding} of {total} cells differ beyond seed noise (`{where}/{corrected.spec.name}.md`)"
            )
        parts.append(
            "What the corrections change: corrected minus reference-exact per table cell, "
            "paired by seed, with the seed "
            "spread and a paired t-test against seed noise (5% level; not possible with one seed). The training "
            "departures act together there.\n\n" + "\n".join(lines)
        )
    else:
        parts.append(
            "Only the corrected runs ran, so the training departures are not measured; "
            "`--configfile workflow/presets/reference-exact.yaml` adds the reference-exact runs (docs/departures.md)."
        )
    effects = evaluation_differences(results[CORRECTED_PROTOCOL])
    counts = [
        f"`{departure}` {sum(exceeding_cells(t)[0] for t in tables)} of {sum(exceeding_cells(t)[1] for t in tables)}"
        for departure, tables in effects.items()
    ]
    parts.append(
        "Each evaluation switch flipped alone on the corrected runs "
        f"(`{where}/{EVALUATION_DEPARTURES}.md`), cells beyond "
        "seed noise: " + ("; ".join(counts) if counts else "no metric file carries an alternative") + "."
    )
    if context.synthetic:
        parts.append(
            "On synthetic data these differences show that the switches act, not how large they are on real data."
        )
    return "\n\n".join(parts)


# ------------------------------------------------------------------------ classifiers
def classifier_score(document: dict[str, Any]) -> tuple[str, float]:
    """``(score name, value)`` of a classifier metrics file."""
    key = next(key for key in CLASSIFIER_SCORES if key in document)
    return CLASSIFIER_SCORES[key], document[key]


def classifier_order(document: dict[str, Any]) -> tuple[int, int, str]:
    """Sort classifiers by dataset, then modality in canonical order (others last), then role."""
    modalities = registry.modalities(document["dataset"])
    modality = document["modality"]
    return (
        registry.DATASETS.names().index(document["dataset"]),
        modalities.index(modality) if modality in modalities else len(modalities),
        str(document.get("role", "")),
    )


def classifiers_section(classifiers: Sequence[dict[str, Any]]) -> str:
    """``## Classifiers``: test score of every coherence and feature classifier."""
    header = ["Dataset", "Modality", "Role", "Score", "Value", "Epochs", "n train", "n test", "Seed"]
    rows = [header]
    for document in sorted(classifiers, key=classifier_order):
        name, value = classifier_score(document)
        rows.append(
            [registry.dataset(document["dataset"]).title, markdown_escape(str(document["modality"]))]
            + [markdown_escape(str(document.get("role", ""))), name, f"{value:.3f}"]
            + [str(document.get(key, "")) for key in ("epochs", "n_train", "n_test", "seed")]
        )
    body = markdown_grid(rows) if classifiers else "_No classifier metrics were given._"
    return (
        "## Classifiers\n\nThe classifiers that score coherence (and, for PRD without Inception weights, "
        f"provide features), trained by the pipeline and evaluated on the test split.\n\n{body}"
    )


# ---------------------------------------------------------------------------- caveats
def data_caveat(data_source: str | None) -> str:
    """What the data source means for the numbers."""
    if data_source == "synthetic":
        return (
            "**Synthetic data.** The raw data were generated by the pipeline (`data.source: synthetic`), "
            "not the real MNIST, SVHN and CelebA: the numbers show that the pipeline works and are not "
            "comparable with the paper's, so no table here sets them beside the paper or marks a best value; "
            "each table's Chance row says what guessing scores."
        )
    if data_source is None:
        return "**Data source not recorded** (run with `--data-source`); check that the real datasets were used."
    return f"Data: the official datasets (`data.source: {data_source}`)."


def pipeline_check_caveat(dataset: str) -> str:
    """The statement that ``dataset`` ran only to exercise the pipeline."""
    title = registry.dataset(dataset).title
    return (
        f"**{title} is a pipeline check** (`report.pipeline_checks`): it ran only to exercise the pipeline's "
        f"{title} path, at a size at which its networks cannot learn; its numbers are not results and are not "
        "compared with the paper."
    )


def prd_caveat(results: Sequence[TableResult]) -> str | None:
    """Which PRD features were used, and whether that allows comparing with the paper."""
    prd = [r for r in results if r.spec.paper_extractor is not None and not r.context.not_results(r.spec.dataset)]
    if not prd:
        return None
    reasons = [comparability(r) for r in prd]
    if any(reasons):
        return f"**PRD (Table 3) is {NOT_COMPARABLE.lower()}:** {markdown_escape(next(r for r in reasons if r))}."
    return "PRD (Table 3) uses the paper's features, Inception-v3 pool3; its numbers are compared with the paper."


def likelihood_caveat(records: Sequence[MetricRecord]) -> str:
    """The estimator difference behind Table 4, with our protocol."""
    items = protocol_items(r for r in records if r.metric == "likelihood")
    ours = f" Our protocol: {', '.join(f'`{i}`' for i in items)}." if items else ""
    return f"**Log-likelihoods (Table 4).** {markdown_escape(LIKELIHOOD_CAVEAT)}{ours}"


def classifier_mode_caveat(records: Sequence[MetricRecord]) -> str:
    """In which mode the coherence classifiers ran, read from the metric files' protocols."""
    modes = sorted({str(r.protocol["classifier_mode"]) for r in records if "classifier_mode" in r.protocol})
    recorded = f"`classifier_mode={'/'.join(modes)}` in the metric files" if modes else "not recorded"
    return (
        f"**Classifier mode:** {recorded}. The reference code left its classifiers in train mode (dropout and "
        "batch statistics active); in `eval` mode coherence can differ from the paper's for that reason alone."
    )


RANDOM_COHERENCE_CAVEAT = (
    "**Random coherence** counts a random sample as coherent only when the classifiers of all "
    "modalities agree (the MoPoE definition); the mmJSD reference code used a looser formula, "
    "kept in the metric files' `alternatives` (`random_coherence_formula`)."
)


REFERENCE_EXACT_CAVEAT = (
    "**Reference-exact runs** compute every departure with a switch as the official code does; the departures "
    "without a switch remain (docs/departures.md): seeded randomness, classifiers trained by the pipeline instead "
    "of the authors' downloaded ones, and, without Inception weights, other PRD features."
)


def protocol_caveats(results: Sequence[TableResult]) -> list[str]:
    """How our protocol differs from the paper's, for the tables compared with it: what no switch reproduces for
    reference-exact runs, each correction's effect for corrected runs."""
    compared = [r for r in results if not r.context.not_results(r.spec.dataset)]
    if any(r.protocol == REFERENCE_EXACT_PROTOCOL for r in compared):
        return [REFERENCE_EXACT_CAVEAT]
    compared = [r for r in compared if r.protocol == CORRECTED_PROTOCOL]
    records = [record for r in compared for record in r.records]
    bullets = []
    if any(result.spec.comparison_caveat == LIKELIHOOD_CAVEAT for result in compared):
        bullets.append(likelihood_caveat(records))
    coherence_datasets = {result.spec.dataset for result in compared if "coherence" in result.spec.metrics}
    if coherence_datasets:
        bullets.append(classifier_mode_caveat(records))
    if any(registry.dataset(d).labels == "classes" for d in coherence_datasets):
        bullets.append(RANDOM_COHERENCE_CAVEAT)
    return bullets


def caveats_section(context: ReportContext, datasets: Sequence[str], results: Sequence[TableResult]) -> str:
    """``## Caveats``: what to keep in mind before comparing numbers (the
    data, the tables shown, each dataset's own)."""
    bullets = [data_caveat(context.data_source)]
    bullets += [pipeline_check_caveat(dataset) for dataset in datasets if context.pipeline_check(dataset)]
    bullets.append(prd_caveat(results))
    bullets += protocol_caveats(results)
    bullets += [caveat for dataset in datasets for caveat in registry.dataset(dataset).caveats]
    bullets.append(
        "Mean ± std are over training seeds with the sample standard deviation (ddof=1); "
        "empty cells are missing runs or values, explained in each table's footnotes."
    )
    return "## Caveats\n\n" + "\n".join(f"- {bullet}" for bullet in bullets if bullet)


# ---------------------------------------------------------------------------- figures
def figures_section(figures: Sequence[Path], out: Path) -> str:
    """``## Figures``: the given images, linked relative to the summary."""
    links = [f"![{markdown_escape(f.stem)}]({Path(os.path.relpath(f, out.parent)).as_posix()})" for f in figures]
    return "## Figures\n\n" + "\n\n".join(links)


# ------------------------------------------------------------------------------- page
def summary_markdown(
    records: Sequence[MetricRecord],
    configs: Sequence[dict[str, Any]],
    classifiers: Sequence[dict[str, Any]],
    context: ReportContext,
    datasets: Sequence[str],
    seeds: Sequence[int] | None = None,
    figures: Sequence[Path] = (),
    out: Path = Path("summary.md"),
) -> str:
    """The whole summary page."""
    results = protocol_tables(records, context, datasets, seeds)
    compared = results[context.comparison_protocol]
    intro = (
        "# mmJSD reproduction: summary\n\n"
        "Reproduction of Sutter, Daunhawer and Vogt, *Multimodal Generative Learning Utilizing "
        "Jensen-Shannon Divergence* (NeurIPS 2020), Tables 1-5, from "
        f"{len(records)} metric files, {len(configs)} run configs and {len(classifiers)} classifier metric files "
        f"of the protocol(s) {', '.join(context.protocols)}. "
        "Full tables (CSV, LaTeX, Markdown) are under `results/tables/<protocol>/`, the paper comparisons under "
        "`results/tables/`, figures under `results/figures/`."
    )
    sections = [
        intro,
        caveats_section(context, datasets, compared),
        what_ran_section(datasets, records, configs, context),
        tables_section(compared, context),
        departures_section(results, context),
        classifiers_section(classifiers),
    ]
    if figures:
        sections.append(figures_section(figures, out))
    return "\n\n".join(section for section in sections if section) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments of ``python -m mmjsd.summary``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.summary",
        description="Write results/summary.md, the page to read first: caveats, what ran (datasets, variants, "
        "seeds, protocols, key settings from the runs' config.json and the metric files' protocols), Tables 1-5 "
        "with the paper's value and ours - paper per cell (reference-exact runs when that protocol ran; nothing of "
        "the paper for synthetic data or pipeline checks, whose tables show chance levels instead), what the "
        "corrections change (departures), and the classifiers' test scores.",
    )
    parser.add_argument("--out", required=True, type=Path, help="the Markdown file to write")
    parser.add_argument(
        "--run-configs", nargs="+", default=[], help="run config.json files, or directories searched for config.json"
    )
    parser.add_argument(
        "--classifier-metrics",
        nargs="*",
        default=[],
        help="classifier metrics.json files, or directories searched for metrics.json "
        "(none when no configured metric reads a classifier)",
    )
    parser.add_argument("--figures", nargs="+", type=Path, default=[], help="image files to link in a Figures section")
    add_selection_arguments(parser)
    add_context_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Read every input and write the summary page."""
    args = parse_args(argv)
    records = load_metric_files(args.metrics)
    configs = [load_run_config(p) for p in expand_paths(args.run_configs, RUN_CONFIG_PATTERN)]
    classifier_files = expand_paths(args.classifier_metrics, CLASSIFIER_METRICS_PATTERN)
    classifiers = [load_classifier_metrics(p) for p in classifier_files]
    context = context_from_arguments(args, list(by_protocol(records)))
    datasets = args.datasets or [d for d in registry.DATASETS.names() if any(r.dataset == d for r in records)]
    text = summary_markdown(records, configs, classifiers, context, datasets, args.seeds, args.figures, args.out)
    write_text(args.out, text)


if __name__ == "__main__":
    main_guard(main)
