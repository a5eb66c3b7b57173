"""The labelled examples each classifier trains and is tested on, read from the HDF5 datasets.

MST image classifiers use every stored image of the split once (``mnist_images`` with
``mnist_labels``, ``svhn_images`` with ``svhn_labels``), not the 20× repeated pairs. The
MST text classifier uses the pairs' texts; on the training split the word offsets are
re-drawn every epoch, because generated text may put the word at any legal offset.
CelebA classifiers use the images or texts with the 40 attributes as float 0/1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mmjsd.core import registry
from mmjsd.data.hdf5 import CELEBA_SPEC, MST_SPEC, FileSpec, open_dataset_file
from mmjsd.data.readers import MSTSplit, pixels_to_float, text_one_hot


def mnist_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B,28,28]`` → float ``[B,1,28,28]`` in [0, 1] (the batch format of docs/file-formats.md)."""
    return pixels_to_float(images).unsqueeze(1)


@dataclass
class Examples:
    """Stored inputs (uint8 pixels or character indices) of one modality and their labels.

    ``to_input`` converts gathered rows to the float batch format; ``redraw`` (MST training
    text only) returns new character indices for ``(seed, epoch)``.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    to_input: Callable[[torch.Tensor], torch.Tensor]
    redraw: Callable[[int, int], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Examples:
        """Move inputs and labels to ``device`` (batches are then gathered there)."""
        self.inputs, self.labels = self.inputs.to(device), self.labels.to(device)
        return self

    def start_epoch(self, seed: int, epoch: int) -> None:
        """Re-draw the text offsets for this epoch where the examples allow it."""
        if self.redraw is not None:
            self.inputs = self.redraw(seed, epoch).to(self.inputs.device)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float model inputs and labels of rows ``index`` (on the examples' device)."""
        index = index.to(self.labels.device)
        return self.to_input(self.inputs[index]), self.labels[index]


def _read(path: str | Path, layout: FileSpec, split: str, names: tuple[str, ...]) -> list[torch.Tensor]:
    """Only the named datasets of one split (CelebA text training need not read 2 GB of images)."""
    with open_dataset_file(path, layout) as handle:
        return [torch.from_numpy(handle[split][name][()]) for name in names]


@dataclass(frozen=True)
class StoredLayout:
    """Where a modality's examples sit in the HDF5 split, and how they become model inputs and labels."""

    inputs: str
    labels: str
    to_input: Callable[[torch.Tensor], torch.Tensor]
    label_dtype: torch.dtype


def _stored_examples(path: str | Path, layout: FileSpec, split: str, stored: StoredLayout) -> Examples:
    inputs, labels = _read(path, layout, split, (stored.inputs, stored.labels))
    return Examples(inputs, labels.to(stored.label_dtype), stored.to_input)


#: MST images as stored (each image once); MST text is built from the pairs instead.
MST_STORED = {
    "mnist": StoredLayout("mnist_images", "mnist_labels", mnist_input, torch.int64),
    "svhn": StoredLayout("svhn_images", "svhn_labels", pixels_to_float, torch.int64),
}
CELEBA_STORED = {
    "img": StoredLayout("images", "labels", pixels_to_float, torch.float32),
    "text": StoredLayout("text", "labels", text_one_hot, torch.float32),
}


def _mst_text_examples(path: str | Path, split: str, redraw: bool) -> Examples:
    """Pair texts and digits; on request the offsets are re-drawn per epoch by :meth:`MSTSplit.redraw_text`."""
    pairs = MSTSplit.load(path, split)

    def redrawn_text(seed: int, epoch: int) -> torch.Tensor:
        pairs.redraw_text(seed, epoch)
        return pairs.text

    return Examples(pairs.text, pairs.labels, text_one_hot, redrawn_text if redraw else None)


def mst_examples(modality: str, path: str | Path, split: str) -> Examples:
    """MNIST-SVHN-Text: stored digits of each image modality; pair texts with per-epoch offsets when training."""
    if modality == "text":
        return _mst_text_examples(path, split, redraw=split == "train")
    return _stored_examples(path, MST_SPEC, split, MST_STORED[modality])


def celeba_examples(modality: str, path: str | Path, split: str) -> Examples:
    """CelebA: images or texts with the 40 attributes as float 0/1."""
    return _stored_examples(path, CELEBA_SPEC, split, CELEBA_STORED[modality])


def load_examples(dataset: str, modality: str, path: str | Path, split: str) -> Examples:
    """Labelled examples of ``modality`` from ``split`` of the dataset file ``path`` (on the CPU).

    The dataset's spec names the reader (``DatasetSpec.classifier_examples``). Digit
    labels are int64, CelebA attributes float 0/1. MST training text gets per-epoch
    offset re-drawing; test text keeps the stored offsets.
    """
    spec = registry.dataset(dataset)
    read = registry.load_object(spec.classifier_examples, f"dataset '{dataset}' classifier examples")
    return read(modality, path, split)
