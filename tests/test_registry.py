"""The registries: built-in specs resolve, nothing else declares per-dataset tables, plugins fail early and clearly,
and code versions follow the specs a job uses."""

from __future__ import annotations

import ast
import copy
import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmjsd.core import registry
from mmjsd.core.config import config_from_dict
from mmjsd.core.errors import UserError
from mmjsd.core.provenance import import_closure
from mmjsd.models import objective_model_class
from mmjsd.tables.specs import planned_tables

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mmjsd"
#: Modules allowed to key declarations by dataset name: the dataset specs themselves, and the benchmarks,
#: which time the reference code's own loop on its two datasets (mmjsd.bench.reference_loop).
DATASET_DECLARATION_MODULES = ("specs/datasets.py", "bench/")


def test_builtin_specs_resolve_to_their_implementations():
    """Every 'module:attribute' of a built-in spec exists without importing (the config-time check) and imports."""
    for spec in (*registry.DATASETS, *registry.OBJECTIVES, *registry.METRICS):
        registry.check_implementation_paths(spec)
        for field, path in registry.implementation_paths(spec).items():
            assert registry.load_object(path, f"{spec.name}.{field}") is not None
    assert [spec.source for spec in registry.OBJECTIVES] == ["mmjsd.specs.objectives"] * 4


def test_no_module_keeps_its_own_dataset_keyed_declarations():
    """Per-dataset facts live in the dataset specs: no dict keyed by dataset names, no branch on one, elsewhere.

    A one-key dict named by a raw source (CelebA's builder returns ``{"celeba": files read}``) is keyed by the
    raw dataset, which only happens to share the built dataset's name.
    """
    names = set(registry.DATASETS.names())
    raw_sources = {raw for spec in registry.DATASETS for raw in spec.raw_sources}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(DATASET_DECLARATION_MODULES):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {
                    c.value
                    for key in node.keys
                    if key is not None
                    for c in ast.walk(key)
                    if isinstance(c, ast.Constant)
                }
                hits = sorted(keys & names)
                if len(hits) == 1 and hits[0] in raw_sources:
                    hits = []
            elif isinstance(node, ast.Compare):
                hits = [
                    c.value for c in (node.left, *node.comparators) if isinstance(c, ast.Constant) and c.value in names
                ]
            else:
                continue
            if hits:
                found.append(f"{relative}:{node.lineno} {hits[0]}")
    assert found == []


def test_samples_code_version_does_not_cover_the_table_and_plot_modules():
    """A caption edit in the tables package (or a plot tweak) must not rerun the GPU sample-figure jobs."""
    closure = import_closure("mmjsd.samples", "mmjsd.models.mopoe", *registry.dataset("mnist_svhn_text").model_modules)
    assert not [m for m in closure if m.startswith(("mmjsd.tables", "mmjsd.plots", "mmjsd.summary"))]
    assert "mmjsd.reporting.figures" in closure
    train = import_closure("mmjsd.train", "mmjsd.models.mopoe", *registry.dataset("mnist_svhn_text").model_modules)
    assert not [
        m
        for m in train
        if m.startswith(("mmjsd.models.mvae", "mmjsd.models.mmjsd", "mmjsd.specs", "mmjsd.models.networks.celeba"))
    ]


# ----------------------------------------------------------------------------- plugins
def write_module(directory: Path, name: str, source: str) -> None:
    path = directory / Path(*name.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".py").write_text(textwrap.dedent(source))


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path for hand-written plugins; the registry is restored afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    with registry.restored_registries():
        yield tmp_path


OBJECTIVE_PLUGIN = """
    from mmjsd.core.registry import ObjectiveSpec, register_objective
    register_objective(ObjectiveSpec(name={name!r}, label="Mine", model={model!r}, description="a test objective"))
"""


def config_with_plugin(*names: str) -> dict:
    import yaml

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["plugins"] = list(names)
    return raw


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "raise ImportError('needs the package foo')",
            r"plugin bad_plugin cannot be imported \(ImportError: needs the package foo\)",
        ),
        (
            OBJECTIVE_PLUGIN.format(name="mmjsd", model="m:M"),
            r"plugin bad_plugin: objective 'mmjsd' is already registered \(by mmjsd\.specs\.objectives\); "
            r"bad_plugin registers it again",
        ),
        (
            OBJECTIVE_PLUGIN.format(name="My-Model", model="m:M"),
            r"objective name 'My-Model' of bad_plugin is not allowed",
        ),
        (
            OBJECTIVE_PLUGIN.format(name="mine", model="no_such_module:Model"),
            r"'model' names module no_such_module, which is not on the Python path",
        ),
        (
            OBJECTIVE_PLUGIN.format(name="mine", model="mine_model:Modle"),
            r"'model': module mine_model \(.*mine_model\.py\) defines no 'Modle'",
        ),
        (
            OBJECTIVE_PLUGIN.format(name="mine", model="mine_model"),
            r"'model' must be a 'module\.path:attribute' string",
        ),
        ("X = 1", r"plugin bad_plugin registers nothing"),
    ],
    ids=["import-error", "duplicate", "bad-name", "missing-module", "missing-class", "bad-path", "registers-nothing"],
)
def test_bad_plugins_fail_at_config_time_with_the_module_and_the_problem(plugin_dir, source, message):
    write_module(plugin_dir, "mine_model", "class Model:\n    pass\n")
    write_module(plugin_dir, "bad_plugin", source)
    with pytest.raises(UserError, match=message):
        config_from_dict(config_with_plugin("bad_plugin"))


