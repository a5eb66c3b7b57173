"""Typed configuration: dataclasses built from the schema-validated YAML.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks types and documents
every key; ``config.yaml`` holds every value (there are no defaults hidden in code); the
dataclasses below give the steps typed access. A test keeps the schema's properties and
the dataclass fields identical.

The allowed datasets, variants and metrics come from the registries
(:mod:`mmjsd.core.registry`): :func:`config_schema` writes them into the schema before
validating, so the plugins named under ``plugins`` (loaded first, from the Python path
and ``plugin_paths``) validate like the built-ins. The blocks keyed by a registered name
(``data.<dataset>``, ``evaluation.<metric>``, ``training.<dataset>.objectives.<objective>``)
are typed by that spec's settings dataclass.

Pipeline steps receive their slice of the config as one canonical JSON string (see
:func:`mmjsd.core.io.canonical_json`) and rebuild the dataclass with :func:`from_dict`, which
refuses unknown keys and wrong types with the dotted key path in the message.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mmjsd.core import departures as departure_registry
from mmjsd.core import registry
from mmjsd.core.errors import UserError

T = TypeVar("T")

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class SyntheticCounts:
    """Image counts per split for synthetic raw data when ``sizes`` is ``custom``."""

    mnist_train: int
    mnist_test: int
    svhn_train: int
    svhn_test: int
    celeba_train: int
    celeba_valid: int
    celeba_test: int


#: The real datasets' sizes, used by ``sizes: paper-scale``.
PAPER_SCALE_COUNTS = SyntheticCounts(
    mnist_train=60_000,
    mnist_test=10_000,
    svhn_train=73_257,
    svhn_test=26_032,
    celeba_train=162_770,
    celeba_valid=19_867,
    celeba_test=19_962,
)


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int
    sizes: str  # "paper-scale" or "custom"
    counts: SyntheticCounts

    def resolved_counts(self) -> SyntheticCounts:
        return PAPER_SCALE_COUNTS if self.sizes == "paper-scale" else self.counts


@dataclass(frozen=True)
class MSTBuildConfig:
    seed: int
    pairs_per_image: int
    max_per_class: int
    text_length: int


@dataclass(frozen=True)
class CelebABuildConfig:
    seed: int
    text_length: int
    train_partitions: list[int]
    test_partitions: list[int]


@dataclass(frozen=True)
class DataConfig:
    """``data``: where raw files come from, and each dataset's build settings
    (``builds[name]``, config ``data.<name>``)."""

    source: str  # download | directory | synthetic
    raw_dir: str
    synthetic: SyntheticConfig
    builds: dict[str, Any]  # dataset -> its DatasetSpec.build_settings


# ----------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """Resolved hyper-parameters of one (dataset, variant): defaults, then ``ms``, then the variant's own."""

    epochs: int
    lr: float
    batch_size: int
    beta: float
    beta_content: float
    shared_dim: int
    style_dim: dict[str, int]
    beta_style: float
    style_weights: dict[str, float]
    rec_weights: dict[str, float]
    div_weights: dict[str, float]
    redraw_text: bool
    log_every: int
    amp_bf16: bool
    compile: bool
    channels_last: bool
    grad_clip_norm: float | None
    #: The objective's own hyper-parameters (its ObjectiveSpec.settings as a dict; {} when it has none).
    objective: dict[str, Any]
    #: Values of the training departures that can act on this run (docs/departures.md), filled from the
    #: top-level ``departures`` block by :func:`resolve_train_config`, not from the ``training`` block.
    departures: dict[str, str]

    def __post_init__(self) -> None:
        departure_registry.check_switches(self.departures, "departures", stage=departure_registry.TRAINING)

    def reference(self, departure: str) -> bool:
        """Whether this run computes ``departure`` (a training departure) as the official code does.

        A departure that cannot act on the run is absent from ``departures``; its corrected
        and reference computations then coincide, so False is right for it.
        """
        if departure_registry.BY_NAME[departure].stage != departure_registry.TRAINING:
            raise KeyError(f"'{departure}' is not a training departure")
        return self.departures.get(departure) == departure_registry.REFERENCE


@dataclass(frozen=True)
class DatasetTraining:
    """Per-dataset training block.

    ``variants`` lists what is trained (a list, so a preset's list replaces the config's);
    ``ms`` and each entry of ``overrides`` are partial :class:`TrainConfig` overrides;
    ``objectives`` holds the settings of the objectives that have some (e.g. a plugin's).
    """

    variants: list[str]
    defaults: dict[str, Any]
    ms: dict[str, Any]
    overrides: dict[str, dict[str, Any] | None]
    objectives: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ClassifierConfig:
    """Resolved settings of one modality's classifiers (its coherence classifier and, for images, the feature copy)."""

    epochs: int
    lr: float
    batch_size: int
    seed: int
    feature_seed: int


