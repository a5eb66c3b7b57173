"""Bimodal CelebA builder: 64x64 face crops, 40 labels, attribute text (docs/reference-code.md §1.3).

Image: fixed centre crop of 148x148 from the 218x178 aligned face (rows 35:183, cols
15:163), then PIL bicubic resize to 64x64, as the reference's ToPILImage → Resize. Text:
the positive attributes as a sentence, ``*``-padded at a seeded offset drawn once per
image in file order (so an image's text does not depend on which partitions are built).
"""

from __future__ import annotations

import hashlib
import io
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from mmjsd.core.config import CelebABuildConfig
from mmjsd.core.errors import UserError
from mmjsd.data import alphabet
from mmjsd.data.hdf5 import BuiltDataset
from mmjsd.data.raw import CELEBA_IMAGE_DIR, CelebAImageStore, read_celeba_index

#: PIL crop box (left, upper, right, lower) = cols 15:163, rows 35:183.
CROP_BOX = (15, 35, 163, 183)
IMAGE_SIZE = 64
_CHUNK = 256


def crop_and_resize(jpeg: bytes, image_id: str) -> np.ndarray:
    """Decode one aligned face and return uint8 ``[3, 64, 64]``."""
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            rgb = img.convert("RGB")
    except (OSError, SyntaxError) as err:
        raise UserError(
            f"CelebA image {image_id} is not a readable JPEG ({err}); replace it with the official file"
        ) from err
    if rgb.size != (178, 218):
        raise UserError(f"CelebA image {image_id} is {rgb.size[0]}x{rgb.size[1]}, expected the aligned 178x218")
    small = rgb.crop(CROP_BOX).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    return np.asarray(small, dtype=np.uint8).transpose(2, 0, 1)


def attribute_texts(names: list[str], attributes: np.ndarray, length: int, seed: int) -> np.ndarray:
    """uint8 ``[N, length]`` padded attribute sentences, one seeded offset per row in file order."""
    rng = np.random.default_rng(seed)
    rows = [
        alphabet.encode(alphabet.pad_attribute_text(alphabet.attribute_text(names, row > 0, length), length, rng))
        for row in attributes
    ]
    return np.stack(rows) if rows else np.zeros((0, length), dtype=np.uint8)


_worker_store: CelebAImageStore | None = None


def _init_worker(raw_dir: str) -> None:
    global _worker_store
    _worker_store = CelebAImageStore(raw_dir)


def _load_chunk(ids: list[str]) -> tuple[np.ndarray, list[bytes]]:
    """Images of ``ids`` and the sha256 digest of each file's bytes."""
    images, digests = [], []
    for image_id in ids:
        payload = _worker_store.read(image_id)
        digests.append(hashlib.sha256(payload).digest())
        images.append(crop_and_resize(payload, image_id))
    return np.stack(images), digests


def load_images(raw_dir: Path, ids: list[str], workers: int) -> tuple[np.ndarray, list[bytes]]:
    """All images of ``ids`` in order, decoded by ``workers`` processes (order and bytes do not depend on it)."""
    chunks = [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
    if workers <= 1:
        _init_worker(str(raw_dir))
        results = [_load_chunk(c) for c in chunks]
    else:
        with get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(str(raw_dir),)) as pool:
            results = pool.map(_load_chunk, chunks)
    if not results:
        return np.zeros((0, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8), []
    return np.concatenate([r[0] for r in results]), [d for r in results for d in r[1]]


def images_digest(per_image: list[bytes]) -> str:
    """One sha256 for a collection of images: hash of the per-image sha256 digests in file order.

    It is the same whether the images came from the folder or the zip.
    """
    return hashlib.sha256(b"".join(per_image)).hexdigest()


def partition_source_name(partition: int) -> str:
    """Manifest/provenance key of one partition's images."""
    return f"{CELEBA_IMAGE_DIR}/*.jpg (partition {partition})"


def partition_digests(partitions: np.ndarray, per_image: list[bytes]) -> dict[str, str]:
    """:func:`images_digest` of each partition present in ``partitions`` (aligned with ``per_image``)."""
    return {
        partition_source_name(int(p)): images_digest([d for d, q in zip(per_image, partitions, strict=True) if q == p])
        for p in np.unique(partitions)
    }


def hash_all_images(raw_dir: Path, ids: list[str]) -> list[bytes]:
    """sha256 digest of every listed image's bytes, without decoding (for the acquisition manifest)."""
    store = CelebAImageStore(raw_dir)
    return [hashlib.sha256(store.read(i)).digest() for i in ids]


def build(
    raw_dir: Path, cfg: CelebABuildConfig, workers: int = 1
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str], list[str]]:
    """Both splits, the raw files read (name → sha256) and the 40 attribute names."""
    overlap = set(cfg.train_partitions) & set(cfg.test_partitions)
    if overlap:
        raise UserError(
            f"config keys data.celeba.train_partitions and test_partitions share partition(s) {sorted(overlap)}; "
            "the test split must be held out"
        )
    index = read_celeba_index(raw_dir)
    store = CelebAImageStore(raw_dir)
    store.check_matches(index, raw_dir)
    texts = attribute_texts(index.attribute_names, index.attributes, cfg.text_length, cfg.seed)
    labels = (index.attributes > 0).astype(np.uint8)
    rows = np.flatnonzero(np.isin(index.partitions, cfg.train_partitions + cfg.test_partitions))
    images, digests = load_images(raw_dir, [index.image_ids[i] for i in rows], workers)
    splits = {}
    for split, partitions in (("train", cfg.train_partitions), ("test", cfg.test_partitions)):
        take = np.flatnonzero(np.isin(index.partitions[rows], partitions))
        if take.size == 0:
            raise UserError(
                f"no CelebA image is in partition(s) {partitions} (config key data.celeba.{split}_partitions)"
            )
        chosen = rows[take]
        splits[split] = {
            "images": images[take],
            "labels": labels[chosen],
            "text": texts[chosen],
            "image_ids": np.array([index.image_ids[i] for i in chosen], dtype="S16"),
        }
    sources = dict(index.sources)
    sources.update(partition_digests(index.partitions[rows], digests))
    return splits, sources, index.attribute_names


def build_dataset(raw_dirs: dict[str, Path], cfg: CelebABuildConfig, workers: int = 1) -> BuiltDataset:
    """The dataset spec's builder: :func:`build` from the raw CelebA directory,
    with the attribute names as a file attribute."""
    splits, sources, names = build(raw_dirs["celeba"], cfg, workers=workers)
    return BuiltDataset(splits, {"celeba": sources}, {"attribute_names": names})
