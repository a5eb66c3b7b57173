"""Synthetic raw data in the official on-disk formats, generated from a seed.

Real MNIST, SVHN and CelebA cannot be downloaded everywhere (CI, air-gapped clusters), so
``data.source: synthetic`` writes look-alike raw files that the dataset builders read exactly
as they read the real ones:

- ``<raw>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
- ``<raw>/SVHN/{train,test}_32x32.mat``
- ``<raw>/celeba/{img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt}``

Same seed and sizes give byte-identical files (on the same platform and library versions);
MNIST, SVHN and every split draw from separate streams derived from the seed. Class counts
follow the official per-class proportions (at full size they equal the official counts).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mmjsd.core.errors import UserError
from mmjsd.data.synthetic.digits import render_mnist_digits, render_svhn_digits
from mmjsd.data.synthetic.faces import render_face, sample_attributes
from mmjsd.data.synthetic.formats import write_celeba_files, write_idx_images, write_idx_labels, write_svhn_mat

__all__ = ["generate_celeba", "generate_mnist", "generate_svhn"]

# Official per-digit counts (digits 0..9) of each split; synthetic labels follow their shares.
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
SVHN_TRAIN_COUNTS = (4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659)
SVHN_TEST_COUNTS = (1744, 5099, 4149, 2882, 2523, 2384, 1977, 2019, 1660, 1595)

# Digits are rendered in fixed-size chunks to bound memory at full size (SVHN's float
# intermediates for 73k images would take several GB); the chunk size is part of the output.
_RENDER_CHUNK = 4096
# Faces are handed to worker processes in chunks; a bounded number of chunks in flight keeps
# memory flat when the workers outpace the JPEG encoding in the parent.
_FACE_CHUNK = 32
_CHUNKS_IN_FLIGHT_PER_WORKER = 2


def _stream(seed: int, *names: str) -> np.random.Generator:
    """The random stream of a named part of the data (e.g. "svhn", "test"): independent of every
    other part, and the same for the same seed and names."""
    key = tuple(zlib.crc32(name.encode("ascii")) for name in names)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"synthetic data seed must be a non-negative integer, got {seed!r}")


def _check_count(name: str, value: int, minimum: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"synthetic data: {name} must be an integer >= {minimum} ({why}), got {value!r}")


def class_counts(n: int, official_counts: tuple[int, ...]) -> np.ndarray:
    """Per-class counts summing to ``n`` in the proportions of ``official_counts`` (largest
    remainder rounding), with every class present; ``n`` = the official total gives them back."""
    exact = n * np.asarray(official_counts, dtype=float) / sum(official_counts)
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: n - counts.sum()]] += 1
    while (counts == 0).any():
        counts[np.argmax(counts)] -= 1
        counts[np.argmin(counts)] += 1
    return counts


def _shuffled_labels(n: int, official_counts: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """``n`` digit labels uint8 [n] with :func:`class_counts`, in random order."""
    return rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), class_counts(n, official_counts)))


def _render_in_chunks(
    render: Callable[[np.ndarray, np.random.Generator], np.ndarray], labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    return np.concatenate(
        [render(labels[start : start + _RENDER_CHUNK], rng) for start in range(0, len(labels), _RENDER_CHUNK)]
    )


def generate_mnist(raw_dir: str | os.PathLike, n_train: int, n_test: int, seed: int) -> list[Path]:
    """Write MNIST-like ``raw_dir/MNIST/raw/{train,t10k}-*-ubyte.gz`` (gzip IDX) and return the paths."""
    _check_seed(seed)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        _check_count(f"MNIST {name}", value, 10, "every digit must appear")
    folder = Path(raw_dir) / "MNIST" / "raw"
    paths = []
    for split, count, official in (("train", n_train, MNIST_TRAIN_COUNTS), ("t10k", n_test, MNIST_TEST_COUNTS)):
        rng = _stream(seed, "mnist", split)
        labels = _shuffled_labels(count, official, rng)
        images = _render_in_chunks(render_mnist_digits, labels, rng)
        paths.append(write_idx_images(folder / f"{split}-images-idx3-ubyte.gz", images))
        paths.append(write_idx_labels(folder / f"{split}-labels-idx1-ubyte.gz", labels))
    return paths


def generate_svhn(raw_dir: str | os.PathLike, n_train: int, n_test: int, seed: int) -> list[Path]:
    """Write SVHN-like ``raw_dir/SVHN/{train,test}_32x32.mat`` and return the paths.

    Digit 1 is the most common and 0 and 9 the rarest, in the official proportions.
    """
    _check_seed(seed)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        _check_count(f"SVHN {name}", value, 10, "every digit must appear")
    folder = Path(raw_dir) / "SVHN"
    paths = []
    for split, count, official in (("train", n_train, SVHN_TRAIN_COUNTS), ("test", n_test, SVHN_TEST_COUNTS)):
        rng = _stream(seed, "svhn", split)
        labels = _shuffled_labels(count, official, rng)
        images = _render_in_chunks(render_svhn_digits, labels, rng)
        paths.append(write_svhn_mat(folder / f"{split}_32x32.mat", images, labels))
    return paths


def _face_rng(seed: int, index: int) -> np.random.Generator:
    """Image ``index``'s own stream: faces do not depend on how the work is split up."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(b"celeba-face"), index)))


def _render_face_chunk(seed: int, start: int, attributes: np.ndarray) -> np.ndarray:
    """Faces [k, 218, 178, 3] for attribute rows ``start .. start + k - 1`` (a worker's task)."""
    return np.stack([render_face(row, _face_rng(seed, start + offset)) for offset, row in enumerate(attributes)])


def _face_images(attributes: np.ndarray, seed: int, workers: int) -> Iterator[np.ndarray]:
    """Rendered faces in index order, one at a time, from ``workers`` processes."""
    starts = range(0, len(attributes), _FACE_CHUNK)
    if workers == 1:
        for start in starts:
            yield from _render_face_chunk(seed, start, attributes[start : start + _FACE_CHUNK])
        return
    # "spawn": forking a parent that may hold torch threads can deadlock. An executor, unlike
    # multiprocessing.Pool, reports a worker that dies instead of replacing it for ever.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        pending: deque[concurrent.futures.Future] = deque()
        for start in starts:
            pending.append(executor.submit(_render_face_chunk, seed, start, attributes[start : start + _FACE_CHUNK]))
            if len(pending) >= workers * _CHUNKS_IN_FLIGHT_PER_WORKER:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def generate_celeba(
    raw_dir: str | os.PathLike, n_train: int, n_valid: int, n_test: int, seed: int, workers: int = 1
) -> list[Path]:
    """Write aligned-CelebA-like ``raw_dir/celeba/{img_align_celeba/, list_attr_celeba.txt,
    list_eval_partition.txt}`` and return the three paths.

    Images are numbered train first (partition 0), then valid (1), then test (2), as in the
    official lists. The output is the same for any number of ``workers``.
    """
    _check_seed(seed)
    _check_count("CelebA n_train", n_train, 1, "partition 0 is the training set")
    _check_count("CelebA n_valid", n_valid, 1, "partition 1 is the test set of the reference")
    _check_count("CelebA n_test", n_test, 0, "partition 2 may be empty")
    _check_count("CelebA workers", workers, 1, "number of processes")
    attributes = sample_attributes(n_train + n_valid + n_test, _stream(seed, "celeba", "attributes"))
    partitions = np.repeat([0, 1, 2], [n_train, n_valid, n_test])
    return write_celeba_files(Path(raw_dir) / "celeba", _face_images(attributes, seed, workers), attributes, partitions)
