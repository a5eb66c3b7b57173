"""Config: schema and dataclasses agree, the shipped configs validate, bad keys get clear errors."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest
import yaml

from mmjsd.core import departures, registry
from mmjsd.core.config import (
    DATA_KEYS,
    EVALUATION_KEYS,
    SCHEMA_PATH,
    Config,
    TrainConfig,
    config_from_dict,
    deep_merge,
    load_config,
    metric_job_from_dict,
    metric_job_params,
)
from mmjsd.core.errors import UserError
from mmjsd.core.io import canonical_json
from mmjsd.core.registry import parse_variant

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "workflow" / "presets").glob("*.yaml"))


def raw_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        name = node["$ref"].split("/")[-1]
        node = {**schema["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _dataclass_of(tp):
    if dataclasses.is_dataclass(tp):
        return tp
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else None


#: Blocks whose keys past the fixed ones are registered names, each typed by that spec's dataclass.
REGISTRY_BLOCKS = {
    "config.data": ("builds", DATA_KEYS, lambda: {s.name: s.build_settings for s in registry.DATASETS}),
    "config.evaluation": ("settings", EVALUATION_KEYS, lambda: {s.name: s.settings for s in registry.METRICS}),
}


def _compare(schema: dict, node: dict, cls, path: str, mismatches: list[str]) -> None:
    node = _resolve(schema, node)
    props = node.get("properties", {})
    fields = typing.get_type_hints(cls)
    typed = {name: _dataclass_of(tp) for name, tp in fields.items()}
    if path in REGISTRY_BLOCKS:
        field, fixed, specs = REGISTRY_BLOCKS[path]
        fields = {name: tp for name, tp in fields.items() if name != field}
        typed = {name: typed[name] for name in fixed} | specs()
        expected = set(fixed) | set(specs())
    else:
        expected = set(fields)
    if set(props) != expected:
        mismatches.append(f"{path}: schema {sorted(props)} vs dataclass {sorted(expected)}")
    for name, sub in props.items():
        if "description" not in _resolve(schema, sub) and "$ref" not in sub:
            mismatches.append(f"{path}.{name}: no description")
        inner = typed.get(name)
        if inner is not None:
            _compare(schema, sub, inner, f"{path}.{name}", mismatches)


def test_schema_properties_match_dataclass_fields():
    """Every key documented and typed: the fixed ones by the config
    dataclasses, registry-keyed blocks by their specs."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    mismatches: list[str] = []
    _compare(schema, schema, Config, "config", mismatches)
    # ``objective`` is resolved from training.<dataset>.objectives.<objective>, and ``departures`` from the
    # top-level 'departures' block (compared above), neither is given under defaults
    resolved = {name for name in typing.get_type_hints(TrainConfig) if name not in ("objective", "departures")}
    assert set(schema["$defs"]["train_full"]["properties"]) == resolved
    assert mismatches == []