def test_a_model_class_lacking_a_method_fails_before_any_job(plugin_dir):
    """Config validation finds the class without importing it (torch-free); the implementation check the Snakefile
    runs when plugins are configured imports it and names the missing method."""
    write_module(
        plugin_dir,
        "mine_model",
        """
        from mmjsd.models.base import MultimodalVAE

        class Model(MultimodalVAE):
            objective = "mine"

            def subset_posterior(self, encodings, subset):
                return self.product_posterior(encodings, subset, with_prior=True)
    """,
    )
    write_module(plugin_dir, "mine_plugin", OBJECTIVE_PLUGIN.format(name="mine", model="mine_model:Model"))
    raw = config_with_plugin("mine_plugin")
    raw["training"]["mnist_svhn_text"]["variants"] = ["mine", "mmjsd"]
    cfg = config_from_dict(raw)
    assert cfg.variants("mnist_svhn_text") == ["mine", "mmjsd"] and registry.variant_label("mine-ms") == "Mine (MS)"
    message = r"objective 'mine' of mine_plugin: model mine_model:Model does not implement content_divergence"
    with pytest.raises(UserError, match=message):
        registry.check_plugin_implementations()
    with pytest.raises(UserError, match=message):
        objective_model_class("mine")


def test_a_metric_whose_evaluator_cannot_be_imported_fails_before_any_job(plugin_dir):
    write_module(plugin_dir, "mine_eval", "import no_such_dependency\n\ndef evaluate(inputs):\n    pass\n")
    write_module(
        plugin_dir,
        "mine_metric",
        """
        from mmjsd.core.registry import MetricSpec, register_metric
        register_metric(MetricSpec(name="mine", label="Mine", evaluator="mine_eval:evaluate", description="mine"))
    """,
    )
    config_from_dict(config_with_plugin("mine_metric"))
    with pytest.raises(
        UserError,
        match=r"metric 'mine' of mine_metric: 'evaluator': cannot import mine_eval "
        r"\(ModuleNotFoundError: No module named 'no_such_dependency'\)",
    ):
        registry.check_plugin_implementations()


def test_unregistered_names_are_refused_with_the_known_ones():
    with pytest.raises(UserError, match=r"unknown variant 'mvtcae': use one of mvae, mmvae, mmjsd, mopoe, mvae-ms"):
        registry.parse_variant("mvtcae")
    with pytest.raises(UserError, match=r"unknown metric 'fid': use one of latent_probe, coherence, prd, likelihood"):
        registry.metric("fid")


INCOMPLETE_MODEL = """
    from mmjsd.models.base import MultimodalVAE

    class Model(MultimodalVAE):
        objective = "mine"
"""


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        (
            {"broken_plugin": "import numpy.no_such_module\n"},
            "plugin broken_plugin cannot be imported (ModuleNotFoundError: No module named 'numpy.no_such_module')",
        ),
        (
            {
                "mine_model": INCOMPLETE_MODEL,
                "broken_plugin": OBJECTIVE_PLUGIN.format(name="mine", model="mine_model:Model"),
            },
            "objective 'mine' of broken_plugin: model mine_model:Model does not implement content_divergence",
        ),
    ],
    ids=["import-error", "missing-method"],
)
def test_snakemake_reports_a_broken_plugin_before_any_job(tmp_path, modules, message):
    for name, source in modules.items():
        write_module(tmp_path / "plugins", name, source)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(f"plugins: [broken_plugin]\nplugin_paths: [{tmp_path / 'plugins'}]\n")
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_PROFILE"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--directory",
            str(tmp_path),
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(ROOT / "config.yaml"),
            str(overlay),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert "Job stats" not in proc.stdout + proc.stderr  # no job was planned


def test_plugin_paths_must_exist(tmp_path):
    raw = config_with_plugin()
    raw["plugin_paths"] = [str(tmp_path / "missing")]
    with pytest.raises(UserError, match=r"config key 'plugin_paths': .*missing is not a directory"):
        config_from_dict(raw)


