"""The extension points: one registry each of objectives, metrics and datasets, and plugins that add to them.

Every objective, metric and dataset is declared once, as a frozen spec
(:class:`ObjectiveSpec`, :class:`MetricSpec`, :class:`DatasetSpec`), and everything else
reads the registries: config validation and the schema's allowed values
(:mod:`mmjsd.core.config`), the Snakefile's targets and inputs, the steps' choices, the
tables, figures and summary, and the tests. Adding one is a plugin: a module that calls
:func:`register_objective`, :func:`register_metric` or :func:`register_dataset` when it
is imported, named in the config key ``plugins`` (docs/extending.md). The built-ins are
declared the same way, in :mod:`mmjsd.specs`, and loaded first, so they keep the paper's
order (MVAE, MMVAE, mmJSD, MoPoE) and plugins come after.

This module and every declaring module stay free of torch: the Snakefile reads the specs
at parse time. The heavy parts (model classes, evaluators, networks, readers) are named
by ``"module:attribute"`` strings and imported only by the steps that run them
(:func:`load_object`); a spec's :attr:`~ObjectiveSpec.modules` are what the Snakefile
hashes into the code versions of the jobs that use it (:mod:`mmjsd.core.provenance`).

Plugins reach the steps through the environment: the Snakefile sets
:data:`PLUGINS_VARIABLE` (and ``PYTHONPATH``), which every job inherits, SLURM jobs
included, and every step loads them before it parses its arguments
(:func:`mmjsd.core.cli.main_guard`).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from mmjsd.core.errors import UserError
from mmjsd.core.provenance import module_source

#: Names of objectives, metrics and datasets: they become file names, wildcards and config keys.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: ``module.path:attribute`` references to torch-side implementations.
OBJECT_PATH_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: Suffix of the variant of an objective with modality-specific (style) subspaces.
MS_SUFFIX = "-ms"
#: The environment variable that carries the configured plugins to every step (comma-separated module names).
PLUGINS_VARIABLE = "MMJSD_PLUGINS"
#: The modules that declare the built-ins, loaded (in this order) before any plugin.
BUILTIN_MODULES = ("mmjsd.specs.datasets", "mmjsd.specs.objectives", "mmjsd.specs.metrics")
#: Per kind of spec, the function that imports one spec's implementation by name and checks it is complete (a model
#: class with every method, an evaluator that is a function). Named, not imported: they need torch.
IMPLEMENTATION_CHECKS = {"objective": "mmjsd.models:objective_model_class", "metric": "mmjsd.evaluation:load_evaluator"}
#: How a dataset's items are labelled: one class per item (digits: accuracy, cross-entropy) or
#: independent binary attributes (CelebA: average precision, binary cross-entropy).
LABEL_KINDS = ("classes", "attributes")


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective (a row family of every table): ``name`` and ``name-ms`` are its variants.

    ``model`` is the ``"module:Class"`` of its :class:`~mmjsd.models.base.MultimodalVAE`
    subclass. ``supports_ms`` says whether the ``-ms`` variant (modality-specific style
    subspaces) exists. ``settings`` is the dataclass of the objective's own
    hyper-parameters (config ``training.<dataset>.objectives.<name>``), or None when it has
    none. ``source`` is the module that registered it (set by the registry).
    """

    name: str
    label: str
    model: str
    description: str
    supports_ms: bool = True
    settings: type | None = None
    source: str = ""

    @property
    def modules(self) -> tuple[str, ...]:
        """Modules whose code a trained model of this objective runs."""
        return (object_module(self.model),)

    def variants(self) -> tuple[str, ...]:
        """``name`` and, when supported, ``name-ms``."""
        return (self.name,) + ((self.name + MS_SUFFIX,) if self.supports_ms else ())


def never(settings: Any) -> bool:
    """A metric need that never applies."""
    return False


@dataclass(frozen=True)
class ChanceQuery:
    """What the chance level of one value depends on (a metric's :attr:`MetricSpec.chance`).

    ``dataset`` is the spec of the dataset evaluated, ``key`` the value key (``random``,
    ``svhn->mnist``), ``departures`` the switches recorded behind the value (the formula of
    random coherence is one), and ``attribute_prevalence`` the mean prevalence of the
    attributes in the evaluated test rows, recorded by the evaluators of attribute datasets.
    """

    dataset: DatasetSpec
    key: str
    departures: Mapping[str, str]
    attribute_prevalence: float | None


