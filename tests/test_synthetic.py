"""Synthetic raw data: official formats (parsed independently of the writers), determinism,
learnable digits, distinct glyph styles, visible and consistent face attributes."""

from __future__ import annotations

import gzip
import itertools
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from mmjsd.core.errors import UserError
from mmjsd.data.synthetic import (
    MNIST_TRAIN_COUNTS,
    SVHN_TRAIN_COUNTS,
    class_counts,
    generate_celeba,
    generate_mnist,
    generate_svhn,
)
from mmjsd.data.synthetic.digits import STYLES, glyph_coverage, render_mnist_digits, render_svhn_digits
from mmjsd.data.synthetic.faces import CELEBA_ATTRIBUTES, VISIBLE_ATTRIBUTES, render_faces, sample_attributes
from mmjsd.data.synthetic.formats import write_celeba_files, write_svhn_mat

OFFICIAL_NAMES = [
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
]
CROP = (slice(35, 183), slice(15, 163))  # the CelebA builder's 148x148 centre crop


def column(attributes: np.ndarray, name: str) -> np.ndarray:
    return attributes[:, CELEBA_ATTRIBUTES.index(name)] > 0


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


# --------------------------------------------------------------------------- formats


def read_idx(path: Path) -> tuple[int, np.ndarray]:
    """Parse a gzip IDX file by the format's definition: magic, big-endian dims, bytes."""
    data = gzip.decompress(path.read_bytes())
    (magic,) = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return magic, np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def test_mnist_files_are_gzip_idx(tmp_path):
    paths = generate_mnist(tmp_path, n_train=40, n_test=20, seed=3)
    raw = tmp_path / "MNIST" / "raw"
    assert [p.name for p in paths] == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    for split, count in (("train", 40), ("t10k", 20)):
        magic, images = read_idx(raw / f"{split}-images-idx3-ubyte.gz")
        assert magic == 0x00000803 and images.shape == (count, 28, 28)
        magic, labels = read_idx(raw / f"{split}-labels-idx1-ubyte.gz")
        assert magic == 0x00000801 and labels.shape == (count,)
        assert set(labels) == set(range(10))
        # White digits on an exactly black background, as MNIST.
        assert images.max() == 255 and np.median(images) == 0
    header = (raw / "train-labels-idx1-ubyte.gz").read_bytes()[:10]
    assert header[3] == 0, "no file name or other optional fields in the gzip header"
    assert header[4:8] == b"\0\0\0\0", "gzip mtime must be 0"


def test_svhn_files_are_official_mat(tmp_path):
    generate_svhn(tmp_path, n_train=300, n_test=30, seed=3)
    for name, count in (("train_32x32.mat", 300), ("test_32x32.mat", 30)):
        path = tmp_path / "SVHN" / name
        mat = scipy.io.loadmat(path)
        assert mat["X"].dtype == np.uint8 and mat["X"].shape == (32, 32, 3, count)
        assert mat["y"].dtype == np.uint8 and mat["y"].shape == (count, 1)
        assert set(mat["y"].ravel()) == set(range(1, 11)), "digits 1..9 as themselves, 0 as 10"
        assert path.read_bytes()[:116].decode("ascii").startswith("MATLAB 5.0 MAT-file")
        assert "Created on" not in path.read_bytes()[:116].decode("ascii")
    labels = scipy.io.loadmat(tmp_path / "SVHN" / "train_32x32.mat")["y"].ravel()
    assert (labels == 1).sum() > 2 * (labels == 10).sum(), "skewed to small digits like the real SVHN"


def test_class_counts_follow_official_shares():
    assert tuple(class_counts(60000, MNIST_TRAIN_COUNTS)) == MNIST_TRAIN_COUNTS
    assert tuple(class_counts(73257, SVHN_TRAIN_COUNTS)) == SVHN_TRAIN_COUNTS
    small = class_counts(10, SVHN_TRAIN_COUNTS)
    assert small.sum() == 10 and small.min() == 1


def test_celeba_files_follow_the_official_layout(tmp_path):
    paths = generate_celeba(tmp_path, n_train=6, n_valid=3, n_test=2, seed=1)
    root = tmp_path / "celeba"
    assert paths == [root / "img_align_celeba", root / "list_attr_celeba.txt", root / "list_eval_partition.txt"]
    lines = (root / "list_attr_celeba.txt").read_text().split("\n")
    assert lines[0] == "11"
    assert lines[1] == " ".join(OFFICIAL_NAMES) + " ", "40 names, single spaces, trailing space"
    assert lines[-1] == "" and len(lines) == 2 + 11 + 1
    for number, line in enumerate(lines[2:-1], start=1):
        assert re.fullmatch(r"\d{6}\.jpg( -1|  1){40}", line), line
        assert line.startswith(f"{number:06d}.jpg ")
    partitions = (root / "list_eval_partition.txt").read_text().splitlines()
    assert partitions == [f"{i + 1:06d}.jpg {p}" for i, p in enumerate([0] * 6 + [1] * 3 + [2] * 2)]
    jpgs = sorted((root / "img_align_celeba").iterdir())
    assert [p.name for p in jpgs] == [f"{i:06d}.jpg" for i in range(1, 12)]
    for path in jpgs:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (178, 218))