@dataclass(frozen=True)
class DatasetClassifiers(ClassifierConfig):
    """``classifiers.<dataset>``: the settings of every classifier, and ``overrides`` of some per modality.

    An override is partial, e.g. ``{text: {epochs: 2}}``; each classifier job receives only its
    modality's resolved :class:`ClassifierConfig`, so an override reruns that modality's
    classifiers alone.
    """

    overrides: dict[str, dict[str, Any]]


# --------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class ProbeConfig:
    n_train: int
    draws: int
    max_iter: int


@dataclass(frozen=True)
class CoherenceConfig:
    n_test: int | None


@dataclass(frozen=True)
class PRDConfig:
    n_samples: int
    num_clusters: int
    num_angles: int
    num_runs: int
    kmeans_batch_size: int
    inception_weights: str | None


@dataclass(frozen=True)
class LikelihoodConfig:
    num_importance_samples: int
    n_test: int | None
    batch_size: int


@dataclass(frozen=True)
class EvaluationConfig:
    """``evaluation``: shared keys, the metrics per dataset, and each metric's block
    (``settings[name]``, config ``evaluation.<name>``)."""

    seed: int
    batch_size: int
    metrics: dict[str, list[str]]
    settings: dict[str, Any]  # metric -> its MetricSpec.settings (metrics without settings are absent)

    def job(self, metric: str, dataset: str, departures: dict[str, str]) -> MetricJob:
        """The slice of these settings and of the ``departures`` switches that ``metric`` on ``dataset`` depends on."""
        switches = departure_registry.metric_switches(departures, dataset, metric)
        return MetricJob(metric, self.seed, self.batch_size, self.settings.get(metric), switches)


@dataclass(frozen=True)
class MetricJob:
    """The evaluation settings one metric depends on: the shared keys and that metric's own block.

    Metric jobs receive only this slice (:func:`metric_job_params`), so changing one
    metric's settings reruns that metric's jobs and nothing else.
    """

    metric: str
    seed: int
    batch_size: int
    settings: Any  # the metric's block, e.g. PRDConfig
    departures: dict[str, str]  # the evaluation departures that act on this metric (docs/departures.md)


def metric_job_params(evaluation: dict, metric: str, dataset: str, departures: dict) -> dict:
    """The plain-dict slice of the ``evaluation`` block and the ``departures``
    switches that ``metric`` on ``dataset`` depends on.

    Only the evaluation departures that can change this metric on this dataset are included,
    so flipping any other switch reruns none of its jobs.
    """
    return {
        "metric": metric,
        "seed": evaluation["seed"],
        "batch_size": evaluation["batch_size"],
        "settings": evaluation.get(metric),
        "departures": departure_registry.metric_switches(departures, dataset, metric),
    }


def metric_job_from_dict(params: dict) -> MetricJob:
    """Strictly typed :class:`MetricJob` from :func:`metric_job_params` output (e.g. a CLI's JSON)."""
    metric = params.get("metric") if isinstance(params, dict) else None
    if metric not in registry.METRICS:
        raise UserError(
            f"metric params must name one of {', '.join(registry.METRICS.names())} under 'metric', got {metric!r}"
        )
    fields = {key: params.get(key) for key in ("seed", "batch_size")}
    unknown = sorted(set(params) - {"metric", "seed", "batch_size", "settings", "departures"})
    if unknown:
        raise UserError(f"unknown metric params key '{unknown[0]}'")
    if "departures" not in params:
        raise UserError("metric params lack 'departures' (see mmjsd.core.config.metric_job_params)")
    switches = departure_registry.check_switches(
        params["departures"], "departures", stage=departure_registry.EVALUATION
    )
    foreign = [name for name in switches if metric not in departure_registry.BY_NAME[name].metrics]
    if foreign:
        raise UserError(f"departure '{foreign[0]}' does not act on metric '{metric}'; see docs/departures.md")
    return MetricJob(
        metric=metric,
        seed=_convert(int, fields["seed"], "evaluation.seed"),
        batch_size=_convert(int, fields["batch_size"], "evaluation.batch_size"),
        settings=metric_settings(metric, params.get("settings")),
        departures=switches,
    )


