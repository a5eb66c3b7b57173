"""Writers of the official raw-data formats (MNIST IDX, SVHN .mat, CelebA folder + lists).

These writers know nothing about how the images were made: they only lay bytes out exactly
as the official distributions do, so the dataset builders cannot tell synthetic raw data from
the real thing. Every file is written atomically (temporary name, then rename) and the bytes
depend only on the inputs: no timestamps, no file names inside archives.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from mmjsd.core.io import atomic_dir, atomic_path

MNIST_SHAPE = (28, 28)
SVHN_SHAPE = (32, 32, 3)
CELEBA_SHAPE = (218, 178, 3)
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
CELEBA_IMAGE_DIR = "img_align_celeba"
CELEBA_ATTR_FILE = "list_attr_celeba.txt"
CELEBA_PARTITION_FILE = "list_eval_partition.txt"

# IDX magic numbers: two zero bytes, type code 0x08 (unsigned byte), number of dimensions.
_IDX_UBYTE = 0x08
# MATLAB pads the 116-byte description with spaces; a fixed text keeps the file deterministic
# where scipy would write the current time.
_MAT_HEADER_TEXT = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: mmjsd synthetic data generator"
_MAT_HEADER_LEN = 116
# Quality close to the official aligned CelebA jpgs (about 10 kB each at 178x218).
_JPEG_QUALITY = 90


def _check_array(name: str, array: np.ndarray, dtype: type, shape_tail: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``array`` has ``dtype`` and shape ``[N, *shape_tail]`` with N >= 1."""
    if array.dtype != dtype or array.ndim != 1 + len(shape_tail) or tuple(array.shape[1:]) != shape_tail:
        raise ValueError(
            f"{name} must be {np.dtype(dtype)} [N, {', '.join(map(str, shape_tail))}], "
            f"got {array.dtype} {list(array.shape)}"
        )
    if len(array) == 0:
        raise ValueError(f"{name} is empty")


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX encoding of a uint8 array: magic, big-endian int32 dims, raw data."""
    header = struct.pack(">HBB", 0, _IDX_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """Gzip ``data`` with mtime 0 and no file name in the header, so equal data gives equal bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as archive:
        archive.write(data)
    return buffer.getvalue()


def _write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_idx_images(path: str | os.PathLike, images: np.ndarray) -> Path:
    """Write uint8 images [N, 28, 28] as gzip IDX (magic 0x00000803), like ``train-images-idx3-ubyte.gz``."""
    _check_array("MNIST images", images, np.uint8, MNIST_SHAPE)
    return _write_bytes_atomically(path, gzip_bytes(idx_bytes(images)))


def write_idx_labels(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write uint8 labels [N] as gzip IDX (magic 0x00000801), like ``train-labels-idx1-ubyte.gz``."""
    _check_array("MNIST labels", labels, np.uint8, ())
    return _write_bytes_atomically(path, gzip_bytes(idx_bytes(labels)))


def svhn_label_codes(labels: np.ndarray) -> np.ndarray:
    """Digits 0..9 to the official SVHN codes, uint8 [N, 1], where the digit 0 is stored as 10."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"SVHN labels must be a non-empty [N] vector of digits 0..9, got shape {labels.shape}")
    return np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]


def _fixed_mat_header() -> bytes:
    """The 116-byte MAT v5 description text, space padded as MATLAB writes it."""
    return _MAT_HEADER_TEXT.ljust(_MAT_HEADER_LEN, b" ")