def test_interrupted_celeba_write_leaves_no_final_files(tmp_path):
    attributes = sample_attributes(3, np.random.default_rng(0))

    def two_images_then_crash():
        yield from render_faces(attributes[:2], np.random.default_rng(0))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_celeba_files(tmp_path, two_images_then_crash(), attributes, [0, 0, 1])
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(UserError, match="n_train"):
        generate_mnist(tmp_path, n_train=5, n_test=20, seed=0)
    with pytest.raises(UserError, match="seed"):
        generate_svhn(tmp_path, n_train=20, n_test=20, seed=-1)
    with pytest.raises(UserError, match="workers"):
        generate_celeba(tmp_path, 2, 1, 0, seed=0, workers=0)
    with pytest.raises(ValueError, match=re.escape("0..9")):
        write_svhn_mat(tmp_path / "x.mat", np.zeros((1, 32, 32, 3), np.uint8), np.array([10]))
    attributes = sample_attributes(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-decreasing"):
        write_celeba_files(tmp_path, [], attributes, [1, 0])


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(("generate", "sizes"), [(generate_mnist, (30, 20)), (generate_svhn, (30, 20))])
def test_digit_generators_are_deterministic(tmp_path, generate, sizes):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(tmp_path / name, *sizes, seed=seed)
    first, again, other = (folder_bytes(tmp_path / name) for name in "abc")
    assert first == again
    assert first.keys() == other.keys() and all(first[key] != other[key] for key in first)


def test_celeba_generator_is_deterministic_for_any_worker_count(tmp_path):
    # 70 faces make three worker chunks, so the split of work really differs.
    generate_celeba(tmp_path / "a", 50, 12, 8, seed=5, workers=1)
    generate_celeba(tmp_path / "b", 50, 12, 8, seed=5, workers=2)
    generate_celeba(tmp_path / "c", 50, 12, 8, seed=6, workers=1)
    first, again, other = (folder_bytes(tmp_path / name) for name in "abc")
    assert first == again
    assert sum(first[key] != other[key] for key in first) >= len(first) - 1


def test_mnist_and_svhn_draw_from_different_streams(tmp_path):
    generate_mnist(tmp_path, 200, 20, seed=0)
    generate_svhn(tmp_path, 200, 20, seed=0)
    _, mnist_labels = read_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz")
    svhn_labels = scipy.io.loadmat(tmp_path / "SVHN" / "train_32x32.mat")["y"].ravel() % 10
    assert (mnist_labels != svhn_labels).mean() > 0.5


# --------------------------------------------------------------------------- digits


def small_cnn_accuracy(render, n_train: int, epochs: int) -> float:
    """Train a two-layer CNN on ``n_train`` fresh digits and return its accuracy on 500 more."""
    rng = np.random.default_rng(11)

    def batch(count):
        labels = rng.integers(10, size=count)
        pixels = torch.tensor(render(labels, rng), dtype=torch.float32) / 255.0
        pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
        # Per-image standardisation: contrast and colour are nuisances here.
        pixels = (pixels - pixels.mean((1, 2, 3), keepdim=True)) / (pixels.std((1, 2, 3), keepdim=True) + 1e-3)
        return pixels, torch.tensor(labels)

    (x_train, y_train), (x_test, y_test) = batch(n_train), batch(500)
    torch.manual_seed(0)
    side = x_train.shape[-1] // 4
    net = torch.nn.Sequential(
        torch.nn.Conv2d(x_train.shape[1], 32, 3, padding=1),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * side * side, 10),
    )
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        net.train()
        for index in torch.randperm(n_train).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(x_train[index]), y_train[index]).backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        return float((net(x_test).argmax(1) == y_test).float().mean())


def test_mnist_like_digits_are_learnable(one_torch_thread):
    accuracy = small_cnn_accuracy(render_mnist_digits, n_train=2000, epochs=2)
    print(f"MNIST-like test accuracy: {accuracy:.3f}")
    assert accuracy > 0.95


def test_svhn_like_digits_are_learnable(one_torch_thread):
    accuracy = small_cnn_accuracy(render_svhn_digits, n_train=3000, epochs=4)
    print(f"SVHN-like test accuracy: {accuracy:.3f}")
    assert accuracy > 0.88


def test_digit_images_have_the_right_shapes():
    rng = np.random.default_rng(0)
    labels = np.arange(10)
    mnist, svhn = render_mnist_digits(labels, rng), render_svhn_digits(labels, rng)
    assert mnist.dtype == svhn.dtype == np.uint8
    assert mnist.shape == (10, 28, 28) and svhn.shape == (10, 32, 32, 3)
    with pytest.raises(ValueError, match="unknown digit styles"):
        render_mnist_digits(labels, rng, styles=("comic_sans",))