def test_example_plugins_load_without_torch_and_their_edits_version_only_their_jobs(tmp_path):
    """In a fresh interpreter (as the Snakefile): the example overlays validate with no torch imported, and a
    plugin's code version covers its own modules: the model for its jobs, the registration module for labels."""
    plugins = tmp_path / "plugins"
    examples = ("mvtcae", "active_units")
    for example in examples:
        for source in (ROOT / "examples" / "plugins" / example).rglob("*.py"):
            target = plugins / source.relative_to(ROOT / "examples" / "plugins" / example)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text())
    overlays = ["config.yaml", "workflow/presets/ci.yaml", *(f"examples/plugins/{e}/config.yaml" for e in examples)]
    script = textwrap.dedent(f"""
        import sys
        from mmjsd.core import registry
        from mmjsd.core.config import config_from_dict, deep_merge
        from mmjsd.core.provenance import code_version
        import yaml
        raw = {{}}
        for path in {[str(ROOT / name) for name in overlays]!r}:
            raw = deep_merge(raw, yaml.safe_load(open(path)))
        raw["plugins"] = ["mmjsd_mvtcae.plugin", "mmjsd_active_units.plugin"]
        raw["plugin_paths"] = [{str(plugins)!r}]
        cfg = config_from_dict(raw)
        assert "torch" not in sys.modules, "torch imported at config time"
        assert registry.metric("active_units").settings.__name__ == "ActiveUnitsSettings"
        mst = registry.dataset("mnist_svhn_text").model_modules
        print(code_version("mmjsd.train", *registry.objective("mvtcae").modules, *mst))
        print(code_version("mmjsd.train", *registry.objective("mopoe").modules, *mst))
        print(code_version("mmjsd.tables.cli", *registry.declaring_modules()))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def versions() -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout.split()

    mvtcae, mopoe, tables = versions()
    model = plugins / "mmjsd_mvtcae" / "model.py"
    model.write_text(
        model.read_text().replace(
            'weights["kl/content"] *= 1.0 - self.alpha', 'weights["kl/content"] *= 1.0 - self.alpha + 0.0'
        )
    )
    edited = versions()
    assert edited[0] != mvtcae and edited[1:] == [mopoe, tables]
    plugin = plugins / "mmjsd_mvtcae" / "plugin.py"
    plugin.write_text(plugin.read_text().replace('label="MVTCAE"', 'label="MVTCAE (ours)"'))
    relabelled = versions()
    assert relabelled[:2] == edited[:2] and relabelled[2] != tables


def test_a_registered_dataset_gets_config_blocks_and_tables_of_its_own(plugin_dir):
    """The dataset path at config level: a twin of MNIST-SVHN-Text under another name validates and is tabled."""
    twin = dataclasses.replace(registry.dataset("mnist_svhn_text"), name="mst_twin", title="MST twin", source="")
    registry.register_dataset(twin)
    raw = config_with_plugin()
    for block in (raw["data"], raw["training"], raw["classifiers"], raw["evaluation"]["metrics"], raw["resources"]):
        block["mst_twin"] = copy.deepcopy(block["mnist_svhn_text"])
    raw["datasets"] = ["mst_twin"]
    cfg = config_from_dict(raw)
    assert cfg.data.builds["mst_twin"] == cfg.data.builds["mnist_svhn_text"]
    tables = planned_tables({"mst_twin": cfg.evaluation.metrics["mst_twin"]})
    assert [t.name for t in tables] == [f"mst_twin_{m}" for m in ("latent_probe", "coherence", "prd", "likelihood")]
    del raw["data"]["mst_twin"]
    with pytest.raises(UserError, match="config key 'data': 'mst_twin' is a required property"):
        config_from_dict(raw)
    with pytest.raises(UserError, match="'labels' must be one of classes, attributes, got 'regression'"):
        registry.register_dataset(dataclasses.replace(twin, name="mst_bad", labels="regression"))
    with pytest.raises(UserError, match="sample figure 'conditional_img' names a modality the dataset lacks"):
        registry.register_dataset(dataclasses.replace(twin, name="mst_bad", sample_figures=("conditional_img",)))
    with pytest.raises(
        UserError, match="'num_labels' \\(classes or attributes\\) must be an integer of at least 2, got 1"
    ):
        registry.register_dataset(dataclasses.replace(twin, name="mst_bad", num_labels=1))


def test_the_implementation_check_imports_nothing_without_plugins():
    """The built-ins are checked by the tests, not at parse time: a workflow without plugins never imports torch."""
    script = (
        "import sys; from mmjsd.core import registry; registry.load_builtins(); "
        "registry.check_plugin_implementations(); "
        "print(sorted(m for m in ('torch', 'mmjsd.models') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert res.stdout.strip() == "[]"
