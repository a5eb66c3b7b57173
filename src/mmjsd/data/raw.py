"""Readers of the official raw files, with errors a user can act on.

Layout under a raw directory (the same for downloaded, user-provided and synthetic data;
readers never know which source wrote the files):

    MNIST/raw/{train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
               t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz}
    SVHN/{train_32x32.mat, test_32x32.mat}
    celeba/{img_align_celeba/*.jpg or img_align_celeba.zip,
            list_attr_celeba.txt, list_eval_partition.txt}

Every reader hashes the bytes it reads (sha256), so dataset provenance costs no extra pass.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmjsd.core.errors import UserError

SPLITS = ("train", "test")

MNIST_FILES = {
    "train": ("MNIST/raw/train-images-idx3-ubyte.gz", "MNIST/raw/train-labels-idx1-ubyte.gz"),
    "test": ("MNIST/raw/t10k-images-idx3-ubyte.gz", "MNIST/raw/t10k-labels-idx1-ubyte.gz"),
}
SVHN_FILES = {"train": "SVHN/train_32x32.mat", "test": "SVHN/test_32x32.mat"}
CELEBA_DIR = "celeba"
CELEBA_IMAGE_DIR = "img_align_celeba"
CELEBA_ATTR_FILE = "list_attr_celeba.txt"
CELEBA_PARTITION_FILE = "list_eval_partition.txt"
#: Attributes per image in the official list_attr_celeba.txt.
CELEBA_NUM_ATTRIBUTES = 40
CELEBA_HOW_TO = (
    "CelebA often cannot be downloaded automatically (Google Drive quota). Download the official "
    "'Align&Cropped Images' (img_align_celeba.zip), list_attr_celeba.txt and list_eval_partition.txt "
    "from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and put them in {root}/ as "
    "{root}/img_align_celeba/ (the unzipped folder) or {root}/img_align_celeba.zip, "
    "{root}/list_attr_celeba.txt and {root}/list_eval_partition.txt"
)

_IDX_DTYPES = {0x08: np.uint8}


@dataclass(frozen=True)
class RawArray:
    """An array read from a raw file, with the file's relative name and sha256."""

    data: np.ndarray
    name: str
    sha256: str


def _require(path: Path, what: str, hint: str) -> None:
    if not path.is_file():
        raise UserError(f"missing raw file {path} ({what}); {hint}")


# --------------------------------------------------------------------------- MNIST
def parse_idx(payload: bytes, source: str) -> np.ndarray:
    """Parse IDX bytes (LeCun's format: magic 0x0000TTDD, big-endian uint32 dims, data)."""
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in _IDX_DTYPES:
        raise UserError(
            f"{source} is not an IDX file of unsigned bytes (bad magic number); replace it with the official file"
        )
    ndim = payload[3]
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise UserError(f"{source} is truncated inside its IDX header; delete it and acquire it again")
    dims = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(payload) - header != expected:
        raise UserError(
            f"{source} holds {len(payload) - header} data bytes but its header says {dims} "
            f"({expected} bytes): the file is truncated or corrupt; delete it and acquire it again"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)


