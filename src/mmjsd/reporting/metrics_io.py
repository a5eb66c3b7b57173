"""Readers for the result files the report steps consume (see ``docs/file-formats.md``).

Per-run metric files, run ``config.json`` files, classifier ``metrics.json`` files and
``train_log.csv`` files are read here and nowhere else, so a malformed file always fails
the same way: a :class:`~mmjsd.core.errors.UserError` that names the file and what is wrong.
Only the standard library (and the torch-free registry) is imported, so the table and summary steps stay cheap.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmjsd.core import registry
from mmjsd.core.departures import BY_NAME, PROTOCOLS
from mmjsd.core.errors import UserError

#: Glob patterns (relative to a directory given on the command line) of each file kind.
METRIC_FILE_PATTERN = "metrics/*.json"
RUN_CONFIG_PATTERN = "config.json"
CLASSIFIER_METRICS_PATTERN = "metrics.json"
TRAIN_LOG_PATTERN = "train_log.csv"

#: Extractor name of the paper's PRD features (Inception-v3 pool3, 2048-d), written by the
#: evaluator and read by the tables: PRD numbers are compared with the paper only for these.
INCEPTION_EXTRACTOR = "inception_pool3_2048"

#: Test-score keys of classifier metrics files and their names: accuracy (MST) or mean AP (CelebA).
CLASSIFIER_SCORES = {"test_accuracy": "test accuracy", "test_mean_ap": "test mean AP"}

_SEED_DIR = re.compile(r"^seed(\d+)$")


@dataclass(frozen=True)
class MetricRecord:
    """One metric file of one run: the headline ``values``, how they were measured, and the side numbers the tables use.

    ``protocol_name`` is the run's protocol (``protocol.name``: corrected or reference-exact);
    ``protocol`` the rest of the ``protocol`` block (measurement settings and the departure
    switches). ``alternatives`` holds ``values`` with each evaluation switch flipped alone,
    ``attribute_prevalence`` the chance level of a mean AP (CelebA; ``extra``).
    """

    path: Path
    metric: str
    dataset: str
    variant: str
    seed: int
    values: dict[str, float | None]
    protocol: dict[str, Any]
    extractor_name: str | None
    protocol_name: str
    alternatives: dict[str, dict[str, float | None]]
    attribute_prevalence: float | None

    @property
    def run(self) -> tuple[str, str, int]:
        """The run the file belongs to: ``(dataset, variant, seed)``."""
        return self.dataset, self.variant, self.seed

    @property
    def departures(self) -> dict[str, str]:
        """The departure switches behind ``values`` (``protocol.departures``)."""
        return dict(self.protocol.get("departures", {}))


@dataclass(frozen=True)
class TrainLog:
    """The per-epoch training log of one run, as columns of floats."""

    path: Path
    dataset: str
    variant: str
    seed: int
    columns: dict[str, list[float]]


def expand_paths(paths: Iterable[str | Path], pattern: str) -> list[Path]:
    """Files named on the command line, with each directory replaced by its matches of ``pattern``.

    Directories are searched recursively (``dir/**/pattern``). The result is sorted and
    free of duplicates, so the order of the command line never changes an output.
    """
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(p for p in path.rglob(pattern) if p.is_file())
        elif path.is_file():
            found.add(path)
        else:
            raise UserError(f"{path} does not exist (expected a file or a directory to search for {pattern})")
    return sorted(found)


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse a JSON file whose top level must be an object."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from err
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); rerun the step that wrote it") from err
    if not isinstance(document, dict):
        raise UserError(f"{path} must hold a JSON object at the top level, got {type(document).__name__}")
    return document


def require_keys(document: dict[str, Any], keys: Iterable[str], path: Path) -> None:
    """Raise naming ``path`` when one of ``keys`` is absent from ``document``."""
    missing = [key for key in keys if key not in document]
    if missing:
        raise UserError(f"{path} lacks the key(s) {', '.join(missing)} (see docs/file-formats.md)")


def _number_or_none(value: Any, where: str, path: Path) -> float | None:
    """A finite number, or None for JSON null; anything else is a malformed file."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{path}: {where} must be a finite number or null, got {value!r}")
    return float(value)


