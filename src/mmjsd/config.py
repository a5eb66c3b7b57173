"""Typed configuration: dataclasses built from the schema-validated YAML.

The JSON schema (``workflow/schemas/config.schema.yaml``) checks types and documents
every key; ``config.yaml`` holds every value (there are no defaults hidden in code); the
dataclasses below give the steps typed access. A test keeps the schema's properties and
the dataclass fields identical.

Pipeline steps receive their slice of the config as one canonical JSON string (see
:func:`mmjsd.io.canonical_json`) and rebuild the dataclass with :func:`from_dict`, which
refuses unknown keys and wrong types with the dotted key path in the message.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar

from mmjsd import departures as departure_registry
from mmjsd.errors import UserError

T = TypeVar("T")

#: Modalities of each dataset, in the canonical order used for subsets and tables.
MODALITIES: dict[str, tuple[str, ...]] = {
    "mnist_svhn_text": ("mnist", "svhn", "text"),
    "celeba": ("img", "text"),
}

#: Objectives; a variant is an objective name, optionally with ``-ms`` (modality-specific subspaces).
OBJECTIVES: tuple[str, ...] = ("mvae", "mmvae", "mmjsd", "mopoe")

#: Raw datasets the acquisition step knows, and which built dataset needs them.
RAW_SOURCES: dict[str, tuple[str, ...]] = {
    "mnist_svhn_text": ("mnist", "svhn"),
    "celeba": ("celeba",),
}

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


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
    source: str  # download | directory | synthetic
    raw_dir: str
    synthetic: SyntheticConfig
    mnist_svhn_text: MSTBuildConfig
    celeba: CelebABuildConfig


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
    grad_clip_norm: Optional[float]
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
    ``ms`` and each entry of ``overrides`` are partial :class:`TrainConfig` overrides.
    """

    variants: list[str]
    defaults: dict[str, Any]
    ms: dict[str, Any]
    overrides: dict[str, Optional[dict[str, Any]]]


@dataclass(frozen=True)
class ClassifierConfig:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    feature_seed: int


# --------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class ProbeConfig:
    n_train: int
    draws: int
    max_iter: int


@dataclass(frozen=True)
class CoherenceConfig:
    n_test: Optional[int]


@dataclass(frozen=True)
class PRDConfig:
    n_samples: int
    num_clusters: int
    num_angles: int
    num_runs: int
    kmeans_batch_size: int
    inception_weights: Optional[str]


@dataclass(frozen=True)
class LikelihoodConfig:
    num_importance_samples: int
    n_test: Optional[int]
    batch_size: int


@dataclass(frozen=True)
class EvaluationConfig:
    seed: int
    batch_size: int
    metrics: dict[str, list[str]]
    latent_probe: ProbeConfig
    coherence: CoherenceConfig
    prd: PRDConfig
    likelihood: LikelihoodConfig

    def job(self, metric: str, dataset: str, departures: dict[str, str]) -> "MetricJob":
        """The slice of these settings and of the ``departures`` switches that ``metric`` on ``dataset`` depends on."""
        switches = departure_registry.metric_switches(departures, dataset, metric)
        return MetricJob(metric, self.seed, self.batch_size, getattr(self, metric), switches)


#: Each metric's settings block under ``evaluation``.
METRIC_SETTINGS: dict[str, type] = {
    "latent_probe": ProbeConfig,
    "coherence": CoherenceConfig,
    "prd": PRDConfig,
    "likelihood": LikelihoodConfig,
}


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
    """The plain-dict slice of the ``evaluation`` block and the ``departures`` switches that ``metric`` on ``dataset`` depends on.

    Only the evaluation departures that can change this metric on this dataset are included,
    so flipping any other switch reruns none of its jobs.
    """
    return {
        "metric": metric,
        "seed": evaluation["seed"],
        "batch_size": evaluation["batch_size"],
        "settings": evaluation[metric],
        "departures": departure_registry.metric_switches(departures, dataset, metric),
    }


def metric_job_from_dict(params: dict) -> MetricJob:
    """Strictly typed :class:`MetricJob` from :func:`metric_job_params` output (e.g. a CLI's JSON)."""
    metric = params.get("metric") if isinstance(params, dict) else None
    if metric not in METRIC_SETTINGS:
        raise UserError(f"metric params must name one of {', '.join(METRIC_SETTINGS)} under 'metric', got {metric!r}")
    fields = {key: params.get(key) for key in ("seed", "batch_size")}
    unknown = sorted(set(params) - {"metric", "seed", "batch_size", "settings", "departures"})
    if unknown:
        raise UserError(f"unknown metric params key '{unknown[0]}'")
    if "departures" not in params:
        raise UserError("metric params lack 'departures' (see mmjsd.config.metric_job_params)")
    switches = departure_registry.check_switches(params["departures"], "departures", stage=departure_registry.EVALUATION)
    foreign = [name for name in switches if metric not in departure_registry.BY_NAME[name].metrics]
    if foreign:
        raise UserError(f"departure '{foreign[0]}' does not act on metric '{metric}'; see docs/departures.md")
    return MetricJob(
        metric=metric,
        seed=_convert(int, fields["seed"], "evaluation.seed"),
        batch_size=_convert(int, fields["batch_size"], "evaluation.batch_size"),
        settings=from_dict(METRIC_SETTINGS[metric], params.get("settings"), f"evaluation.{metric}"),
        departures=switches,
    )


