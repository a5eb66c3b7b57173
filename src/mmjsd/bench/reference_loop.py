"""The reference implementation's data path and per-step logging, re-implemented for ``training``.

Written from the description in docs/reference-code.md §1.1-1.3 and §6 (no code of the reference
is used). What the reference does, and what this module does the same way:

* a ``torch.utils.data.Dataset`` whose ``__getitem__`` builds one item from uint8 arrays
  held in memory (the reference's ``torch.load``-ed MNIST tensors and ``loadmat``-ed SVHN
  arrays; here the same images read from our HDF5 file);
* MNIST: PIL image → ToTensor → ToPILImage → bicubic Resize(28) (a no-op) → ToTensor;
  SVHN: ToTensor of the HWC image; the two digit labels are checked to agree;
* the text drawn per item: a random start for the digit word (``random.randint``), the
  8-character string, and a float one-hot [8, 71] filled character by character with
  ``str.find`` on the alphabet;
* a ``DataLoader`` (num_workers 8 in the reference, shuffle, drop_last, default collate);
* per step: the batch moved to the device, then forward, backward, Adam step, and a host
  read (``.item()``) of the loss and of every loss term for logging.

The model, objective and optimiser are ours: the loop gets a compute step (a callable
batch → (loss, terms)), so comparing it with our loop isolates the data path and the
logging. Not re-implemented: the TensorBoard ``add_scalars`` calls the reference makes
several times per step (they would only slow it further), so its figure is an upper
bound. CelebA items start from our stored 64×64 images instead of decoding and
crop-resizing the 218×178 JPEGs, so the CelebA reference figure is an upper bound too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mmjsd.data import alphabet

Batch = dict[str, torch.Tensor]
ComputeStep = Callable[[Batch], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]


def one_hot_text(text: str) -> torch.Tensor:
    """float [len(text), 71] one-hot, set character by character with ``str.find`` as the reference does."""
    encoded = torch.zeros(len(text), alphabet.NUM_SYMBOLS)
    for position, character in enumerate(text):
        encoded[position, alphabet.ALPHABET.find(character)] = 1.0
    return encoded


def random_digit_text(label: int, length: int) -> str:
    """The digit's English word at a random start (both ends inclusive) in ``length`` spaces."""
    word = alphabet.DIGIT_WORDS[label]
    start = random.randint(0, length - 1 - len(word))
    return (" " * start + word).ljust(length)


def resized_image_transform(size: int) -> transforms.Compose:
    """ToTensor → ToPILImage → bicubic Resize(size) → ToTensor (MNIST at 28, CelebA at 64)."""
    return transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.ToPILImage(),
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
        ]
    )


class ReferenceMSTItems(Dataset):
    """MNIST-SVHN-Text pairs built one at a time from the arrays of an MST split (``read_split``)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.mnist_images = arrays["mnist_images"]
        self.mnist_labels = arrays["mnist_labels"]
        self.svhn_images = arrays["svhn_images"]
        self.svhn_labels = arrays["svhn_labels"]
        self.pair_mnist = arrays["pair_mnist"]
        self.pair_svhn = arrays["pair_svhn"]
        self.text_length = arrays["pair_text"].shape[1]
        self.mnist_transform = resized_image_transform(28)
        self.svhn_transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.pair_mnist)

    def __getitem__(self, index: int) -> tuple[Batch, int]:
        mnist_index, svhn_index = self.pair_mnist[index], self.pair_svhn[index]
        label = int(self.mnist_labels[mnist_index])
        if label != int(self.svhn_labels[svhn_index]):
            raise ValueError(f"pair {index} joins an MNIST {label} with an SVHN {self.svhn_labels[svhn_index]}")
        item = {
            "mnist": self.mnist_transform(Image.fromarray(self.mnist_images[mnist_index])),
            "svhn": self.svhn_transform(self.svhn_images[svhn_index].transpose(1, 2, 0)),
            "text": one_hot_text(random_digit_text(label, self.text_length)),
        }
        return item, label


class ReferenceCelebAItems(Dataset):
    """CelebA image-text items built one at a time from the arrays of a CelebA split (``read_split``)."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.images = arrays["images"]
        self.labels = arrays["labels"]
        self.texts = [alphabet.decode(row) for row in arrays["text"]]
        self.image_transform = resized_image_transform(self.images.shape[-1])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Batch, torch.Tensor]:
        item = {
            "img": self.image_transform(self.images[index].transpose(1, 2, 0)),
            "text": one_hot_text(self.texts[index]),
        }
        return item, torch.from_numpy(self.labels[index].astype(np.float32))


REFERENCE_ITEMS: dict[str, type[Dataset]] = {"mnist_svhn_text": ReferenceMSTItems, "celeba": ReferenceCelebAItems}


def reference_loader(dataset: str, arrays: Mapping[str, np.ndarray], batch_size: int, workers: int) -> DataLoader:
    """The reference's loader over ``dataset``'s per-item dataset: shuffled, dropping the last partial batch."""
    items = REFERENCE_ITEMS[dataset](arrays)
    return DataLoader(items, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers)


def logged_compute(compute: ComputeStep, batch: Batch) -> list[float]:
    """The reference's compute step: ``compute`` (forward, backward, Adam)
    then ``.item()`` of the loss and every term."""
    loss, terms = compute(batch)
    return [loss.item()] + [value.item() for value in terms.values()]


def reference_steps(compute: ComputeStep, loader: DataLoader, device: torch.device) -> Iterator[list[float]]:
    """One reference training step per ``next``: fetch a batch, move it to ``device``, :func:`logged_compute` it."""
    for batch, _ in loader:
        yield logged_compute(compute, {name: value.to(device) for name, value in batch.items()})