def test_schema_file_lists_exactly_the_builtins():
    """The file documents the built-ins; config_schema adds plugins. Both
    derive from the registry, so they cannot drift."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    defs, properties = schema["$defs"], schema["properties"]
    datasets, metrics = list(registry.DATASETS.names()), list(registry.METRICS.names())
    assert defs["variant_name"]["pattern"] == registry.variant_pattern()
    assert defs["metric_list"]["items"]["enum"] == metrics
    assert defs["dataset_training"]["properties"]["objectives"]["propertyNames"]["enum"] == list(
        registry.OBJECTIVES.names()
    )
    assert properties["datasets"]["items"]["enum"] == datasets
    for block in ("training", "classifiers"):
        assert list(properties[block]["properties"]) == datasets
    assert list(properties["evaluation"]["properties"]["metrics"]["properties"]) == datasets
    assert [k for k in properties["data"]["properties"] if k not in DATA_KEYS] == datasets
    assert [k for k in properties["evaluation"]["properties"] if k not in EVALUATION_KEYS] == metrics
    assert properties["evaluation"]["required"] == list(EVALUATION_KEYS) + metrics


@pytest.mark.parametrize("preset", [None, *PRESETS], ids=lambda p: "config.yaml" if p is None else p.name)
def test_shipped_configs_validate(preset):
    paths = [ROOT / "config.yaml"] + ([preset] if preset else [])
    cfg = load_config(*paths)
    for dataset in cfg.datasets:
        for variant in cfg.variants(dataset):
            cfg.train_config(dataset, variant)


def test_paper_config_values():
    cfg = load_config(ROOT / "config.yaml")
    mst = cfg.train_config("mnist_svhn_text", "mmjsd")
    assert mst.lr == 5.0e-4 and mst.epochs == 100 and mst.batch_size == 256 and mst.beta == 2.5
    assert mst.rec_weights == {"mnist": 3072 / 784, "svhn": 1.0, "text": 384.0}
    assert mst.style_dim == {"mnist": 0, "svhn": 0, "text": 0} and mst.shared_dim == 20
    assert mst.grad_clip_norm is None  # the reference optimiser
    ms = cfg.train_config("mnist_svhn_text", "mmjsd-ms")
    assert ms.shared_dim == 16 and ms.style_dim == {"mnist": 4, "svhn": 4, "text": 4}
    # CelebA: mmjsd's job_celeba.sh for every variant (docs/reference-code.md §4), MoPoE included.
    for variant in ("mvae-ms", "mmvae-ms", "mmjsd-ms", "mopoe-ms"):
        celeba = cfg.train_config("celeba", variant)
        assert celeba.lr == 5.0e-4 and celeba.epochs == 250 and celeba.batch_size == 256 and celeba.beta == 2.5
        assert celeba.shared_dim == 32 and celeba.style_dim == {"img": 32, "text": 32}
        assert celeba.beta_style == 2.0 and celeba.style_weights == {"img": 1.0, "text": 5.0}
        assert celeba.rec_weights == {"img": 1.0, "text": 64 * 64 / 256}
        assert celeba.div_weights == {"prior": 0.3, "img": 0.35, "text": 0.35}
        assert celeba.grad_clip_norm == 100.0  # our one departure: README, Known numerical risk


def test_variant_override_applies_to_that_variant_only():
    raw = raw_config()
    raw["training"]["mnist_svhn_text"]["overrides"]["mopoe"] = {"lr": 1.0e-3, "epochs": 200}
    cfg = config_from_dict(raw)
    assert cfg.train_config("mnist_svhn_text", "mopoe").lr == 1.0e-3
    assert cfg.train_config("mnist_svhn_text", "mopoe").epochs == 200
    assert cfg.train_config("mnist_svhn_text", "mmjsd").lr == 5.0e-4


def test_yaml_float_without_dot_is_caught(tmp_path):
    text = (ROOT / "config.yaml").read_text().replace("lr: 5.0e-4", "lr: 1e-3", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"training\.mnist_svhn_text\.defaults\.lr.*'1e-3' is not of type 'number'"):
        load_config(path)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["data"].update(sorce="synthetic"), "data"),
        (
            lambda c: c["training"]["mnist_svhn_text"]["variants"].append("mmjsdd"),
            "training.mnist_svhn_text.variants.8",
        ),
        (
            lambda c: c["training"]["celeba"]["overrides"].update({"mvae-ms": {"laten_dim": 4}}),
            "training.celeba.overrides.mvae-ms",
        ),
        (lambda c: c["evaluation"]["prd"].update(num_angles=2), "evaluation.prd.num_angles"),
        (lambda c: c.update(seeds=[0, 0]), "seeds"),
    ],
    ids=["typo-top", "unknown-variant", "typo-hparam", "out-of-range", "duplicate-seed"],
)
def test_schema_errors_name_the_key(edit, key):
    raw = raw_config()
    edit(raw)
    with pytest.raises(UserError, match=f"config key '{key}'"):
        config_from_dict(raw)


def test_modality_keys_are_checked():
    raw = raw_config()
    raw["training"]["mnist_svhn_text"]["defaults"]["rec_weights"] = {"mnist": 1.0, "svhn": 1.0}
    with pytest.raises(UserError, match=r"rec_weights' must have exactly the keys \['mnist', 'svhn', 'text'\]"):
        config_from_dict(raw)


def test_from_dict_refuses_unknown_and_wrong_types():
    from mmjsd.core.config import MSTBuildConfig, from_dict

    good = {"seed": 0, "pairs_per_image": 20, "max_per_class": 10000, "text_length": 8}
    assert from_dict(MSTBuildConfig, good).pairs_per_image == 20
    with pytest.raises(UserError, match=re.escape("unknown config key 'data.mst.pairs'")):
        from_dict(MSTBuildConfig, {**good, "pairs": 3}, "data.mst")
    with pytest.raises(UserError, match="must be an integer"):
        from_dict(MSTBuildConfig, {**good, "seed": True})


def test_deep_merge_and_variant_names():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    assert parse_variant("mopoe-ms") == ("mopoe", True)
    assert parse_variant("mvae") == ("mvae", False)
    with pytest.raises(UserError):
        parse_variant("mmjsd-style")


def test_objective_settings_are_refused_for_objectives_without_settings():
    raw = raw_config()
    raw["training"]["mnist_svhn_text"]["objectives"] = {"mmjsd": {"alpha": 0.5}}
    with pytest.raises(
        UserError,
        match=re.escape(
            "objective 'mmjsd' takes no settings; remove the config block 'training.mnist_svhn_text.objectives.mmjsd'"
        ),
    ):
        config_from_dict(raw)


def test_unknown_plugin_fails_at_config_time_naming_it():
    raw = raw_config()
    raw["plugins"] = ["no_such_plugin_module"]
    with pytest.raises(
        UserError, match=r"plugin no_such_plugin_module cannot be imported.*No module named 'no_such_plugin_module'"
    ):
        config_from_dict(raw)


# ------------------------------------------------------------------ departures (docs/departures.md)
def test_every_departure_is_in_the_schema_and_config_with_a_description():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["departures"]
    assert set(schema["properties"]) == set(schema["required"]) == set(departures.BY_NAME)
    assert all(
        len(_resolve(yaml.safe_load(SCHEMA_PATH.read_text()), p).get("description", "")) > 40
        for p in schema["properties"].values()
    )
    assert raw_config()["departures"] == departures.corrected()  # the shipped runs are the corrected ones
    assert set(departures.reference_exact().values()) == {"reference"} and set(departures.reference_exact()) == set(
        departures.BY_NAME
    )


def test_every_departure_key_is_required():
    for name in departures.BY_NAME:
        raw = raw_config()
        del raw["departures"][name]
        with pytest.raises(UserError, match=f"'{name}' is a required property"):
            config_from_dict(raw)


@pytest.mark.parametrize("bad", ["official", "Reference", True, None])
def test_a_bad_departure_value_names_the_key_and_the_allowed_values(bad):
    raw = raw_config()
    raw["departures"]["probe_protocol"] = bad
    with pytest.raises(UserError, match=r"config key 'departures\.probe_protocol'.*\['corrected', 'reference'\]"):
        config_from_dict(raw)
    # the same check, without the schema, where switches arrive as JSON (a job's hyper-parameters or metric params)
    with pytest.raises(UserError, match=r"departures\.probe_protocol' must be one of corrected, reference"):
        departures.check_switches({"probe_protocol": bad}, "departures")


def test_job_parameters_refuse_foreign_departures():
    cfg = load_config(ROOT / "config.yaml")
    hparams = dataclasses.asdict(cfg.train_config("mnist_svhn_text", "mmjsd"))
    with pytest.raises(UserError, match=r"unknown departure 'departures\.probe_protocol'"):
        from_dict_train({**hparams, "departures": {"probe_protocol": "reference"}})
    with pytest.raises(UserError, match=re.escape("'departures.text_likelihood' must be one of corrected, reference")):
        from_dict_train({**hparams, "departures": {"text_likelihood": "yes"}})
    params = metric_job_params(raw_config()["evaluation"], "coherence", "mnist_svhn_text", departures.corrected())
    with pytest.raises(UserError, match="'probe_protocol' does not act on metric 'coherence'"):
        metric_job_from_dict({**params, "departures": {**params["departures"], "probe_protocol": "corrected"}})
    with pytest.raises(UserError, match="lack 'departures'"):
        metric_job_from_dict({k: v for k, v in params.items() if k != "departures"})


def from_dict_train(hparams: dict) -> TrainConfig:
    from mmjsd.core.config import from_dict

    return from_dict(TrainConfig, hparams, "training.mnist_svhn_text (mmjsd)")


#: Where flipping each departure can move a number in the paper configuration, written out by hand from
#: docs/departures.md: the training runs (dataset, variant) it changes, and the metric jobs (dataset, metric).
ALL_RUNS = {("mnist_svhn_text", f"{o}{s}") for o in ("mvae", "mmvae", "mmjsd", "mopoe") for s in ("", "-ms")} | {
    ("celeba", f"{o}-ms") for o in ("mvae", "mmvae", "mmjsd", "mopoe")
}
EXPECTED_RUNS = {
    "text_likelihood": ALL_RUNS,
    "mvae_unimodal_kl": {("mnist_svhn_text", "mvae"), ("mnist_svhn_text", "mvae-ms"), ("celeba", "mvae-ms")},
    "mvae_unimodal_style_noise": {("mnist_svhn_text", "mvae-ms"), ("celeba", "mvae-ms")},
    "dynamic_prior_epsilon": {("mnist_svhn_text", "mmjsd"), ("mnist_svhn_text", "mmjsd-ms"), ("celeba", "mmjsd-ms")},
    "celeba_mvae_rec_weights": {("celeba", "mvae-ms")},
    "gradient_clipping": {run for run in ALL_RUNS if run[0] == "celeba"},  # MST has no grad_clip_norm
}
EXPECTED_METRIC_JOBS = {
    "probe_protocol": {("mnist_svhn_text", "latent_probe"), ("celeba", "latent_probe")},
    "classifier_mode": {("mnist_svhn_text", "coherence"), ("celeba", "coherence")},
    "generated_image_range": {("mnist_svhn_text", "coherence"), ("celeba", "coherence")},
    "random_coherence_formula": {("mnist_svhn_text", "coherence")},
    "per_batch_average_precision": {("celeba", "latent_probe"), ("celeba", "coherence")},
    "importance_sampling_grouping": {("mnist_svhn_text", "likelihood"), ("celeba", "likelihood")},
    "mixture_proposal_density": {("mnist_svhn_text", "likelihood"), ("celeba", "likelihood")},
}


@pytest.mark.parametrize("name", list(departures.BY_NAME))
def test_a_switch_changes_only_the_runs_and_metric_jobs_it_can_act_on(name):
    """Flipping one switch changes a run's TrainConfig JSON (so retrains it) or a metric job's params (so reruns it)
    exactly where the departure can move a number, and nowhere else."""
    raw = raw_config()
    flipped = deep_merge(raw, {"departures": {name: "reference"}})
    before, after = config_from_dict(raw), config_from_dict(flipped)
    changed_runs = {
        (dataset, variant)
        for dataset, variant in ALL_RUNS
        if canonical_json(dataclasses.asdict(before.train_config(dataset, variant)))
        != canonical_json(dataclasses.asdict(after.train_config(dataset, variant)))
    }
    assert changed_runs == EXPECTED_RUNS.get(name, set())
    changed_jobs = {
        (dataset, metric)
        for dataset in ("mnist_svhn_text", "celeba")
        for metric in ("latent_probe", "coherence", "prd", "likelihood")
        if metric_job_params(raw["evaluation"], metric, dataset, raw["departures"])
        != metric_job_params(flipped["evaluation"], metric, dataset, flipped["departures"])
    }
    assert changed_jobs == EXPECTED_METRIC_JOBS.get(name, set())
    assert (name in EXPECTED_RUNS) != (name in EXPECTED_METRIC_JOBS)  # every departure is one or the other


def test_train_config_reference_reads_only_its_own_training_departures():
    cfg = config_from_dict(deep_merge(raw_config(), {"departures": departures.reference_exact()}))
    mvae = cfg.train_config("celeba", "mvae-ms")
    assert mvae.reference("celeba_mvae_rec_weights") and mvae.reference("gradient_clipping")
    assert not cfg.train_config("mnist_svhn_text", "mmvae").reference("dynamic_prior_epsilon")  # cannot act there
    with pytest.raises(KeyError, match="not a training departure"):
        mvae.reference("probe_protocol")


# ------------------------------------------------------------------- protocols (docs/departures.md)
def test_schema_protocols_are_the_ones_the_code_knows():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]
    assert schema["protocols"]["items"]["enum"] == list(departures.PROTOCOLS)
    assert raw_config()["protocols"] == ["corrected"]


@pytest.mark.parametrize("base", [None, "ci.yaml", "demo.yaml"])
def test_the_reference_exact_overlay_adds_the_reference_exact_protocol(base):
    paths = [ROOT / "config.yaml"] + ([ROOT / "workflow/presets" / base] if base else [])
    cfg = load_config(*paths, ROOT / "workflow/presets/reference-exact.yaml")
    assert cfg.protocols == ["corrected", "reference-exact"]
    assert cfg.departures == load_config(*paths).departures  # the corrected runs keep their switches


def test_reference_exact_runs_use_every_switch_at_reference_whatever_the_departures_block_says():
    raw = deep_merge(raw_config(), {"protocols": ["corrected", "reference-exact"]})
    flipped = deep_merge(raw, {"departures": {"dynamic_prior_epsilon": "reference", "text_likelihood": "reference"}})
    before, after = config_from_dict(raw), config_from_dict(flipped)
    for dataset, variant in sorted(ALL_RUNS):
        exact = after.train_config(dataset, variant, "reference-exact")
        assert exact == before.train_config(dataset, variant, "reference-exact")
        assert set(exact.departures.values()) == {"reference"}
        assert set(exact.departures) == set(before.train_config(dataset, variant).departures)
    assert after.train_config("mnist_svhn_text", "mmjsd").departures == {
        "text_likelihood": "reference",
        "dynamic_prior_epsilon": "reference",
    }
    assert after.switches("reference-exact") == departures.reference_exact()
    assert after.switches("corrected") == flipped["departures"]
    assert departures.comparison_protocol(["corrected"]) == "corrected"
    assert departures.comparison_protocol(["reference-exact", "corrected"]) == "reference-exact"


def test_an_unknown_protocol_or_pipeline_check_names_the_key():
    with pytest.raises(
        UserError, match=r"config key 'protocols\.0'.*'exact' is not one of \['corrected', 'reference-exact'\]"
    ):
        config_from_dict({**raw_config(), "protocols": ["exact"]})
    with pytest.raises(UserError, match=r"config key 'report\.pipeline_checks\.0'.*'mnist' is not one of"):
        config_from_dict({**raw_config(), "report": {"pipeline_checks": ["mnist"]}})
    with pytest.raises(UserError, match="unknown protocol 'exact'"):
        departures.protocol_switches("exact", departures.corrected())


def test_docs_list_exactly_the_registry_departures():
    """docs/departures.md: one row per switch in its table, with every column
    filled, and no switch that does not exist."""
    text = (ROOT / "docs" / "departures.md").read_text()
    table = text.split("## The switches", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    names = [row.split("|")[1].strip().strip("`") for row in rows]
    assert sorted(names) == sorted(departures.BY_NAME) and len(names) == len(set(names))
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").replace("\\|", "¦").split("|")]
        assert len(cells) == 6 and all(cells), row[:60]


def test_resources_block_matches_its_dataclass_and_the_gpu_slots():
    """resources.<dataset>: the schema's keys are DatasetResources' fields, jobs_per_gpu takes exactly the values a
    GPU's slot units divide into, and a configured dataset without a resources block is refused by name."""
    from mmjsd.core.config import DatasetResources, StageResources
    from mmjsd.gpu_slots import JOBS_PER_GPU_CHOICES

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    mismatches: list[str] = []
    _compare(schema, schema["$defs"]["dataset_resources"], DatasetResources, "resources.*", mismatches)
    _compare(schema, schema["$defs"]["stage_resources"], StageResources, "resources.*.*", mismatches)
    assert mismatches == []
    assert schema["$defs"]["dataset_resources"]["properties"]["jobs_per_gpu"]["enum"] == list(JOBS_PER_GPU_CHOICES)

    cfg = load_config(ROOT / "config.yaml")
    assert cfg.resources["mnist_svhn_text"].jobs_per_gpu == 4 and cfg.resources["celeba"].jobs_per_gpu == 1
    assert cfg.resources["celeba"].train == StageResources(mem_mb=24000, runtime=720)
    raw = raw_config()
    del raw["resources"]["celeba"]
    with pytest.raises(UserError, match=re.escape("has no 'resources.celeba' block")):
        config_from_dict(raw)
    raw = raw_config()
    raw["resources"]["mnist_svhn_text"]["jobs_per_gpu"] = 5
    with pytest.raises(UserError, match=re.escape("config key 'resources.mnist_svhn_text.jobs_per_gpu'")):
        config_from_dict(raw)


def test_classifier_overrides_apply_to_their_modality_only():
    raw = raw_config()
    raw["classifiers"]["mnist_svhn_text"]["overrides"] = {"text": {"epochs": 2, "lr": 5.0e-4}}
    cfg = config_from_dict(raw)
    text, mnist = cfg.classifier_config("mnist_svhn_text", "text"), cfg.classifier_config("mnist_svhn_text", "mnist")
    assert (text.epochs, text.lr, text.batch_size) == (2, 5.0e-4, 256)
    assert dataclasses.asdict(mnist) == {
        k: v for k, v in raw["classifiers"]["mnist_svhn_text"].items() if k != "overrides"
    }
    raw["classifiers"]["mnist_svhn_text"]["overrides"] = {"img": {"epochs": 2}}
    with pytest.raises(
        UserError, match=re.escape("'classifiers.mnist_svhn_text.overrides.img' is not a modality of mnist_svhn_text")
    ):
        config_from_dict(raw)
    raw["classifiers"]["mnist_svhn_text"]["overrides"] = {"text": {"epoch": 2}}
    with pytest.raises(UserError, match=re.escape("classifiers.mnist_svhn_text.overrides.text")):
        config_from_dict(raw)
