"""MNIST-SVHN-Text builder: seeded per-class pairing plus digit-word text (docs/reference-code.md §1.1-1.2).

Images are stored once per split; pairs are index arrays into them. Pairing follows the
reference: per class l take the first n_l = min(#MNIST_l, #SVHN_l, max_per_class) images of
each dataset in file order, then ``pairs_per_image`` times pair a random permutation of
those MNIST indices with a random permutation of those SVHN indices; classes are
concatenated in order. Unlike the reference, every draw is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmjsd.core.config import MSTBuildConfig
from mmjsd.data import alphabet
from mmjsd.data.hdf5 import BuiltDataset
from mmjsd.data.raw import SPLITS, read_mnist, read_svhn

NUM_CLASSES = 10
_SPLIT_INDEX = {"train": 0, "test": 1}
_PURPOSE_PAIRING, _PURPOSE_TEXT = 0, 1


def split_rng(seed: int, split: str, purpose: int) -> np.random.Generator:
    """Independent seeded stream per (split, purpose): pairing and text never share draws."""
    return np.random.default_rng([seed, _SPLIT_INDEX[split], purpose])


def per_class_counts(labels_a: np.ndarray, labels_b: np.ndarray, max_per_class: int) -> np.ndarray:
    """n_l = min(#a_l, #b_l, max_per_class) for each digit l."""
    count_a = np.bincount(labels_a, minlength=NUM_CLASSES)[:NUM_CLASSES]
    count_b = np.bincount(labels_b, minlength=NUM_CLASSES)[:NUM_CLASSES]
    return np.minimum(np.minimum(count_a, count_b), max_per_class)


def pair_by_class(
    labels_a: np.ndarray, labels_b: np.ndarray, pairs_per_image: int, max_per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (into a, into b) and labels of the class-major random pairing."""
    counts = per_class_counts(labels_a, labels_b, max_per_class)
    idx_a, idx_b, labels = [], [], []
    for digit in range(NUM_CLASSES):
        n = int(counts[digit])
        first_a = np.flatnonzero(labels_a == digit)[:n]
        first_b = np.flatnonzero(labels_b == digit)[:n]
        for _ in range(pairs_per_image):
            idx_a.append(first_a[rng.permutation(n)])
            idx_b.append(first_b[rng.permutation(n)])
            labels.append(np.full(n, digit, dtype=np.uint8))
    return np.concatenate(idx_a), np.concatenate(idx_b), np.concatenate(labels)


def build_split(
    raw_mnist: Path, raw_svhn: Path, split: str, cfg: MSTBuildConfig
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays of one split (names as in ``MST_SPEC``) and the sha256 of every raw file read."""
    mnist_images, mnist_labels = read_mnist(raw_mnist, split)
    svhn_images, svhn_labels = read_svhn(raw_svhn, split)
    pair_mnist, pair_svhn, pair_label = pair_by_class(
        mnist_labels.data,
        svhn_labels.data,
        cfg.pairs_per_image,
        cfg.max_per_class,
        split_rng(cfg.seed, split, _PURPOSE_PAIRING),
    )
    starts = alphabet.draw_word_starts(pair_label, cfg.text_length, split_rng(cfg.seed, split, _PURPOSE_TEXT))
    arrays = {
        "mnist_images": mnist_images.data,
        "mnist_labels": mnist_labels.data,
        "svhn_images": svhn_images.data,
        "svhn_labels": svhn_labels.data,
        "pair_mnist": pair_mnist,
        "pair_svhn": pair_svhn,
        "pair_label": pair_label,
        "pair_text": alphabet.digit_texts(pair_label, starts, cfg.text_length),
    }
    sources = {
        "mnist": {a.name: a.sha256 for a in (mnist_images, mnist_labels)},
        "svhn": {svhn_images.name: svhn_images.sha256},
    }
    return arrays, sources


def build(
    raw_mnist: Path, raw_svhn: Path, cfg: MSTBuildConfig
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, str]]]:
    """Both splits, and the raw files read per raw dataset (``{"mnist": {file: sha256}, "svhn": ...}``)."""
    splits, sources = {}, {"mnist": {}, "svhn": {}}
    for split in SPLITS:
        splits[split], read = build_split(raw_mnist, raw_svhn, split, cfg)
        for raw, files in read.items():
            sources[raw].update(files)
    return splits, sources


def build_dataset(raw_dirs: dict[str, Path], cfg: MSTBuildConfig, workers: int = 1) -> BuiltDataset:
    """The dataset spec's builder: :func:`build` from the raw MNIST and SVHN directories (single process)."""
    splits, sources = build(raw_dirs["mnist"], raw_dirs["svhn"], cfg)
    return BuiltDataset(splits, sources, {})