def _check_run_identity(dataset: Any, variant: Any, seed: Any, path: Path) -> None:
    """Dataset, variant and seed must be ones the pipeline knows."""
    if dataset not in registry.DATASETS:
        raise UserError(f"{path}: unknown dataset {dataset!r} (known: {', '.join(registry.DATASETS.names())})")
    if not isinstance(variant, str):
        raise UserError(f"{path}: 'variant' must be a string, got {variant!r}")
    try:
        registry.parse_variant(variant)
    except UserError as err:
        raise UserError(f"{path}: {err}") from err
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"{path}: 'seed' must be an integer, got {seed!r}")


def protocol_from_document(document: dict[str, Any], path: Path) -> str:
    """The protocol a run config (``protocol``) or metric file
    (``protocol.name``) records, checked against its location.

    A file inside ``<protocol>/<dataset>/<variant>/seed<k>/`` (the results tree) must record
    the protocol its directory names, so a run copied into the other tree is caught.
    """
    recorded = (
        document["protocol"].get("name") if isinstance(document.get("protocol"), dict) else document.get("protocol")
    )
    if recorded not in PROTOCOLS:
        key = "protocol.name" if isinstance(document.get("protocol"), dict) else "protocol"
        raise UserError(
            f"{path}: '{key}' must be one of {', '.join(PROTOCOLS)}, got {recorded!r}; a file written before protocols "
            "existed must be recomputed (delete it and rerun snakemake)"
        )
    seed_dir = path.parent.parent if path.parent.name == "metrics" else path.parent
    tree = seed_dir.parents[2].name if _SEED_DIR.match(seed_dir.name) and len(seed_dir.parents) > 2 else None
    if tree in PROTOCOLS and tree != recorded:
        raise UserError(
            f"{path} records protocol '{recorded}' but lies in the '{tree}' results tree; "
            f"move it to the '{recorded}' tree or recompute it there"
        )
    return recorded


def _values(values: Any, where: str, path: Path) -> dict[str, float | None]:
    """A ``values``-like object: key -> finite number or null."""
    if not isinstance(values, dict):
        raise UserError(f"{path}: '{where}' must be an object of key -> number")
    return {str(k): _number_or_none(v, f"{where}[{k!r}]", path) for k, v in values.items()}


def load_metric_file(path: str | Path) -> MetricRecord:
    """Read and check one ``metrics/<metric>.json`` file."""
    path = Path(path)
    document = read_json_object(path)
    require_keys(document, ("metric", "dataset", "variant", "seed", "values", "protocol"), path)
    _check_run_identity(document["dataset"], document["variant"], document["seed"], path)
    if not isinstance(document["metric"], str):
        raise UserError(f"{path}: 'metric' must be a string, got {document['metric']!r}")
    protocol = document["protocol"]
    if not isinstance(protocol, dict):
        raise UserError(f"{path}: 'protocol' must be an object")
    name = protocol_from_document(document, path)
    extractor = document.get("extractor")
    if extractor is not None and not (isinstance(extractor, dict) and isinstance(extractor.get("name"), str)):
        raise UserError(f"{path}: 'extractor' must be an object with a string 'name'")
    alternatives = document.get("alternatives", {})
    if not isinstance(alternatives, dict) or not set(alternatives) <= set(BY_NAME):
        raise UserError(f"{path}: 'alternatives' must be an object of departure name -> values")
    extra = document.get("extra", {})
    prevalence = extra.get("attribute_prevalence") if isinstance(extra, dict) else None
    return MetricRecord(
        path=path,
        metric=document["metric"],
        dataset=document["dataset"],
        variant=document["variant"],
        seed=document["seed"],
        values=_values(document["values"], "values", path),
        protocol={key: value for key, value in protocol.items() if key != "name"},
        extractor_name=extractor["name"] if extractor else None,
        protocol_name=name,
        alternatives={d: _values(v, f"alternatives.{d}", path) for d, v in alternatives.items()},
        attribute_prevalence=_number_or_none(prevalence, "extra['attribute_prevalence']", path),
    )


