"""HDF5 dataset files: layout specs, atomic writing, and validated opening.

The layouts are documented in ``docs/file-formats.md``. Opening a file checks its
format tag, version and every dataset's dtype and shape against the spec, so a truncated,
foreign or outdated file fails with a message instead of a shape error deep in training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mmjsd.core import registry
from mmjsd.core.errors import UserError
from mmjsd.core.io import atomic_path
from mmjsd.data.alphabet import ALPHABET

#: Bump when the builders' output changes for the same inputs (invalidates old files).
BUILDER_VERSION = "1"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DatasetSpec:
    """One HDF5 dataset in a split group: dtype and shape with named symbolic dimensions."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class FileSpec:
    format: str
    datasets: tuple[DatasetSpec, ...]


MST_SPEC = FileSpec(
    "mmjsd.mnist_svhn_text",
    (
        DatasetSpec("mnist_images", "uint8", ("N_mnist", 28, 28)),
        DatasetSpec("mnist_labels", "uint8", ("N_mnist",)),
        DatasetSpec("svhn_images", "uint8", ("N_svhn", 3, 32, 32)),
        DatasetSpec("svhn_labels", "uint8", ("N_svhn",)),
        DatasetSpec("pair_mnist", "int32", ("P",)),
        DatasetSpec("pair_svhn", "int32", ("P",)),
        DatasetSpec("pair_label", "uint8", ("P",)),
        DatasetSpec("pair_text", "uint8", ("P", "L")),
    ),
)

CELEBA_SPEC = FileSpec(
    "mmjsd.celeba",
    (
        DatasetSpec("images", "uint8", ("N", 3, 64, 64)),
        DatasetSpec("labels", "uint8", ("N", 40)),
        DatasetSpec("text", "uint8", ("N", "L")),
        DatasetSpec("image_ids", "S16", ("N",)),
    ),
)

SPLITS = ("train", "test")


def dataset_layout(dataset: str) -> FileSpec:
    """The file layout the spec of ``dataset`` names (``DatasetSpec.file_layout``)."""
    return registry.load_object(registry.dataset(dataset).file_layout, f"dataset '{dataset}' file layout")


@dataclass(frozen=True)
class BuiltDataset:
    """What a dataset builder (``DatasetSpec.builder``) returns: the arrays and their provenance.

    ``splits`` maps split → dataset name → array (the layout of the spec's ``file_layout``);
    ``sources`` maps each raw source → {file: sha256} of the raw files read (checked against
    the manifests); ``attrs`` are extra file attributes (e.g. CelebA's attribute names).
    """

    splits: dict[str, dict[str, np.ndarray]]
    sources: dict[str, dict[str, str]]
    attrs: dict[str, Any]


def write_dataset_file(
    path: str | Path,
    spec: FileSpec,
    splits: dict[str, dict[str, np.ndarray]],
    attrs: dict[str, Any],
) -> None:
    """Write ``splits`` (split → dataset name → array) atomically, with provenance ``attrs``.

    Arrays are cast to the spec's dtype; the result is checked against the spec before it
    is renamed into place. Datasets are written contiguous and uncompressed (fast reads,
    and the bytes depend only on the data: no timestamps are stored).
    """
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as handle:
            handle.attrs["format"] = spec.format
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["builder_version"] = BUILDER_VERSION
            handle.attrs["alphabet"] = ALPHABET
            for key, value in attrs.items():
                handle.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value, sort_keys=True)
            for split in SPLITS:
                group = handle.create_group(split, track_order=True)
                for ds in spec.datasets:
                    group.create_dataset(
                        ds.name, data=np.asarray(splits[split][ds.name]).astype(ds.dtype), track_times=False
                    )
        _check_file(tmp, spec, shown=Path(path))


def _check_file(path: Path, spec: FileSpec, shown: Path) -> None:
    with open_dataset_file(path, spec, shown=shown):
        pass


def _fail(shown: Path, problem: str) -> UserError:
    return UserError(f"{shown} {problem}; delete it and rebuild it (snakemake rebuilds missing datasets)")


class open_dataset_file:
    """Context manager: open an HDF5 dataset read-only after checking it against ``spec``."""

    def __init__(self, path: str | Path, spec: FileSpec, shown: Path | None = None):
        self.path = Path(path)
        self.spec = spec
        self.shown = shown or self.path
        self.handle: h5py.File | None = None

    def __enter__(self) -> h5py.File:
        if not self.path.is_file():
            raise UserError(f"dataset file {self.shown} does not exist; build it first (snakemake builds it)")
        try:
            self.handle = h5py.File(self.path, "r")
        except OSError as err:
            raise _fail(self.shown, f"is truncated or not an HDF5 file ({err})") from err
        try:
            validate_layout(self.handle, self.spec, self.shown)
        except BaseException:
            self.handle.close()
            raise
        return self.handle

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()


def validate_layout(handle: h5py.File, spec: FileSpec, shown: Path) -> None:
    """Check format tag, version and every dataset's dtype and shape (symbolic dims must agree)."""
    fmt = handle.attrs.get("format")
    if fmt != spec.format:
        raise _fail(shown, f"is not a {spec.format} file (format attribute: {fmt!r})")
    version = handle.attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(shown, f"has format version {version}, this code reads version {FORMAT_VERSION}")
    for split in SPLITS:
        if split not in handle:
            raise _fail(shown, f"has no '{split}' group")
        dims: dict[str, int] = {}
        for ds in spec.datasets:
            if ds.name not in handle[split]:
                raise _fail(shown, f"lacks dataset '{split}/{ds.name}'")
            data = handle[split][ds.name]
            if data.dtype != np.dtype(ds.dtype) or data.ndim != len(ds.shape):
                raise _fail(
                    shown,
                    f"dataset '{split}/{ds.name}' is {data.dtype}{data.shape}, expected "
                    f"{ds.dtype} with shape {ds.shape}",
                )
            for actual, expected in zip(data.shape, ds.shape, strict=True):
                if isinstance(expected, int) and actual != expected:
                    raise _fail(shown, f"dataset '{split}/{ds.name}' has shape {data.shape}, expected {ds.shape}")
                if isinstance(expected, str) and dims.setdefault(expected, actual) != actual:
                    raise _fail(
                        shown,
                        f"dataset '{split}/{ds.name}' has {actual} for dimension {expected}, other "
                        f"datasets have {dims[expected]}",
                    )


def read_split(path: str | Path, spec: FileSpec, split: str) -> dict[str, np.ndarray]:
    """All datasets of one split, read into memory."""
    with open_dataset_file(path, spec) as handle:
        return {ds.name: handle[split][ds.name][()] for ds in spec.datasets}


def read_attrs(path: str | Path, spec: FileSpec) -> dict[str, Any]:
    """Root attributes, JSON ones decoded."""
    with open_dataset_file(path, spec) as handle:
        return {key: _decode_attr(value) for key, value in handle.attrs.items()}


def _decode_attr(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value.item() if isinstance(value, np.generic) else value
