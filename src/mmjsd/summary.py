"""``results/summary.md``: the page to read first.

What ran (datasets, variants, seeds, key settings from the runs' ``config.json`` and the
metric files' protocols), every paper table with each cell's distance from the paper, the
classifiers' test scores, and the caveats that decide how far the numbers can be trusted.
Command line::

    python -m mmjsd.summary --out results/summary.md --metrics results/runs \\
        --run-configs results/runs --classifier-metrics results/classifiers --data-source synthetic
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Sequence

from mmjsd import registry
from mmjsd.cli import main_guard
from mmjsd.errors import UserError
from mmjsd.io import write_text
from mmjsd.metrics_io import (
    CLASSIFIER_METRICS_PATTERN,
    CLASSIFIER_SCORES,
    RUN_CONFIG_PATTERN,
    MetricRecord,
    expand_paths,
    load_classifier_metrics,
    load_metric_files,
    load_run_config,
    read_json_object,
)
from mmjsd.paper import load_paper_table
from mmjsd.registry import variant_label, variant_sort_key
from mmjsd.tables.aggregate import TableResult, build_tables, comparability, compact_value, protocol_items
from mmjsd.tables.cli import add_selection_arguments
from mmjsd.tables.compare import comparison_markdown
from mmjsd.tables.markup import markdown_escape, markdown_grid
from mmjsd.tables.render import to_markdown
from mmjsd.tables.specs import LIKELIHOOD_CAVEAT, NOT_COMPARABLE

DATA_SOURCES = ("download", "directory", "synthetic")

#: Settings shown per (dataset, variant): ``(key searched for in config.json, column header)``.
RUN_SETTINGS = (
    ("epochs", "epochs"),
    ("lr", "lr"),
    ("batch_size", "batch size"),
    ("beta", "beta"),
    ("shared_dim", "shared dim"),
    ("style_dim", "style dim"),
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
    """Markdown table of the variants of ``dataset``: seeds with results and their key settings.

    Settings that no config of the dataset records are left out.
    """
    dataset_configs = [c for c in configs if c["dataset"] == dataset]
    variants = sorted(
        {r.variant for r in records if r.dataset == dataset} | {c["variant"] for c in dataset_configs},
        key=variant_sort_key,
    )
    settings = [
        (key, header) for key, header in RUN_SETTINGS if any(find_setting(c, key) is not None for c in dataset_configs)
    ]
    rows = [["Variant", "seeds with configs", "seeds with metrics"] + [header for _, header in settings]]
    for variant in variants:
        run_configs = [c for c in dataset_configs if c["variant"] == variant]
        config_seeds = sorted({c["seed"] for c in run_configs})
        metric_seeds = sorted({r.seed for r in records if (r.dataset, r.variant) == (dataset, variant)})
        rows.append(
            [markdown_escape(variant_label(variant)), _seed_text(config_seeds), _seed_text(metric_seeds)]
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


def what_ran_section(datasets: Sequence[str], records: Sequence[MetricRecord], configs: Sequence[dict]) -> str:
    """``## What ran``: per dataset, the runs table and the evaluation protocols."""
    parts = ["## What ran"]
    for dataset in datasets:
        parts += [
            f"### {registry.dataset(dataset).title} (`{dataset}`)",
            runs_table(dataset, records, configs),
            "Evaluation protocol, from the metric files:\n\n" + "\n".join(protocol_lines(dataset, records)),
        ]
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- tables
def tables_section(results: Sequence[TableResult]) -> str:
    """``## Tables``: each paper table with the paper's value and ours − paper per cell, then our other tables."""
    parts = ["## Tables vs the paper"]
    parts += [
        comparison_markdown(result, load_paper_table(result.spec.paper_csv)).rstrip()
        if result.spec.compared
        else to_markdown(result).rstrip()
        for result in results
    ]
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
            "comparable with the paper's."
        )
    if data_source is None:
        return "**Data source not recorded** (run with `--data-source`); check that the real datasets were used."
    return f"Data: the official datasets (`data.source: {data_source}`)."


def prd_caveat(results: Sequence[TableResult]) -> str | None:
    """Which PRD features were used, and whether that allows comparing with the paper."""
    prd = [r for r in results if r.spec.paper_extractor is not None]
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
    "kept in the metric files' `extra` block where logged."
)