def load_metric_files(paths: Iterable[str | Path]) -> list[MetricRecord]:
    """Read metric files (or directories of runs); none found, or two for the same run and metric, is an error."""
    paths = list(paths)
    records = [load_metric_file(p) for p in expand_paths(paths, METRIC_FILE_PATTERN)]
    if not records:
        raise UserError(f"no metric files found in {', '.join(str(p) for p in paths)}")
    seen: dict[tuple[str, str, str, str, int], Path] = {}
    for record in records:
        key = (record.protocol_name, record.metric, *record.run)
        if key in seen:
            raise UserError(
                f"{record.path} and {seen[key]} both hold '{record.metric}' for "
                f"{record.protocol_name}/{record.dataset}/{record.variant}/seed {record.seed}; pass only one"
            )
        seen[key] = record.path
    return records


def load_run_config(path: str | Path) -> dict[str, Any]:
    """Read a run's as-run ``config.json``; it must name its dataset, variant, seed and protocol."""
    path = Path(path)
    document = read_json_object(path)
    require_keys(document, ("dataset", "variant", "seed", "protocol"), path)
    _check_run_identity(document["dataset"], document["variant"], document["seed"], path)
    protocol_from_document(document, path)
    return document


def load_classifier_metrics(path: str | Path) -> dict[str, Any]:
    """Read a classifier ``metrics.json``: dataset, modality and a test score are required."""
    path = Path(path)
    document = read_json_object(path)
    require_keys(document, ("dataset", "modality"), path)
    if document["dataset"] not in registry.DATASETS:
        raise UserError(
            f"{path}: unknown dataset {document['dataset']!r} (known: {', '.join(registry.DATASETS.names())})"
        )
    scores = [key for key in CLASSIFIER_SCORES if key in document]
    if not scores:
        raise UserError(f"{path} has none of the score keys {', '.join(CLASSIFIER_SCORES)}")
    if _number_or_none(document[scores[0]], scores[0], path) is None:
        raise UserError(f"{path}: '{scores[0]}' is null")
    return document


def run_identity_from_path(path: Path) -> tuple[str, str, int]:
    """``(dataset, variant, seed)`` of a file inside
    ``<dataset>/<variant>/seed<k>/`` (``runs/<protocol>/`` above it)."""
    seed_dir, variant_dir, dataset_dir = path.parent, path.parent.parent, path.parent.parent.parent
    match = _SEED_DIR.match(seed_dir.name)
    if match is None:
        raise UserError(f"{path} is not inside a run directory <dataset>/<variant>/seed<k>/")
    seed = int(match.group(1))
    _check_run_identity(dataset_dir.name, variant_dir.name, seed, path)
    return dataset_dir.name, variant_dir.name, seed


def load_train_log(path: str | Path) -> TrainLog:
    """Read a ``train_log.csv``; it needs ``epoch`` and ``loss`` columns and at least one row."""
    path = Path(path)
    dataset, variant, seed = run_identity_from_path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"cannot read {path}: {err}") from err
    if not rows:
        raise UserError(f"{path} has no epochs logged")
    header = list(rows[0])
    for needed in ("epoch", "loss"):
        if needed not in header:
            raise UserError(f"{path} lacks the column '{needed}' (columns: {', '.join(header)})")
    try:
        columns = {name: [float(row[name]) for row in rows] for name in header}
    except (TypeError, ValueError) as err:
        raise UserError(f"{path} has a non-numeric or missing entry: {err}") from err
    return TrainLog(path=path, dataset=dataset, variant=variant, seed=seed, columns=columns)
