"""Shared fixtures: small synthetic raw data in the official formats, datasets built from it, and a results tree.

The builders behind them are in ``helpers.py``, which test modules import directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import CELEBA_PARAMS, MST_PARAMS, build, write_demo_results
from mmjsd import acquire
from mmjsd.data import synthetic


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
        acquire.main(
            ["--dataset", name, "--source", "directory", "--raw-dir", str(raw_dir), "--manifest", str(paths[name])]
        )
    return paths


@pytest.fixture(scope="session")
def mst_h5(manifests, tmp_path_factory) -> Path:
    return build("mnist_svhn_text", manifests, MST_PARAMS, tmp_path_factory.mktemp("datasets") / "mnist_svhn_text.h5")


@pytest.fixture(scope="session")
def celeba_h5(manifests, tmp_path_factory) -> Path:
    return build("celeba", manifests, CELEBA_PARAMS, tmp_path_factory.mktemp("datasets") / "celeba.h5")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A results tree from :func:`helpers.write_demo_results` with classifier-feature PRD."""
    return write_demo_results(tmp_path / "results")
