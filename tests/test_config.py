"""Config: schema and dataclasses agree, the shipped configs validate, bad keys get clear errors."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from mmjsd.config import (
    Config,
    SCHEMA_PATH,
    TrainConfig,
    config_from_dict,
    deep_merge,
    load_config,
    parse_variant,
)
from mmjsd.errors import UserError

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


def _compare(schema: dict, node: dict, cls, path: str, mismatches: list[str]) -> None:
    node = _resolve(schema, node)
    props = node.get("properties", {})
    fields = typing.get_type_hints(cls)
    if set(props) != set(fields):
        mismatches.append(f"{path}: schema {sorted(props)} vs dataclass {sorted(fields)}")
    for name, sub in props.items():
        if "description" not in _resolve(schema, sub) and "$ref" not in sub:
            mismatches.append(f"{path}.{name}: no description")
        inner = _dataclass_of(fields.get(name))
        if inner is not None:
            _compare(schema, sub, inner, f"{path}.{name}", mismatches)


def test_schema_properties_match_dataclass_fields():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    mismatches: list[str] = []
    _compare(schema, schema, Config, "config", mismatches)
    # TrainConfig.departures comes from the top-level 'departures' block (compared above), not from training.*
    train_full = _resolve(schema, schema["$defs"]["train_full"])
    train_full = {**train_full, "properties": {**train_full["properties"], "departures": {"description": "top level"}}}
    _compare(schema, train_full, TrainConfig, "training.*.defaults", mismatches)
    assert mismatches == []


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
    # CelebA: mmjsd's job_celeba.sh for every variant (REFERENCE.md §4), MoPoE included.
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
    "edit, key",
    [
        (lambda c: c["data"].update(sorce="synthetic"), "data"),
        (lambda c: c["training"]["mnist_svhn_text"]["variants"].append("mmjsdd"), "training.mnist_svhn_text.variants.8"),
        (lambda c: c["training"]["celeba"]["overrides"].update({"mvae-ms": {"laten_dim": 4}}), "training.celeba.overrides.mvae-ms"),
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
    from mmjsd.config import MSTBuildConfig, from_dict

    good = {"seed": 0, "pairs_per_image": 20, "max_per_class": 10000, "text_length": 8}
    assert from_dict(MSTBuildConfig, good).pairs_per_image == 20
    with pytest.raises(UserError, match="unknown config key 'data.mst.pairs'"):
        from_dict(MSTBuildConfig, {**good, "pairs": 3}, "data.mst")
    with pytest.raises(UserError, match="must be an integer"):
        from_dict(MSTBuildConfig, {**good, "seed": True})


def test_deep_merge_and_variant_names():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    assert parse_variant("mopoe-ms") == ("mopoe", True)
    assert parse_variant("mvae") == ("mvae", False)
    with pytest.raises(UserError):
        parse_variant("mmjsd-style")
