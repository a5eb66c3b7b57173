"""Run-time plumbing shared by the torch steps: device, threads, seeds, data order, versions."""

from __future__ import annotations

import platform
import random

import numpy as np
import torch

import mmjsd
from mmjsd.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("config key 'device' is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def set_threads(threads: int) -> None:
    """torch CPU threads; 0 keeps torch's default. Results on CPU depend on it (reduction order)."""
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for one run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(num_items: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The shuffled item order of one epoch, a function of (seed, epoch) only (so resuming repeats it)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator).to(device)


def library_versions() -> dict[str, str]:
    return {"mmjsd": mmjsd.__version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