def metric_settings(metric: str, block: Any) -> Any:
    """The typed settings of ``metric`` from its config block (None for a metric without settings)."""
    settings_type = registry.metric(metric).settings
    if settings_type is None:
        if block is not None:
            raise UserError(f"metric '{metric}' takes no settings; remove the config block 'evaluation.{metric}'")
        return None
    return from_dict(settings_type, block, f"evaluation.{metric}")


# ---------------------------------------------------------------------- resources
@dataclass(frozen=True)
class StageResources:
    """Host memory (MB) and wall time (minutes) of one job of a stage, on its first attempt."""

    mem_mb: int
    runtime: int


@dataclass(frozen=True)
class DatasetResources:
    """What the jobs of one dataset ask for: GPU sharing and each stage's memory and time."""

    jobs_per_gpu: int
    build_dataset: StageResources
    train_classifier: StageResources
    train: StageResources
    prd_reference: StageResources
    evaluate: StageResources
    samples: StageResources


# ------------------------------------------------------------------------- report
@dataclass(frozen=True)
class ReportConfig:
    """``report``: how the tables, figures and summary present the numbers.

    ``pipeline_checks`` lists datasets that run only to exercise the pipeline (the demo's
    CelebA, whose networks cannot learn in minutes on a CPU): their numbers are labelled as
    not being results and are never set beside the paper's.
    """

    pipeline_checks: list[str]


# ------------------------------------------------------------------------- top level
@dataclass(frozen=True)
class Config:
    plugins: list[str]
    plugin_paths: list[str]
    datasets: list[str]
    seeds: list[int]
    device: str
    data: DataConfig
    training: dict[str, DatasetTraining]
    classifiers: dict[str, DatasetClassifiers]
    evaluation: EvaluationConfig
    #: One value (corrected or reference) per departure of
    #: :mod:`mmjsd.core.departures`: the switch set of "corrected" runs.
    departures: dict[str, str]
    resources: dict[str, DatasetResources]
    #: The protocols that run (:data:`mmjsd.core.departures.PROTOCOLS`), each in its own results tree.
    protocols: list[str]
    report: ReportConfig

    def variants(self, dataset: str) -> list[str]:
        """Variants trained on ``dataset``, in config order."""
        return list(self.training[dataset].variants)

    def switches(self, protocol: str) -> dict[str, str]:
        """The departure switch set of ``protocol`` (:func:`mmjsd.core.departures.protocol_switches`)."""
        return departure_registry.protocol_switches(protocol, self.departures)

    def train_config(
        self, dataset: str, variant: str, protocol: str = departure_registry.CORRECTED_PROTOCOL
    ) -> TrainConfig:
        """The resolved hyper-parameters of (dataset, variant) under ``protocol``'s switches."""
        return resolve_train_config(self, dataset, variant, self.switches(protocol))

    def classifier_config(self, dataset: str, modality: str) -> ClassifierConfig:
        """The classifiers of ``modality`` on ``dataset``: the dataset's
        settings, then its override for ``modality``."""
        block = dataclasses.asdict(self.classifiers[dataset])
        override = block.pop("overrides").get(modality) or {}
        return from_dict(ClassifierConfig, {**block, **override}, f"classifiers.{dataset}.overrides.{modality}")


