"""The conda environment for cluster users stays in step with the pip install."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
#: conda package name -> the distribution name pip knows it by
PIP_NAMES = {"pyyaml": "PyYAML", "scikit-learn": "scikit-learn", "pillow": "pillow"}
UNPINNED = {"pip"}  # the installer itself may float


def conda_pins(env: dict) -> dict[str, str]:
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, _, pin = dep.partition("=")
            pins[name] = pin
    return pins


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_shape(path):
    env = yaml.safe_load(path.read_text())
    assert set(env) == {"name", "channels", "dependencies"}
    assert "defaults" not in env["channels"] and "nodefaults" in env["channels"]
    for name, pin in conda_pins(env).items():
        assert name in UNPINNED or re.fullmatch(r"\d+(\.\d+)*", pin), f"{path.name}: {name} is not pinned"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert all(re.fullmatch(r"[\w.-]+==[\w.+-]+", spec) for spec in pip), pip


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_the_installed_versions(path):
    """conda pins agree with the virtual environment in major.minor; pip pins exactly (up to local tags like +cu132)."""
    env = yaml.safe_load(path.read_text())
    for name, pin in conda_pins(env).items():
        if name in UNPINNED or name == "python":
            continue
        try:
            installed = version(PIP_NAMES.get(name, name))
        except PackageNotFoundError:
            pytest.fail(f"{path.name} pins {name}, which the virtual environment lacks")
        assert installed.split(".")[:2] == pin.split(".")[:2], f"{name}: env {pin}, installed {installed}"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    for spec in pip:
        name, pin = spec.split("==")
        assert version(name).split("+")[0] == pin, f"{name}: env {pin}, installed {version(name)}"


def test_env_covers_the_runtime_dependencies():
    """Every runtime dependency of pyproject.toml (but the workflow tools) is in the conda env."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {re.split(r"[<>=!~ ]", dep)[0].lower() for dep in project["dependencies"]}
    needed -= {"snakemake", "snakemake-executor-plugin-slurm", "pytest"}  # run Snakemake, not inside jobs
    env = yaml.safe_load((ROOT / "envs" / "mmjsd.yaml").read_text())
    provided = set(conda_pins(env)) | {
        spec.split("==")[0].lower() for d in env["dependencies"] if isinstance(d, dict) for spec in d["pip"]
    }
    assert needed <= provided, sorted(needed - provided)