def caveats_section(
    data_source: str | None, datasets: Sequence[str], results: Sequence[TableResult], records: Sequence[MetricRecord]
) -> str:
    """``## Caveats``: what to keep in mind before comparing numbers (the data, the tables shown, each dataset's own)."""
    bullets = [data_caveat(data_source), prd_caveat(results)]
    if any(result.spec.comparison_caveat == LIKELIHOOD_CAVEAT for result in results):
        bullets.append(likelihood_caveat(records))
    coherence_datasets = {result.spec.dataset for result in results if "coherence" in result.spec.metrics}
    if coherence_datasets:
        bullets.append(classifier_mode_caveat(records))
    if any(registry.dataset(d).labels == "classes" for d in coherence_datasets):
        bullets.append(RANDOM_COHERENCE_CAVEAT)
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
    data_source: str | None,
    datasets: Sequence[str],
    seeds: Sequence[int] | None = None,
    figures: Sequence[Path] = (),
    out: Path = Path("summary.md"),
) -> str:
    """The whole summary page."""
    results = build_tables(records, datasets, seeds)
    intro = (
        "# mmJSD reproduction: summary\n\n"
        "Reproduction of Sutter, Daunhawer and Vogt, *Multimodal Generative Learning Utilizing "
        "Jensen-Shannon Divergence* (NeurIPS 2020), Tables 1-5, from "
        f"{len(records)} metric files, {len(configs)} run configs and {len(classifiers)} classifier metric files. "
        "Full tables (CSV, LaTeX, Markdown) and figures are under `results/tables/` and `results/figures/`."
    )
    sections = [
        intro,
        caveats_section(data_source, datasets, results, records),
        what_ran_section(datasets, records, configs),
        tables_section(results),
        classifiers_section(classifiers),
    ]
    if figures:
        sections.append(figures_section(figures, out))
    return "\n\n".join(sections) + "\n"


def data_source_from_file(path: Path) -> str:
    """The ``source`` recorded in a JSON file (for example a raw-data manifest)."""
    document = read_json_object(path)
    source = document.get("source")
    if source not in DATA_SOURCES:
        raise UserError(f"{path} must have a 'source' key with one of {', '.join(DATA_SOURCES)}, got {source!r}")
    return source


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments of ``python -m mmjsd.summary``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.summary",
        description="Write results/summary.md, the page to read first: caveats, what ran (datasets, variants, "
        "seeds, key settings from the runs' config.json and the metric files' protocols), Tables 1-5 with the "
        "paper's value and ours - paper per cell, and the classifiers' test scores.",
    )
    parser.add_argument("--out", required=True, type=Path, help="the Markdown file to write")
    parser.add_argument(
        "--run-configs", nargs="+", default=[], help="run config.json files, or directories searched for config.json"
    )
    parser.add_argument(
        "--classifier-metrics",
        nargs="+",
        default=[],
        help="classifier metrics.json files, or directories searched for metrics.json",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-source", choices=DATA_SOURCES, help="the config's data.source")
    source.add_argument(
        "--data-source-file", type=Path, help="a JSON file with a 'source' key (e.g. a raw-data manifest)"
    )
    parser.add_argument("--figures", nargs="+", type=Path, default=[], help="image files to link in a Figures section")
    add_selection_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Read every input and write the summary page."""
    args = parse_args(argv)
    records = load_metric_files(args.metrics)
    configs = [load_run_config(p) for p in expand_paths(args.run_configs, RUN_CONFIG_PATTERN)]
    classifier_files = expand_paths(args.classifier_metrics, CLASSIFIER_METRICS_PATTERN)
    classifiers = [load_classifier_metrics(p) for p in classifier_files]
    data_source = data_source_from_file(args.data_source_file) if args.data_source_file else args.data_source
    datasets = args.datasets or [d for d in registry.DATASETS.names() if any(r.dataset == d for r in records)]
    text = summary_markdown(records, configs, classifiers, data_source, datasets, args.seeds, args.figures, args.out)
    write_text(args.out, text)


if __name__ == "__main__":
    main_guard(main)