def test_glyph_styles_are_really_different():
    """Every two styles draw several digits with clearly different shapes (pixel IoU)."""

    def iou(digit, first, second):
        a, b = glyph_coverage(digit, first, 56) > 0.5, glyph_coverage(digit, second, 56) > 0.5
        return (a & b).sum() / (a | b).sum()

    for first, second in itertools.combinations(STYLES, 2):
        overlaps = np.array([iou(digit, first, second) for digit in range(10)])
        assert overlaps.mean() < 0.65 and (overlaps < 0.5).sum() >= 2, (first, second, overlaps.round(2))


# --------------------------------------------------------------------------- faces


def test_attribute_sampler_keeps_celeba_constraints_and_marginals():
    attributes = sample_attributes(20000, np.random.default_rng(0))
    assert attributes.dtype == np.int8 and set(np.unique(attributes)) == {-1, 1}
    has = {name: column(attributes, name) for name in CELEBA_ATTRIBUTES}
    female = ~has["Male"]
    beard_styles = has["Goatee"] | has["Mustache"] | has["Sideburns"]
    hair_colours = has["Black_Hair"].astype(int) + has["Blond_Hair"] + has["Brown_Hair"] + has["Gray_Hair"]
    assert not (female & ~has["No_Beard"]).any() and not (beard_styles & has["No_Beard"]).any()
    assert not (female & (has["Bald"] | has["Wearing_Necktie"] | has["5_o_Clock_Shadow"])).any()
    assert not (has["Heavy_Makeup"] & ~has["Wearing_Lipstick"]).any()
    assert hair_colours.max() == 1 and not (has["Bald"] & (hair_colours > 0)).any()
    assert not (has["Bald"] & (has["Bangs"] | has["Wearing_Hat"] | has["Wavy_Hair"])).any()
    assert not (has["Wavy_Hair"] & has["Straight_Hair"]).any()
    # Marginals near CelebA's.
    for name, share in (
        ("Male", 0.417),
        ("Young", 0.774),
        ("Smiling", 0.482),
        ("No_Beard", 0.835),
        ("Wearing_Lipstick", 0.472),
        ("Black_Hair", 0.239),
        ("Blond_Hair", 0.148),
        ("Eyeglasses", 0.065),
        ("Bald", 0.022),
    ):
        assert abs(has[name].mean() - share) < 0.03, (name, has[name].mean())
    assert has["Gray_Hair"][~has["Young"]].mean() > 4 * has["Gray_Hair"][has["Young"]].mean()
    assert np.corrcoef(has["Smiling"], has["Mouth_Slightly_Open"])[0, 1] > 0.3


def enriched_attributes(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` sampled rows, drawn from a larger pool with rare visible attributes favoured,
    so that every probed attribute has enough positives."""
    pool = sample_attributes(4 * count, rng)
    visible = np.stack([column(pool, name) for name in VISIBLE_ATTRIBUTES], axis=1)
    weights = 1.0 + (visible / np.maximum(visible.mean(0), 0.02) * 0.05).sum(1)
    return pool[rng.choice(len(pool), count, replace=False, p=weights / weights.sum())]


def test_visible_attributes_are_visible_in_the_builder_crop():
    """A linear probe on the 32x32 downsampled centre crop finds every attribute the renderer
    claims to draw (cross-validated AUC); Blurry, a texture property, shows in sharpness."""
    rng = np.random.default_rng(23)
    attributes = enriched_attributes(1600, rng)
    images = render_faces(attributes, rng)
    small = (
        np.stack([np.asarray(Image.fromarray(image[CROP]).resize((32, 32), Image.Resampling.BOX)) for image in images])
        .reshape(len(images), -1)
        .astype(np.float32)
    )
    small = (small - small.mean(0)) / (small.std(0) + 5.0)
    scores = cross_val_predict(Ridge(alpha=100.0), small, attributes.astype(np.float32), cv=3)
    aucs = {
        name: roc_auc_score(column(attributes, name), scores[:, CELEBA_ATTRIBUTES.index(name)])
        for name in VISIBLE_ATTRIBUTES
        if name != "Blurry"
    }
    print({name: round(auc, 3) for name, auc in sorted(aucs.items(), key=lambda item: item[1])})
    assert len(aucs) >= 12 and min(aucs.values()) > 0.9, aucs

    gray = images[:, CROP[0], CROP[1]].astype(np.float32).mean(-1)
    laplacian = np.abs(
        4 * gray[:, 1:-1, 1:-1] - gray[:, :-2, 1:-1] - gray[:, 2:, 1:-1] - gray[:, 1:-1, :-2] - gray[:, 1:-1, 2:]
    ).mean((1, 2))
    assert roc_auc_score(column(attributes, "Blurry"), -laplacian) > 0.9


def test_render_faces_shapes_and_spawned_streams():
    attributes = sample_attributes(3, np.random.default_rng(1))
    first = render_faces(attributes, np.random.default_rng(2))
    assert first.shape == (3, 218, 178, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, render_faces(attributes, np.random.default_rng(2)))