# ------------------------------------------------------------------------- top level
@dataclass(frozen=True)
class Config:
    datasets: list[str]
    seeds: list[int]
    device: str
    data: DataConfig
    training: dict[str, DatasetTraining]
    classifiers: dict[str, ClassifierConfig]
    evaluation: EvaluationConfig
    #: One value (corrected or reference) per departure of :mod:`mmjsd.departures`: the switch set of "corrected" runs.
    departures: dict[str, str]

    def variants(self, dataset: str) -> list[str]:
        """Variants trained on ``dataset``, in config order."""
        return list(self.training[dataset].variants)

    def train_config(self, dataset: str, variant: str) -> TrainConfig:
        return resolve_train_config(self, dataset, variant)


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
        key_tp, val_tp = typing.get_args(tp)
        return {str(k): _convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(
                f"config key '{path}' must be a number, got {value!r}; "
                "note YAML reads 1e-3 as a string: write 1.0e-3"
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


def parse_variant(variant: str) -> tuple[str, bool]:
    """Split a variant name into (objective, modality-specific?): ``mmjsd-ms`` → (``mmjsd``, True)."""
    objective, _, suffix = variant.partition("-")
    if objective not in OBJECTIVES or suffix not in ("", "ms"):
        raise UserError(
            f"unknown variant '{variant}': use one of {', '.join(OBJECTIVES)}, optionally with '-ms'"
        )
    return objective, suffix == "ms"


def resolve_train_config(cfg: Config, dataset: str, variant: str) -> TrainConfig:
    """Merge ``defaults`` ← ``ms`` (for ``-ms`` variants) ← ``overrides[variant]``, then type-check.

    Non-MS variants get style dimension 0 for every modality, whatever the defaults say.
    ``departures`` holds the values of the training departures that can act on this run
    (:func:`mmjsd.departures.training_switches`), so flipping any other switch leaves the
    run's configuration, and so the run, untouched.
    """
    block = cfg.training[dataset]
    if variant not in block.variants:
        raise UserError(f"variant '{variant}' is not listed under training.{dataset}.variants")
    objective, ms = parse_variant(variant)
    merged = deep_merge(block.defaults, block.ms) if ms else copy.deepcopy(block.defaults)
    merged = deep_merge(merged, block.overrides.get(variant) or {})
    if not ms:
        merged["style_dim"] = {m: 0 for m in MODALITIES[dataset]}
    merged["departures"] = departure_registry.training_switches(cfg.departures, dataset, objective, ms, merged)
    path = f"training.{dataset} ({variant})"
    train = from_dict(TrainConfig, merged, path)
    for key in ("style_dim", "style_weights", "rec_weights"):
        _check_modality_keys(getattr(train, key), MODALITIES[dataset], f"{path}.{key}")
    _check_modality_keys(train.div_weights, ("prior",) + MODALITIES[dataset], f"{path}.div_weights")
    return train


def _check_modality_keys(mapping: dict, expected: tuple[str, ...], path: str) -> None:
    if set(mapping) != set(expected):
        raise UserError(f"config key '{path}' must have exactly the keys {list(expected)}, got {sorted(mapping)}")


def validate_dict(raw: dict, schema_path: Path = SCHEMA_PATH) -> None:
    """JSON-schema validation with a message that names the offending key."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        raise UserError(f"config key '{key}': {err.message} (schema: {schema_path})")


def config_from_dict(raw: dict) -> Config:
    """Schema-validate then build the typed :class:`Config`, checking cross-key rules."""
    validate_dict(raw)
    cfg = from_dict(Config, raw, "config")
    departure_registry.check_switches(cfg.departures, "departures", complete=True)
    for dataset in cfg.datasets:
        if dataset not in cfg.evaluation.metrics:
            raise UserError(f"dataset '{dataset}' is listed in 'datasets' but has no 'evaluation.metrics.{dataset}' list")
        for key in ("training", "classifiers"):
            if dataset not in getattr(cfg, key):
                raise UserError(f"dataset '{dataset}' is listed in 'datasets' but has no '{key}.{dataset}' block")
        for variant in cfg.variants(dataset):
            resolve_train_config(cfg, dataset, variant)
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