def no_chance(query: ChanceQuery) -> float | None:
    """A metric without a chance level (likelihoods, PRD)."""
    return None


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``python -m mmjsd.evaluate --metric <name>`` writes ``metrics/<name>.json`` per run.

    ``evaluator`` is the ``"module:function"`` that turns
    :class:`~mmjsd.evaluation.runs.EvaluationInputs` into a
    :class:`~mmjsd.evaluation.runs.MetricResult`; ``settings`` the dataclass of its config
    block ``evaluation.<name>`` (None: no block). ``datasets`` limits it to those datasets
    (None: every dataset). What its jobs need beyond the run and the dataset file:
    ``coherence_classifiers`` (one per modality), ``feature_classifiers(settings)`` (the
    image classifiers whose penultimate layer gives features) and ``real_features`` (the
    cached real-image features of ``python -m mmjsd.prd_reference``).

    A metric that no paper table covers gets a table of its own per dataset, one column
    per value key in its metric files, titled ``label``, with ``precision`` decimals and
    the best mean in bold by ``higher_is_better``. ``chance`` gives the value a model that
    ignores its input would score (:class:`ChanceQuery` → number, or None where there is
    no such level); every table shows it in a row of its own. ``caption`` is a sentence that
    every table caption with this metric carries (e.g. its range).
    """

    name: str
    label: str
    evaluator: str
    description: str
    settings: type | None = None
    datasets: tuple[str, ...] | None = None
    coherence_classifiers: bool = False
    feature_classifiers: Callable[[Any], bool] = never
    real_features: bool = False
    higher_is_better: bool = True
    precision: int = 3
    chance: Callable[[ChanceQuery], float | None] = no_chance
    caption: str = ""
    source: str = ""

    @property
    def modules(self) -> tuple[str, ...]:
        """Modules whose code an evaluation of this metric runs (the evaluator's)."""
        return (object_module(self.evaluator),)

    def applies_to(self, dataset: str) -> bool:
        """Whether the metric can be computed on ``dataset``."""
        return self.datasets is None or dataset in self.datasets


@dataclass(frozen=True)
class FigureLayout:
    """Sizes (inches, points) of a dataset's sample-figure grids and the random-sample grid (rows, columns)."""

    cell_inches: float
    text_row_inches: float
    text_points: float
    text_wrap: int
    label_points: float
    label_wrap: int
    random_grid: tuple[int, int]


@dataclass(frozen=True)
class DatasetSpec:
    """One multimodal dataset: what the pipeline builds, trains on, classifies and draws.

    Declarations: ``title`` (tables, figures), ``modalities`` (canonical order of subsets,
    columns and keys), ``raw_sources`` (raw datasets of :mod:`mmjsd.acquire` it is built
    from, in that order), ``build_settings`` (dataclass of the config block
    ``data.<name>``), ``labels`` (one of :data:`LABEL_KINDS`), ``num_labels`` (the number
    of classes, or of attributes: chance levels derive from it),
    ``feature_modalities`` (image modalities with a feature classifier for PRD),
    ``sample_figures`` (figure kinds of :mod:`mmjsd.samples`: ``conditional_<m>``,
    ``<text modality>_to_<m>``, ``random``), ``figure_layout`` and ``caveats`` (summary
    bullets).

    Torch-side implementations, as ``"module:attribute"``: ``builder(raw_dirs, cfg,
    workers) -> BuiltDataset`` (HDF5 arrays from raw files), ``file_layout`` (its
    :class:`~mmjsd.data.hdf5.FileSpec`), ``split`` (the in-memory split class with
    ``load(path, split)``), ``networks(shared_dim, style_dims) -> (encoders, decoders)``,
    ``data_shapes`` (modality → one example's shape), ``likelihoods`` (modality → a
    :class:`~mmjsd.models.likelihoods.Likelihood` class), ``classifiers`` (modality → a
    function building its :class:`~mmjsd.classifiers.networks.Classifier`) and
    ``classifier_examples(modality, path, split) -> Examples`` (what each classifier trains on).
    """

    name: str
    title: str
    modalities: tuple[str, ...]
    raw_sources: tuple[str, ...]
    build_settings: type
    labels: str
    num_labels: int
    likelihoods: Mapping[str, str]
    classifiers: Mapping[str, str]
    feature_modalities: tuple[str, ...]
    sample_figures: tuple[str, ...]
    figure_layout: FigureLayout
    builder: str
    file_layout: str
    split: str
    networks: str
    data_shapes: str
    classifier_examples: str
    description: str
    caveats: tuple[str, ...] = ()
    source: str = ""

    @property
    def data_modules(self) -> tuple[str, ...]:
        """Modules that read the built file (split reader and file layout)."""
        return tuple(dict.fromkeys(object_module(path) for path in (self.split, self.file_layout)))

    @property
    def build_modules(self) -> tuple[str, ...]:
        """Modules whose code builds the dataset file."""
        return tuple(dict.fromkeys(object_module(path) for path in (self.builder, self.file_layout)))

    @property
    def model_modules(self) -> tuple[str, ...]:
        """Modules a model of this dataset runs: networks, shapes, likelihoods, and the data reader that feeds it."""
        paths = (self.networks, self.data_shapes, *self.likelihoods.values())
        return tuple(dict.fromkeys([*(object_module(path) for path in paths), *self.data_modules]))

    @property
    def classifier_modules(self) -> tuple[str, ...]:
        """Modules of its classifiers: the architectures and the examples they train on."""
        paths = (*self.classifiers.values(), self.classifier_examples)
        return tuple(dict.fromkeys([*(object_module(path) for path in paths), *self.data_modules]))


Spec = TypeVar("Spec", ObjectiveSpec, MetricSpec, DatasetSpec)


def object_module(path: str) -> str:
    """The module of a ``"module:attribute"`` path."""
    return path.partition(":")[0]


# ------------------------------------------------------------------------- registries
class Registry(Generic[Spec]):
    """Specs of one kind by name, in registration order (built-ins first)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._specs: dict[str, Spec] = {}

    def add(self, spec: Spec) -> Spec:
        if spec.name in self._specs:
            previous = self._specs[spec.name].source
            raise UserError(
                f"{self.kind} '{spec.name}' is already registered (by {previous}); {spec.source} registers it again. "
                f"Give the {self.kind} of {spec.source} another name"
            )
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> Spec:
        load_builtins()
        if name not in self._specs:
            raise UserError(
                f"unknown {self.kind} '{name}': use one of {', '.join(self._specs)} "
                "(a plugin adds more: config key 'plugins', docs/extending.md)"
            )
        return self._specs[name]

    def names(self) -> tuple[str, ...]:
        load_builtins()
        return tuple(self._specs)

    def __iter__(self) -> Iterator[Spec]:
        load_builtins()
        return iter(tuple(self._specs.values()))

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._specs


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")
METRICS: Registry[MetricSpec] = Registry("metric")
DATASETS: Registry[DatasetSpec] = Registry("dataset")

#: Modules whose registrations are done (built-ins and plugins), in load order.
_loaded: list[str] = []
#: The module being loaded, to which its registrations are attributed.
_loading: list[str] = []


def _registering_module() -> str:
    """The plugin being loaded, else the caller of ``register_*`` (a test or an interactive session)."""
    if _loading:
        return _loading[-1]
    return sys._getframe(2).f_globals.get("__name__", "<unknown>")  # 0: here, 1: register_*, 2: its caller


def _check_common(
    spec: Any, kind: str, texts: tuple[str, ...] = ("label", "description"), reserved: tuple[str, ...] = ()
) -> None:
    if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name) or spec.name in reserved:
        taken = f" and none of {', '.join(reserved)}" if reserved else ""
        raise UserError(
            f"{kind} name {spec.name!r} of {spec.source} is not allowed: use lower-case letters, digits and '_', "
            f"starting with a letter{taken} (it becomes file names and config keys)"
        )
    for key in texts:
        if not isinstance(getattr(spec, key), str) or not getattr(spec, key).strip():
            raise UserError(f"{kind} '{spec.name}' of {spec.source}: '{key}' must be a non-empty string")


def _check_paths(spec: Any, kind: str, *names: str) -> None:
    for name in names:
        value = getattr(spec, name)
        if not isinstance(value, str) or not OBJECT_PATH_PATTERN.match(value):
            raise UserError(
                f"{kind} '{spec.name}' of {spec.source}: '{name}' must be a "
                f"'module.path:attribute' string, got {value!r}"
            )


def _check_settings(spec: Any, kind: str, name: str, optional: bool = True) -> None:
    value = getattr(spec, name)
    if value is None and optional:
        return
    if not (isinstance(value, type) and dataclasses.is_dataclass(value)):
        raise UserError(
            f"{kind} '{spec.name}' of {spec.source}: '{name}' must be a dataclass{' or None' if optional else ''}"
        )


def register_objective(spec: ObjectiveSpec) -> ObjectiveSpec:
    """Add an objective; its variants become valid in the config and get a row in every table."""
    spec = dataclasses.replace(spec, source=spec.source or _registering_module())
    _check_common(spec, "objective")
    _check_paths(spec, "objective", "model")
    _check_settings(spec, "objective", "settings")
    load_builtins()
    return OBJECTIVES.add(spec)


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add a metric; ``evaluation.metrics.<dataset>`` may then list it, and it gets its own table."""
    from mmjsd.core.config import EVALUATION_KEYS  # the evaluation block's own keys sit beside the metrics' blocks

    spec = dataclasses.replace(spec, source=spec.source or _registering_module())
    _check_common(spec, "metric", reserved=EVALUATION_KEYS)
    _check_paths(spec, "metric", "evaluator")
    _check_settings(spec, "metric", "settings")
    if not callable(spec.feature_classifiers):
        raise UserError(
            f"metric '{spec.name}' of {spec.source}: 'feature_classifiers' must be a function of the settings"
        )
    if not callable(spec.chance):
        raise UserError(f"metric '{spec.name}' of {spec.source}: 'chance' must be a function of a ChanceQuery")
    if isinstance(spec.precision, bool) or not isinstance(spec.precision, int) or not 0 <= spec.precision <= 10:
        raise UserError(f"metric '{spec.name}' of {spec.source}: 'precision' must be an integer from 0 to 10")
    load_builtins()
    unknown = [d for d in spec.datasets or () if d not in DATASETS._specs]
    if unknown:
        raise UserError(f"metric '{spec.name}' of {spec.source} names unknown dataset(s) {', '.join(unknown)}")
    return METRICS.add(spec)


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; it may then be listed under ``datasets`` (docs/extending.md says what it must provide)."""
    from mmjsd.core.config import DATA_KEYS  # the data block's own keys sit beside the datasets' blocks

    spec = dataclasses.replace(spec, source=spec.source or _registering_module())
    _check_common(spec, "dataset", ("title", "description"), reserved=DATA_KEYS)
    _check_paths(spec, "dataset", "builder", "file_layout", "split", "networks", "data_shapes", "classifier_examples")
    _check_settings(spec, "dataset", "build_settings", optional=False)
    _check_dataset_declarations(spec)
    load_builtins()
    return DATASETS.add(spec)


def _check_dataset_declarations(spec: DatasetSpec) -> None:
    where = f"dataset '{spec.name}' of {spec.source}"
    modalities = spec.modalities
    if not modalities or len(set(modalities)) != len(modalities) or not all(NAME_PATTERN.match(m) for m in modalities):
        raise UserError(f"{where}: 'modalities' must be distinct lower-case names, got {modalities!r}")
    if spec.labels not in LABEL_KINDS:
        raise UserError(f"{where}: 'labels' must be one of {', '.join(LABEL_KINDS)}, got {spec.labels!r}")
    if isinstance(spec.num_labels, bool) or not isinstance(spec.num_labels, int) or spec.num_labels < 2:
        raise UserError(
            f"{where}: 'num_labels' (classes or attributes) must be an integer of at least 2, got {spec.num_labels!r}"
        )
    for key in ("likelihoods", "classifiers"):
        paths = getattr(spec, key)
        if set(paths) != set(modalities):
            raise UserError(f"{where}: '{key}' must name exactly the modalities {list(modalities)}")
        bad = [path for path in paths.values() if not isinstance(path, str) or not OBJECT_PATH_PATTERN.match(path)]
        if bad:
            raise UserError(
                f"{where}: '{key}' must map each modality to a 'module.path:attribute' string, got {bad[0]!r}"
            )
    if not set(spec.feature_modalities) <= set(modalities):
        raise UserError(f"{where}: 'feature_modalities' must be modalities of the dataset")
    for figure in spec.sample_figures:
        if not set(sample_figure_modalities(figure)) <= set(modalities):
            raise UserError(f"{where}: sample figure '{figure}' names a modality the dataset lacks")


def sample_figure_modalities(figure: str) -> tuple[str, ...]:
    """The modalities a sample-figure kind names: ``conditional_svhn`` → (svhn,), ``text_to_img`` → (text, img)."""
    if figure == "random":
        return ()
    if figure.startswith("conditional_"):
        return (figure.removeprefix("conditional_"),)
    if "_to_" in figure:
        return tuple(figure.split("_to_", 1))
    raise UserError(f"unknown sample figure kind '{figure}': use conditional_<m>, <text modality>_to_<m> or random")


# ------------------------------------------------------------------------------ lookups
def objective(name: str) -> ObjectiveSpec:
    """The spec of objective ``name`` (UserError listing the known ones otherwise)."""
    return OBJECTIVES.get(name)


def metric(name: str) -> MetricSpec:
    """The spec of metric ``name``."""
    return METRICS.get(name)


def dataset(name: str) -> DatasetSpec:
    """The spec of dataset ``name``."""
    return DATASETS.get(name)


def modalities(dataset_name: str) -> tuple[str, ...]:
    """The canonical modality order of a dataset."""
    return dataset(dataset_name).modalities


def parse_variant(variant: str) -> tuple[str, bool]:
    """Split a variant into (objective, modality-specific?): ``mmjsd-ms`` → (``mmjsd``, True)."""
    name = variant.removesuffix(MS_SUFFIX)
    modality_specific = name != variant
    if name not in OBJECTIVES or (modality_specific and not OBJECTIVES.get(name).supports_ms):
        raise UserError(f"unknown variant '{variant}': use one of {', '.join(variant_names())}")
    return name, modality_specific


def variant_names() -> tuple[str, ...]:
    """Every valid variant, objectives first, then their ``-ms`` variants."""
    plain = [spec.name for spec in OBJECTIVES]
    return tuple(plain + [spec.name + MS_SUFFIX for spec in OBJECTIVES if spec.supports_ms])


def variant_pattern() -> str:
    """The JSON-schema pattern of variant names (the schema file holds the built-ins' pattern)."""
    with_ms = [re.escape(spec.name) for spec in OBJECTIVES if spec.supports_ms]
    without = [re.escape(spec.name) for spec in OBJECTIVES if not spec.supports_ms]
    ms_part = f"({'|'.join(with_ms)})(-ms)?" if with_ms else ""
    if not without:
        return f"^{ms_part}$"
    return f"^({'|'.join(([ms_part] if ms_part else []) + without)})$"


def variant_label(variant: str) -> str:
    """The table row label of a variant: ``mmjsd-ms`` → ``mmJSD (MS)``, ``mopoe`` → ``MoPoE``."""
    name, modality_specific = parse_variant(variant)
    label = objective(name).label
    return f"{label} (MS)" if modality_specific else label


def variant_sort_key(variant: str) -> tuple[bool, int]:
    """Row order: every objective in registration order, then the same with ``-ms``."""
    name, modality_specific = parse_variant(variant)
    return modality_specific, OBJECTIVES.names().index(name)


# ------------------------------------------------------------------------------ plugins
def load_builtins() -> None:
    """Import the declarations of the built-in objectives, metrics and datasets (once)."""
    for module in BUILTIN_MODULES:
        if module not in _loaded and module not in _loading:
            _import_declarations(module)


def _import_declarations(module: str) -> None:
    _loading.append(module)
    try:
        importlib.import_module(module)
    finally:
        _loading.pop()
    _loaded.append(module)


def load_plugins(names: Sequence[str]) -> None:
    """Import each plugin module once; its ``register_*`` calls add to the registries.

    A plugin that cannot be imported, registers a taken name, or names an implementation
    that does not exist fails here, with the module and what is wrong.
    """
    load_builtins()
    for name in names:
        if name in _loaded:
            continue
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][\w.]*$", name):
            raise UserError(f"config key 'plugins': {name!r} is not a Python module name")
        before = {kind: set(registry.names()) for kind, registry in _kinds().items()}
        try:
            _import_declarations(name)
        except UserError as err:
            raise UserError(f"plugin {name}: {err}") from err
        except Exception as err:  # a plugin's own bug: report it with the plugin's name
            raise UserError(
                f"plugin {name} cannot be imported ({type(err).__name__}: {err}); check config key 'plugins' and that "
                "the module is on the Python path (config key 'plugin_paths')"
            ) from err
        added = [spec for kind, registry in _kinds().items() for spec in registry if spec.name not in before[kind]]
        if not added:
            raise UserError(
                f"plugin {name} registers nothing: call register_objective, register_metric or register_dataset"
            )
        for spec in added:
            check_implementation_paths(spec)


def plugins_from_environment() -> list[str]:
    """The plugin modules named in :data:`PLUGINS_VARIABLE` (set by the Snakefile for every job)."""
    return [name for name in os.environ.get(PLUGINS_VARIABLE, "").split(",") if name]


def declaring_modules() -> tuple[str, ...]:
    """Every module that declared specs: the built-in declarations, then the plugins."""
    load_builtins()
    return tuple(_loaded)


def _kinds() -> dict[str, Registry]:
    return {"objective": OBJECTIVES, "metric": METRICS, "dataset": DATASETS}


@contextlib.contextmanager
def restored_registries() -> Iterator[None]:
    """Undo every registration and plugin load made inside the block (tests that register specs in-process)."""
    load_builtins()
    saved = {kind: dict(registry._specs) for kind, registry in _kinds().items()}
    loaded, modules = list(_loaded), set(sys.modules)
    try:
        yield
    finally:
        for kind, registry in _kinds().items():
            registry._specs = saved[kind]
        packages = {name.split(".")[0] for name in _loaded if name not in loaded}
        for name in [n for n in sys.modules if n not in modules and n.split(".")[0] in packages]:
            del sys.modules[name]  # a later load imports (and registers) afresh, from wherever the path then points
        _loaded[:] = loaded


# ----------------------------------------------------------------- implementation paths
def _top_level_names(source: Path) -> set[str] | None:
    """Names a module defines at top level (None when it defines them dynamically: star imports, ``__getattr__``)."""
    tree = ast.parse(source.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return None if "__getattr__" in names else names


def implementation_paths(spec: Any) -> dict[str, str]:
    """Every ``module:attribute`` of ``spec`` by the field (and modality) that holds it."""
    paths = {}
    for name, value in vars(spec).items():
        if name in ("label", "description", "title", "source"):
            continue
        if isinstance(value, str) and OBJECT_PATH_PATTERN.match(value):
            paths[name] = value
        elif isinstance(value, Mapping):
            paths.update(
                {
                    f"{name}.{key}": path
                    for key, path in value.items()
                    if isinstance(path, str) and OBJECT_PATH_PATTERN.match(path)
                }
            )
    return paths


def check_implementation_paths(spec: Any) -> None:
    """Without importing anything: each ``module:attribute`` of ``spec`` names a module on the path that defines it."""
    kind = type(spec).__name__.removesuffix("Spec").lower()
    for name, value in implementation_paths(spec).items():
        module, _, attribute = value.partition(":")
        source = module_source(module)
        if source is None:
            raise UserError(
                f"{kind} '{spec.name}' of {spec.source}: '{name}' names module {module}, "
                "which is not on the Python path"
            )
        defined = _top_level_names(source)
        if defined is not None and attribute not in defined:
            raise UserError(
                f"{kind} '{spec.name}' of {spec.source}: '{name}': module {module} ({source}) defines no '{attribute}'"
            )


def check_plugin_implementations() -> None:
    """Import every implementation the loaded plugins name and check it, before any job runs.

    :func:`load_plugins` checks only that each ``module:attribute`` exists, without importing
    it; an implementation that fails to import or lacks a method would otherwise fail in the
    first job that uses it, after the jobs before it ran. The Snakefile calls this when the
    config names plugins; the built-ins are checked by the tests instead, so a run without
    plugins does not import torch to parse the workflow.
    """
    for kind, registry in _kinds().items():
        for spec in registry:
            if spec.source in BUILTIN_MODULES:
                continue
            where = f"{kind} '{spec.name}' of {spec.source}"
            for name, path in implementation_paths(spec).items():
                load_object(path, f"{where}: '{name}'")
            if kind in IMPLEMENTATION_CHECKS:
                load_object(IMPLEMENTATION_CHECKS[kind], f"checking {where}")(spec.name)


def load_object(path: str, what: str) -> Any:
    """Import ``"module:attribute"`` (a torch-side implementation); UserError naming ``what`` when it fails."""
    module, _, attribute = path.partition(":")
    try:
        loaded = importlib.import_module(module)
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"{what}: cannot import {module} ({type(err).__name__}: {err})") from err
    if not hasattr(loaded, attribute):
        raise UserError(f"{what}: module {module} has no attribute '{attribute}'")
    return getattr(loaded, attribute)


__all__ = [
    "DATASETS",
    "LABEL_KINDS",
    "METRICS",
    "OBJECTIVES",
    "PLUGINS_VARIABLE",
    "ChanceQuery",
    "DatasetSpec",
    "FigureLayout",
    "MetricSpec",
    "ObjectiveSpec",
    "dataset",
    "load_object",
    "load_plugins",
    "metric",
    "modalities",
    "objective",
    "parse_variant",
    "register_dataset",
    "register_metric",
    "register_objective",
    "variant_label",
    "variant_names",
    "variant_sort_key",
]