# ------------------------------------------------------------------ construction
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from plain data, strictly.

    Unknown keys, missing keys and wrong types raise :class:`UserError` naming the dotted
    key path (``training.mnist_svhn_text.defaults.lr``). Integers are accepted where a
    float is expected; booleans are never accepted as numbers.
    """
    return _convert(cls, data, path or cls.__name__)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"config key '{path}' must be a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp)]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise UserError(
                f"unknown config key '{path}.{unknown[0]}' (allowed here: {', '.join(names)}); "
                "check the spelling against workflow/schemas/config.schema.yaml"
            )
        missing = [n for n in names if n not in value]
        if missing:
            raise UserError(f"config key '{path}.{missing[0]}' is missing; add it (see config.yaml for the default)")
        return tp(**{n: _convert(hints[n], value[n], f"{path}.{n}") for n in names})
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"config key '{path}' must be a list, got {type(value).__name__}")
        (inner,) = typing.get_args(tp)
        return [_convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{path}' must be a mapping, got {type(value).__name__}")
        _, val_tp = typing.get_args(tp)  # keys are strings in YAML and JSON
        return {str(k): _convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(
                f"config key '{path}' must be a number, got {value!r}; note YAML reads 1e-3 as a string: write 1.0e-3"
            )
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config key '{path}' must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise UserError(f"config key '{path}' must be a {_type_name(tp)}, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; ``override`` wins, nested mappings merge (as Snakemake's --configfile)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_train_config(cfg: Config, dataset: str, variant: str, switches: dict[str, str]) -> TrainConfig:
    """Merge ``defaults`` ← ``ms`` (for ``-ms`` variants) ← ``overrides[variant]``, then type-check.

    Non-MS variants get style dimension 0 for every modality, whatever the defaults say.
    The objective's own settings come from ``objectives.<objective>``. ``departures`` holds the
    values of ``switches`` (a protocol's switch set) for the training departures that can act
    on this run (:func:`mmjsd.core.departures.training_switches`), so flipping any other switch
    leaves the run's configuration, and so the run, untouched.
    """
    block = cfg.training[dataset]
    if variant not in block.variants:
        raise UserError(f"variant '{variant}' is not listed under training.{dataset}.variants")
    objective, ms = registry.parse_variant(variant)
    modalities = registry.modalities(dataset)
    merged = deep_merge(block.defaults, block.ms) if ms else copy.deepcopy(block.defaults)
    merged = deep_merge(merged, block.overrides.get(variant) or {})
    if not ms:
        merged["style_dim"] = dict.fromkeys(modalities, 0)
    merged["objective"] = objective_settings(block, dataset, objective)
    merged["departures"] = departure_registry.training_switches(switches, dataset, objective, ms, merged)
    path = f"training.{dataset} ({variant})"
    train = from_dict(TrainConfig, merged, path)
    for key in ("style_dim", "style_weights", "rec_weights"):
        _check_modality_keys(getattr(train, key), modalities, f"{path}.{key}")
    _check_modality_keys(train.div_weights, ("prior",) + modalities, f"{path}.div_weights")
    return train


def objective_settings(block: DatasetTraining, dataset: str, objective: str) -> dict[str, Any]:
    """``training.<dataset>.objectives.<objective>``, type-checked by the
    objective's settings dataclass ({} without one)."""
    settings_type = registry.objective(objective).settings
    key = f"training.{dataset}.objectives.{objective}"
    if settings_type is None:
        if objective in block.objectives:
            raise UserError(f"objective '{objective}' takes no settings; remove the config block '{key}'")
        return {}
    if objective not in block.objectives:
        raise UserError(
            f"config key '{key}' is missing: objective '{objective}' needs its settings "
            f"({', '.join(f.name for f in dataclasses.fields(settings_type))}); see its plugin's documentation"
        )
    return dataclasses.asdict(from_dict(settings_type, block.objectives[objective], key))


def _check_modality_keys(mapping: dict, expected: tuple[str, ...], path: str) -> None:
    if set(mapping) != set(expected):
        raise UserError(f"config key '{path}' must have exactly the keys {list(expected)}, got {sorted(mapping)}")


def config_schema(schema_path: Path = SCHEMA_PATH) -> dict:
    """The schema file with the registered datasets, variants and metrics (plugins included) filled in.

    The file lists the built-ins (a test keeps it so); a plugin's blocks get a generic
    object schema here and are type-checked by its settings dataclass.
    """
    import yaml

    schema = yaml.safe_load(schema_path.read_text())
    defs, properties = schema["$defs"], schema["properties"]
    defs["variant_name"]["pattern"] = registry.variant_pattern()
    defs["metric_list"]["items"]["enum"] = list(registry.METRICS.names())
    defs["dataset_training"]["properties"]["objectives"]["propertyNames"]["enum"] = list(registry.OBJECTIVES.names())
    properties["datasets"]["items"]["enum"] = list(registry.DATASETS.names())
    properties["report"]["properties"]["pipeline_checks"]["items"]["enum"] = list(registry.DATASETS.names())
    for spec in registry.DATASETS:
        _add_block(properties["data"], spec.name, {"type": "object", "description": spec.description}, required=True)
        _add_block(properties["training"], spec.name, {"$ref": "#/$defs/dataset_training"})
        _add_block(properties["classifiers"], spec.name, {"$ref": "#/$defs/classifier"})
        _add_block(properties["resources"], spec.name, {"$ref": "#/$defs/dataset_resources"})
        _add_block(properties["evaluation"]["properties"]["metrics"], spec.name, {"$ref": "#/$defs/metric_list"})
    for spec in registry.METRICS:
        if spec.settings is not None:
            _add_block(
                properties["evaluation"], spec.name, {"type": "object", "description": spec.description}, required=True
            )
    return schema


def _add_block(node: dict, name: str, schema: dict, required: bool = False) -> None:
    """Allow (and optionally require) the key ``name`` under ``node``, unless the file already describes it."""
    node["properties"].setdefault(name, schema)
    if required and name not in node["required"]:
        node["required"].append(name)


def validate_dict(raw: dict, schema_path: Path = SCHEMA_PATH) -> None:
    """JSON-schema validation with a message that names the offending key."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(config_schema(schema_path))
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        raise UserError(f"config key '{key}': {err.message} (schema: {schema_path})")


def activate_plugins(raw: dict) -> None:
    """Put ``plugin_paths`` (relative to the working directory) on ``sys.path`` and load ``plugins``.

    Runs before schema validation, since the plugins decide what is valid.
    """
    for key in ("plugin_paths", "plugins"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise UserError(f"config key '{key}' must be a list of strings, got {value!r}")
    for path in plugin_search_paths(raw.get("plugin_paths", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    registry.load_plugins(raw.get("plugins", []))


def plugin_search_paths(paths: list[str]) -> list[str]:
    """``plugin_paths`` as absolute directories; a missing one is an error naming it."""
    resolved = []
    for path in paths:
        directory = Path(path).resolve()
        if not directory.is_dir():
            raise UserError(
                f"config key 'plugin_paths': {path} is not a directory (relative paths start at the working directory)"
            )
        resolved.append(str(directory))
    return resolved


#: Keys of ``data`` and ``evaluation`` that are not blocks of a registered dataset or metric.
DATA_KEYS = ("source", "raw_dir", "synthetic")
EVALUATION_KEYS = ("seed", "batch_size", "metrics")


def _split_blocks(block: dict, fixed: tuple[str, ...], name: str) -> dict:
    """``block`` with its registry-keyed entries moved under ``name`` (the typed dataclass layout)."""
    return {**{k: v for k, v in block.items() if k in fixed}, name: {k: v for k, v in block.items() if k not in fixed}}


def config_from_dict(raw: dict) -> Config:
    """Load the plugins, schema-validate, then build the typed :class:`Config`, checking cross-key rules."""
    activate_plugins(raw)
    validate_dict(raw)
    layout = {**raw, "data": _split_blocks(raw["data"], DATA_KEYS, "builds")}
    layout["evaluation"] = _split_blocks(raw["evaluation"], EVALUATION_KEYS, "settings")
    cfg = from_dict(Config, layout, "config")
    builds = {
        name: from_dict(registry.dataset(name).build_settings, block, f"data.{name}")
        for name, block in cfg.data.builds.items()
    }
    settings = {name: metric_settings(name, block) for name, block in cfg.evaluation.settings.items()}
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, builds=builds),
        evaluation=dataclasses.replace(cfg.evaluation, settings=settings),
    )
    departure_registry.check_switches(cfg.departures, "departures", complete=True)
    unknown = [p for p in cfg.protocols if p not in departure_registry.PROTOCOLS]
    if unknown:
        raise UserError(
            f"config key 'protocols': unknown protocol '{unknown[0]}' (use {', '.join(departure_registry.PROTOCOLS)})"
        )
    for dataset in cfg.datasets:
        if dataset not in cfg.evaluation.metrics:
            raise UserError(
                f"dataset '{dataset}' is listed in 'datasets' but has no 'evaluation.metrics.{dataset}' list"
            )
        unknown = sorted(set(cfg.classifiers[dataset].overrides) - set(registry.modalities(dataset)))
        if unknown:
            raise UserError(
                f"config key 'classifiers.{dataset}.overrides.{unknown[0]}' is not a modality of {dataset}; "
                f"use one of {', '.join(registry.modalities(dataset))}"
            )
        for modality in cfg.classifiers[dataset].overrides:
            cfg.classifier_config(dataset, modality)
        for key in ("training", "classifiers", "resources"):
            if dataset not in getattr(cfg, key):
                raise UserError(f"dataset '{dataset}' is listed in 'datasets' but has no '{key}.{dataset}' block")
        for metric in cfg.evaluation.metrics[dataset]:
            if not registry.metric(metric).applies_to(dataset):
                raise UserError(
                    f"config key 'evaluation.metrics.{dataset}': metric '{metric}' does not apply to {dataset}"
                )
        for variant in cfg.variants(dataset):
            for protocol in cfg.protocols:
                cfg.train_config(dataset, variant, protocol)
    return cfg


def load_config(*paths: str | Path) -> Config:
    """Load ``config.yaml`` and overlay presets in order (later files win), as Snakemake does."""
    import yaml

    merged: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise UserError(f"config file {path} is not valid YAML: {err}") from err
        merged = deep_merge(merged, loaded)
    return config_from_dict(merged)
