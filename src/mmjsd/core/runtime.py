"""Run-time plumbing shared by the torch steps: device, threads, seeds, data order, versions."""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Mapping

import numpy as np
import torch

import mmjsd
from mmjsd.core.errors import UserError
from mmjsd.gpu_slots import MEMORY_FRACTION_VARIABLE


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error. A job that shares its GPU
    (:func:`gpu_memory_fraction`) gets its share of the GPU's memory as torch's cap, so that it fails alone with an
    out-of-memory error rather than starve the other jobs on the GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("config key 'device' is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    device = torch.device(name)
    fraction = gpu_memory_fraction()
    if device.type == "cuda" and fraction is not None:
        torch.cuda.set_per_process_memory_fraction(fraction, device)
    return device


def gpu_memory_fraction(environ: Mapping[str, str] = os.environ) -> float | None:
    """This job's share of its GPU's memory, as ``python -m mmjsd.gpu_slots`` passed it; None for the whole GPU."""
    value = environ.get(MEMORY_FRACTION_VARIABLE)
    if not value:
        return None
    try:
        fraction = float(value)
    except ValueError:
        fraction = 0.0
    if not 0.0 < fraction <= 1.0:
        raise UserError(
            f"{MEMORY_FRACTION_VARIABLE} must be a number in (0, 1], the job's share of its GPU, got {value!r}"
        )
    return None if fraction == 1.0 else fraction


#: Share of a GPU's free memory the training split may take; the rest is left to the model, Adam's state and the
#: activations (CelebA at batch 256 needs several GiB of them).
SPLIT_SHARE_OF_FREE_GPU_MEMORY = 0.5


def split_device(split_bytes: int, device: torch.device, free_bytes: int | None = None) -> torch.device:
    """Where the training split is kept: on ``device`` if it is a CPU, or a GPU whose free memory (``free_bytes``,
    by default what CUDA reports now) is at least twice the split; else in host memory, from where each gathered
    batch is copied to the GPU."""
    if device.type != "cuda":
        return device
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return device if split_bytes <= SPLIT_SHARE_OF_FREE_GPU_MEMORY * free_bytes else torch.device("cpu")


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


def last_batch_rows(num_items: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
    """Items of the last training batch of ``epoch``: batches are consecutive slices
    of :func:`epoch_order`, the remainder dropped.

    What the official latent probe is fitted on (the ``probe_protocol`` departure); the
    training loop of :mod:`mmjsd.train` visits its batches in exactly this layout.
    """
    steps = num_items // batch_size
    if steps == 0:
        raise UserError(f"{num_items} training items make no batch of {batch_size}")
    return epoch_order(num_items, seed, epoch, torch.device("cpu"))[(steps - 1) * batch_size : steps * batch_size]


def library_versions() -> dict[str, str]:
    return {
        "mmjsd": mmjsd.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
