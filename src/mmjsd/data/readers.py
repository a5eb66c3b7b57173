"""Readers over the HDF5 datasets: in-memory splits with fast batch gathering.

A split is loaded once into uint8 tensors (MST at full scale is ~270 MB of pixels,
CelebA ~2 GB) and can be moved to the GPU. ``batch(index)`` gathers rows by index and
converts to float and one-hot on the tensors' device, so the training loop needs no
DataLoader workers. :class:`ModalityDataset` wraps a split as a ``torch.utils.data.Dataset``
whose items are dicts keyed by modality (plus ``label``), for code that wants one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmjsd.core import registry
from mmjsd.data import alphabet
from mmjsd.data.hdf5 import CELEBA_SPEC, MST_SPEC, read_split

Batch = dict[str, torch.Tensor]


def text_one_hot(indices: torch.Tensor) -> torch.Tensor:
    """float32 one-hot ``[..., L, 71]`` of character indices, built on their device."""
    return F.one_hot(indices.long(), alphabet.NUM_SYMBOLS).float()


def pixels_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float32 in [0, 1] (the reference's ToTensor)."""
    return images.float().div_(255.0)


class InMemorySplit:
    """What both splits share: their tensors (named by ``tensor_names``), moved together and counted in bytes."""

    tensor_names: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        """Bytes the split's tensors hold (where it is kept is decided from this; see ``runtime.split_device``)."""
        return sum(getattr(self, name).nbytes for name in self.tensor_names)

    def to(self, device: torch.device | str):
        """Move every tensor of the split to ``device``; returns the split."""
        for name in self.tensor_names:
            setattr(self, name, getattr(self, name).to(device))
        return self


class MSTSplit(InMemorySplit):
    """One split of MNIST-SVHN-Text in memory; pairs index the stored images."""

    modalities = ("mnist", "svhn", "text")
    tensor_names = ("mnist_images", "svhn_images", "pair_mnist", "pair_svhn", "labels", "text")

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.mnist_images = torch.from_numpy(arrays["mnist_images"])
        self.svhn_images = torch.from_numpy(arrays["svhn_images"])
        self.pair_mnist = torch.from_numpy(arrays["pair_mnist"].astype(np.int64))
        self.pair_svhn = torch.from_numpy(arrays["pair_svhn"].astype(np.int64))
        self.labels = torch.from_numpy(arrays["pair_label"].astype(np.int64))
        self.text = torch.from_numpy(arrays["pair_text"])
        self.text_length = self.text.shape[1]

    @classmethod
    def load(cls, path: str | Path, split: str) -> MSTSplit:
        return cls(read_split(path, MST_SPEC, split))

    def __len__(self) -> int:
        return len(self.labels)

    def redraw_text(self, seed: int, epoch: int) -> None:
        """Re-draw every pair's word offset, seeded by (seed, epoch), as the reference does per item."""
        labels = self.labels.cpu().numpy()
        rng = np.random.default_rng([seed, epoch])
        starts = alphabet.draw_word_starts(labels, self.text_length, rng)
        text = torch.from_numpy(alphabet.digit_texts(labels, starts, self.text_length))
        self.text = text.to(self.text.device)

    def batch(self, index: torch.Tensor, device: torch.device | str | None = None) -> tuple[Batch, torch.Tensor]:
        """Modalities of pairs ``index`` (float) and their digit labels, on ``device`` (default: the split's).

        Rows are gathered where the split lives and cross to ``device`` as uint8 pixels and
        character indices; the float and one-hot conversions happen on ``device``.
        """
        index = index.to(self.labels.device)
        target = device or self.labels.device
        data = {
            "mnist": pixels_to_float(self.mnist_images[self.pair_mnist[index]].to(target)).unsqueeze(1),
            "svhn": pixels_to_float(self.svhn_images[self.pair_svhn[index]].to(target)),
            "text": text_one_hot(self.text[index].to(target)),
        }
        return data, self.labels[index].to(target)


class CelebASplit(InMemorySplit):
    """One split of bimodal CelebA in memory; labels are the 40 attributes as float 0/1."""

    modalities = ("img", "text")
    tensor_names = ("images", "labels", "text")

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.images = torch.from_numpy(arrays["images"])
        self.labels = torch.from_numpy(arrays["labels"])
        self.text = torch.from_numpy(arrays["text"])

    @classmethod
    def load(cls, path: str | Path, split: str) -> CelebASplit:
        return cls(read_split(path, CELEBA_SPEC, split))

    def __len__(self) -> int:
        return len(self.labels)

    def redraw_text(self, seed: int, epoch: int) -> None:
        """CelebA text offsets are fixed at build time (as the reference's preprocessed CSV)."""

    def batch(self, index: torch.Tensor, device: torch.device | str | None = None) -> tuple[Batch, torch.Tensor]:
        """Image and text of items ``index`` (float) and their attributes, on ``device`` (as :meth:`MSTSplit.batch`)."""
        index = index.to(self.labels.device)
        target = device or self.labels.device
        data = {
            "img": pixels_to_float(self.images[index].to(target)),
            "text": text_one_hot(self.text[index].to(target)),
        }
        return data, self.labels[index].to(target).float()


def load_split(dataset: str, path: str | Path, split: str) -> MSTSplit | CelebASplit:
    """The in-memory split of ``dataset`` stored at ``path`` (the split class its spec names)."""
    split_type = registry.load_object(registry.dataset(dataset).split, f"dataset '{dataset}' split reader")
    return split_type.load(path, split)


class ModalityDataset(torch.utils.data.Dataset):
    """``Dataset`` view of a split: item i is ``{modality: tensor, ..., "label": label}`` (text one-hot ``[L, 71]``)."""

    def __init__(self, split: MSTSplit | CelebASplit):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        data, labels = self.split.batch(torch.tensor([i]))
        item = {name: value[0] for name, value in data.items()}
        item["label"] = labels[0]
        return item