def write_svhn_mat(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images uint8 [N, 32, 32, 3] and digit labels [N] like the official ``train_32x32.mat``.

    The file holds ``X`` uint8 [32, 32, 3, N] and ``y`` uint8 [N, 1] (digit 0 stored as 10),
    MATLAB v5 with compressed variables.
    """
    _check_array("SVHN images", images, np.uint8, SVHN_SHAPE)
    codes = svhn_label_codes(labels)
    if len(codes) != len(images):
        raise ValueError(f"{len(images)} SVHN images but {len(codes)} labels")
    with atomic_path(path, suffix=".mat") as tmp, open(tmp, "w+b") as handle:
        scipy.io.savemat(handle, {"X": images.transpose(1, 2, 3, 0), "y": codes}, format="5", do_compression=True)
        handle.seek(0)
        handle.write(_fixed_mat_header())
    return Path(path)


def celeba_image_name(index: int) -> str:
    """Official file name of the image at 0-based ``index``: 6 digits, 1-based (``000001.jpg``)."""
    return f"{index + 1:06d}.jpg"


def celeba_attribute_lines(attributes: np.ndarray) -> list[str]:
    """Lines of ``list_attr_celeba.txt``: count, names (with the official trailing space), rows.

    A row is the image name and the 40 values right-aligned in width 2, one space apart.
    """
    lines = [str(len(attributes)), " ".join(CELEBA_ATTRIBUTES) + " "]
    for index, row in enumerate(attributes):
        lines.append(celeba_image_name(index) + " " + " ".join(f"{int(value):2d}" for value in row))
    return lines


def celeba_partition_lines(partitions: Sequence[int]) -> list[str]:
    """Lines of ``list_eval_partition.txt``: image name and partition (0 train, 1 valid, 2 test)."""
    return [f"{celeba_image_name(index)} {int(part)}" for index, part in enumerate(partitions)]


def _check_celeba_labels(attributes: np.ndarray, partitions: np.ndarray) -> None:
    """Raise ``ValueError`` unless attributes are ±1 [N, 40] and partitions are sorted 0/1/2 [N]."""
    _check_array("CelebA attributes", attributes, np.int8, (len(CELEBA_ATTRIBUTES),))
    if not np.isin(attributes, (-1, 1)).all():
        raise ValueError("CelebA attributes must all be -1 or 1")
    if partitions.shape != (len(attributes),):
        raise ValueError(f"{len(attributes)} attribute rows but partitions of shape {partitions.shape}")
    if not np.isin(partitions, (0, 1, 2)).all() or (np.diff(partitions) < 0).any():
        raise ValueError(
            "CelebA partitions must be 0, 1 or 2 in non-decreasing order "
            "(train images first, then valid, then test, as in the official file)"
        )


def _write_celeba_jpgs(folder: Path, images: Iterable[np.ndarray], count: int) -> None:
    """Encode exactly ``count`` images [218, 178, 3] as numbered jpgs in ``folder``."""
    written = 0
    for image in images:
        if written == count:
            raise ValueError(f"more CelebA images than the {count} attribute rows")
        _check_array("a CelebA image", image[None], np.uint8, CELEBA_SHAPE)
        Image.fromarray(image, "RGB").save(
            folder / celeba_image_name(written),
            format="JPEG",
            quality=_JPEG_QUALITY,
            subsampling="4:2:0",
            optimize=False,
        )
        written += 1
    if written != count:
        raise ValueError(f"{written} CelebA images for {count} attribute rows")


def write_celeba_files(
    root: str | os.PathLike, images: Iterable[np.ndarray], attributes: np.ndarray, partitions: Sequence[int]
) -> list[Path]:
    """Write aligned-CelebA raw files under ``root``, in the official layout.

    ``root/img_align_celeba/000001.jpg, ...`` (JPEG, 178 wide x 218 high), ``list_attr_celeba.txt``
    and ``list_eval_partition.txt``. ``images`` may be a generator (the full set does not fit in
    memory); it must yield one uint8 [218, 178, 3] array per attribute row. The image folder is
    written first, so an interrupted run leaves neither text file behind.
    """
    root = Path(root)
    attributes = np.asarray(attributes)
    partitions = np.asarray(partitions)
    _check_celeba_labels(attributes, partitions)
    image_dir = root / CELEBA_IMAGE_DIR
    with atomic_dir(image_dir) as tmp_dir:
        _write_celeba_jpgs(tmp_dir, images, len(attributes))
    attr_path = _write_bytes_atomically(root / CELEBA_ATTR_FILE, _text_file_bytes(celeba_attribute_lines(attributes)))
    partition_path = _write_bytes_atomically(
        root / CELEBA_PARTITION_FILE, _text_file_bytes(celeba_partition_lines(partitions))
    )
    return [image_dir, attr_path, partition_path]


def _text_file_bytes(lines: list[str]) -> bytes:
    """ASCII text with one newline after every line."""
    return ("\n".join(lines) + "\n").encode("ascii")