def _read_maybe_gzip(path: Path) -> tuple[bytes, str]:
    """Bytes of ``path`` (gunzipped) and the sha256 of the file as stored."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if raw[:2] != b"\x1f\x8b":
        return raw, digest
    try:
        return gzip.decompress(raw), digest
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(
            f"{path} is not a valid gzip file ({err}); it is probably a truncated download: "
            "delete it and acquire it again"
        ) from err


def read_mnist(raw_dir: str | Path, split: str) -> tuple[RawArray, RawArray]:
    """MNIST images ``[N, 28, 28]`` uint8 and labels ``[N]`` uint8 of ``split``."""
    raw_dir = Path(raw_dir)
    arrays = []
    for rel, what in zip(MNIST_FILES[split], ("images", "labels"), strict=True):
        path = raw_dir / rel
        if not path.is_file() and path.with_suffix("").is_file():
            path = path.with_suffix("")  # an already-gunzipped official file
        _require(path, f"MNIST {split} {what}", "set data.source to 'download' or place the official file there")
        payload, digest = _read_maybe_gzip(path)
        arrays.append(RawArray(parse_idx(payload, str(path)), str(path.relative_to(raw_dir)), digest))
    images, labels = arrays
    if images.data.ndim != 3 or images.data.shape[1:] != (28, 28):
        raise UserError(f"{raw_dir / images.name} holds images of shape {images.data.shape[1:]}, expected 28x28")
    if labels.data.ndim != 1:
        raise UserError(f"{raw_dir / labels.name} is not a label file (expected one dimension)")
    _check_counts(raw_dir, images, labels)
    _check_digit_labels(raw_dir / labels.name, labels.data)
    return images, labels


def _check_counts(raw_dir: Path, images: RawArray, labels: RawArray) -> None:
    if len(images.data) != len(labels.data):
        raise UserError(
            f"{raw_dir / images.name} has {len(images.data)} images but {raw_dir / labels.name} has "
            f"{len(labels.data)} labels; the two files must come from the same release"
        )


def _check_digit_labels(path: Path, labels: np.ndarray) -> None:
    if labels.size and labels.max() > 9:
        raise UserError(f"{path} contains label {int(labels.max())}; digit labels must be 0-9")


# ---------------------------------------------------------------------------- SVHN
def read_svhn(raw_dir: str | Path, split: str) -> tuple[RawArray, RawArray]:
    """SVHN images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` uint8 (label 10 → digit 0)."""
    import scipy.io

    raw_dir = Path(raw_dir)
    path = raw_dir / SVHN_FILES[split]
    _require(path, f"SVHN {split} split", "set data.source to 'download' or place the official .mat file there")
    payload = path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    try:
        mat = scipy.io.loadmat(io.BytesIO(payload))
    except Exception as err:  # scipy raises several types for corrupt files
        raise UserError(f"{path} is not a readable MATLAB .mat file ({err}); delete it and acquire it again") from err
    if "X" not in mat or "y" not in mat:
        raise UserError(f"{path} lacks the 'X' and 'y' arrays of the official SVHN files")
    x, y = mat["X"], mat["y"]
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise UserError(f"{path}: 'X' has shape {x.shape} and dtype {x.dtype}, expected [32, 32, 3, N] uint8")
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    if labels.size != x.shape[3]:
        raise UserError(f"{path} has {x.shape[3]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 10):
        raise UserError(f"{path} has labels outside 0-10")
    labels[labels == 10] = 0
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))
    name = str(path.relative_to(raw_dir))
    return RawArray(images, name, digest), RawArray(labels.astype(np.uint8), name, digest)


# -------------------------------------------------------------------------- CelebA
@dataclass(frozen=True)
class CelebAIndex:
    """The attribute and partition files, rows matched by image id."""

    image_ids: list[str]
    attribute_names: list[str]
    attributes: np.ndarray  # int8 [N, 40] of +-1
    partitions: np.ndarray  # int8 [N]
    sources: dict[str, str]  # file name -> sha256


def celeba_root(raw_dir: str | Path) -> Path:
    return Path(raw_dir) / CELEBA_DIR


def _celeba_text(root: Path, name: str) -> tuple[list[str], str]:
    path = root / name
    if not path.is_file():
        raise UserError(f"missing CelebA file {path}. " + CELEBA_HOW_TO.format(root=root))
    payload = path.read_bytes()
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not the official ASCII text file ({err})") from err
    return text.splitlines(), hashlib.sha256(payload).hexdigest()


def read_celeba_index(raw_dir: str | Path) -> CelebAIndex:
    """Parse list_attr_celeba.txt and list_eval_partition.txt and check they describe the same images."""
    root = celeba_root(raw_dir)
    attr_lines, attr_sha = _celeba_text(root, CELEBA_ATTR_FILE)
    part_lines, part_sha = _celeba_text(root, CELEBA_PARTITION_FILE)
    attr_path, part_path = root / CELEBA_ATTR_FILE, root / CELEBA_PARTITION_FILE
    if len(attr_lines) < 2 or not attr_lines[0].strip().isdigit():
        raise UserError(f"{attr_path} must start with the image count and the attribute names")
    count = int(attr_lines[0])
    names = attr_lines[1].split()
    if len(names) != CELEBA_NUM_ATTRIBUTES:
        raise UserError(
            f"{attr_path} names {len(names)} attributes on its second line, the official file {CELEBA_NUM_ATTRIBUTES}; "
            "use the unedited list_attr_celeba.txt"
        )
    rows = [line.split() for line in attr_lines[2:] if line.strip()]
    if len(rows) != count:
        raise UserError(
            f"{attr_path} announces {count} images but has {len(rows)} rows; the file is truncated or edited"
        )
    bad = next((i for i, r in enumerate(rows) if len(r) != len(names) + 1), None)
    if bad is not None:
        raise UserError(f"{attr_path} line {bad + 3} has {len(rows[bad]) - 1} values, expected {len(names)}")
    ids = [r[0] for r in rows]
    try:
        values = np.array([r[1:] for r in rows], dtype=np.int8)
    except ValueError as err:
        raise UserError(f"{attr_path} has a non-numeric attribute value ({err})") from err
    if values.size and not np.isin(values, (-1, 1)).all():
        raise UserError(f"{attr_path} has attribute values other than -1 and 1")
    parts = [line.split() for line in part_lines if line.strip()]
    if any(len(p) != 2 for p in parts):
        raise UserError(f"{part_path} must have two columns (image id, partition) on every line")
    part_ids = [p[0] for p in parts]
    if part_ids != ids:
        # the lists may differ in length: then the first difference may be where the shorter one ends
        first = next(
            (i for i, (a, b) in enumerate(zip(part_ids, ids, strict=False)) if a != b), min(len(part_ids), len(ids))
        )
        raise UserError(
            f"{part_path} and {attr_path} do not list the same images in the same order "
            f"(first difference at row {first + 1}); use the two official files of one release"
        )
    partitions = np.array([int(p[1]) for p in parts], dtype=np.int8)
    if partitions.size and not np.isin(partitions, (0, 1, 2)).all():
        raise UserError(f"{part_path} has partitions other than 0, 1 and 2")
    return CelebAIndex(ids, names, values, partitions, {CELEBA_ATTR_FILE: attr_sha, CELEBA_PARTITION_FILE: part_sha})


class CelebAImageStore:
    """The aligned JPEGs, from the ``img_align_celeba/`` folder or from ``img_align_celeba.zip``."""

    def __init__(self, raw_dir: str | Path):
        root = celeba_root(raw_dir)
        self.folder = root / CELEBA_IMAGE_DIR
        self.zip_path = root / f"{CELEBA_IMAGE_DIR}.zip"
        self._zip: zipfile.ZipFile | None = None
        self._zip_members: dict[str, str] | None = None
        if self.folder.is_dir():
            self.source_name = f"{CELEBA_IMAGE_DIR}/"
        elif self.zip_path.is_file():
            self.source_name = self.zip_path.name
        else:
            raise UserError(
                f"missing CelebA images: neither {self.folder}/ nor {self.zip_path} exists. "
                + CELEBA_HOW_TO.format(root=root)
            )

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            try:
                self._zip = zipfile.ZipFile(self.zip_path)
            except zipfile.BadZipFile as err:
                raise UserError(
                    f"{self.zip_path} is not a zip file ({err}); Google Drive often saves an HTML quota page "
                    "under that name: download it again by hand"
                ) from err
        return self._zip

    def zip_members(self) -> dict[str, str]:
        """``{image file name: member path}`` of the zip's JPEGs, whatever folder they sit in.

        The official zip has ``img_align_celeba/<id>``; mirrors nest it once more or not at
        all. A file name in two folders is ambiguous and refused.
        """
        if self._zip_members is None:
            members: dict[str, str] = {}
            for member in self._open_zip().namelist():
                if not member.endswith(".jpg"):
                    continue
                name = member.rsplit("/", 1)[-1]
                if name in members:
                    raise UserError(
                        f"{self.zip_path} holds {name} twice ({members[name]} and {member}); "
                        f"keep one copy of the images, e.g. the official zip with its single {CELEBA_IMAGE_DIR}/ folder"
                    )
                members[name] = member
            self._zip_members = members
        return self._zip_members

    def names(self) -> set[str]:
        """Image file names available."""
        if self.folder.is_dir():
            return {p.name for p in self.folder.iterdir() if p.suffix == ".jpg"}
        return set(self.zip_members())

    def read(self, image_id: str) -> bytes:
        if self.folder.is_dir():
            return (self.folder / image_id).read_bytes()
        return self._open_zip().read(self.zip_members()[image_id])

    def check_matches(self, index: CelebAIndex, raw_dir: str | Path) -> None:
        """Every id in the attribute file must have an image (extra images are ignored)."""
        available = self.names()
        missing = [i for i in index.image_ids if i not in available]
        if missing:
            nested = self.folder / CELEBA_IMAGE_DIR
            if not available and nested.is_dir():
                raise UserError(
                    f"{self.folder}/ holds no images but a folder {nested.name}/: move its JPEGs up one level"
                )
            raise UserError(
                f"{len(missing)} images listed in {celeba_root(raw_dir) / CELEBA_ATTR_FILE} are not in "
                f"{self.source_name} (first: {missing[0]}); the attribute file and the image folder "
                "must come from the same release"
            )
