"""Shared fixtures: small synthetic raw data in the official formats, and datasets built from it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from mmjsd import acquire, build_dataset
from mmjsd.core.config import TrainConfig
from mmjsd.data import synthetic
from mmjsd.models import build_model
from mmjsd.train import RunSpec, write_outputs

ROOT = Path(__file__).resolve().parents[1]

MST_PARAMS = {"seed": 0, "pairs_per_image": 3, "max_per_class": 10000, "text_length": 8}
CELEBA_PARAMS = {"seed": 0, "text_length": 256, "train_partitions": [0], "test_partitions": [1]}


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored afterwards.

    The networks here are small and the CI machine has 2 shared cores: a second intra-op
    thread mostly waits. Results on CPU also depend on the thread count, so tests that
    compare against a subprocess run it with ``--threads 1`` too.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    """Synthetic MNIST (300/80), SVHN (320/90) and CelebA (40/12/8) raw files."""
    root = tmp_path_factory.mktemp("raw")
    synthetic.generate_mnist(root, 300, 80, seed=1)
    synthetic.generate_svhn(root, 320, 90, seed=1)
    synthetic.generate_celeba(root, 40, 12, 8, seed=1)
    return root


@pytest.fixture(scope="session")
def manifests(raw_dir, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("manifests")
    paths = {}
    for name in ("mnist", "svhn", "celeba"):
        paths[name] = out / f"{name}.json"
        acquire.main(["--dataset", name, "--source", "directory", "--raw-dir", str(raw_dir), "--manifest", str(paths[name])])
    return paths


def build(dataset: str, manifests: dict[str, Path], params: dict, output: Path, workers: int = 1) -> Path:
    names = ("mnist", "svhn") if dataset == "mnist_svhn_text" else ("celeba",)
    build_dataset.build(dataset, [manifests[n] for n in names], params, output, workers)
    return output


@pytest.fixture(scope="session")
def mst_h5(manifests, tmp_path_factory) -> Path:
    return build("mnist_svhn_text", manifests, MST_PARAMS, tmp_path_factory.mktemp("datasets") / "mnist_svhn_text.h5")


@pytest.fixture(scope="session")
def celeba_h5(manifests, tmp_path_factory) -> Path:
    return build("celeba", manifests, CELEBA_PARAMS, tmp_path_factory.mktemp("datasets") / "celeba.h5")


def copy_project(dest: Path) -> Path:
    """Copy the working tree (tracked and untracked-not-ignored files) to ``dest``, without results/ and .snakemake/."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, check=True, capture_output=True,
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = None
    if listed is None:  # not a git checkout: copy everything but outputs and environments
        shutil.copytree(
            ROOT, dest, dirs_exist_ok=True, symlinks=True,
            ignore=shutil.ignore_patterns("results", ".snakemake", ".git", ".venv", ".slurm", "__pycache__", ".pytest_cache"),
        )
        return dest
    for rel in filter(None, listed):
        if rel.startswith(("results/", ".snakemake/")):
            continue
        src = ROOT / rel
        if not src.exists():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    return dest


def save_untrained_run(run_dir: Path, dataset: str, variant: str, cfg: TrainConfig, data: Path, protocol: str = "corrected") -> Path:
    """An untrained model (seed 0) written to ``run_dir`` as ``mmjsd.train`` writes a finished run of ``data`` under ``protocol``."""
    torch.manual_seed(0)
    model = build_model(dataset, variant, cfg)
    spec = RunSpec(dataset, variant, 0, cfg, data, "0" * 64, protocol)
    write_outputs(run_dir, spec, model, [{"epoch": 1, "loss": 0.0}], torch.device("cpu"), 0.0)
    return run_dir
