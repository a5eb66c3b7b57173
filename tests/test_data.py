"""Data stage on synthetic raw files: pairing, text, crops, determinism, readers, bad input."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from helpers import CELEBA_PARAMS, MST_PARAMS, build
from mmjsd import acquire
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file
from mmjsd.data import alphabet
from mmjsd.data.hdf5 import CELEBA_SPEC, MST_SPEC, open_dataset_file, read_attrs, read_split
from mmjsd.data.readers import ModalityDataset, load_split

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def read_idx_independently(path: Path) -> np.ndarray:
    payload = gzip.decompress(path.read_bytes())
    ndim = payload[3]
    dims = [int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(payload[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


# ------------------------------------------------------------------------- alphabet
def test_alphabet_matches_the_reference_layout():
    assert len(alphabet.ALPHABET) == 71
    assert alphabet.ALPHABET[:26] == "abcdefghijklmnopqrstuvwxyz" and alphabet.ALPHABET[26:36] == "0123456789"
    assert alphabet.encode("-")[0] == 36 and alphabet.ALPHABET[59] == "-"
    assert alphabet.PAD_STAR == 55 and alphabet.SPACE == 69 and alphabet.ALPHABET[70] == "\n"
    text = "five, 5 o clock shadow*"
    assert alphabet.decode(alphabet.encode(text)) == text
    hot = alphabet.one_hot(alphabet.encode("a-b"))
    assert hot.shape == (3, 71) and (hot.sum(1) == 1).all() and hot[:, 59].sum() == 0
    for outside in ("a→b", "aéb", "aAb"):  # outside Latin-1; Latin-1 but not in the alphabet (no capitals)
        with pytest.raises(ValueError, match=r"is not in the 71-symbol alphabet"):
            alphabet.encode(outside)


def test_digit_word_offsets_cover_exactly_the_legal_range():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 400)
    starts = alphabet.draw_word_starts(labels, 8, rng)
    for digit, word in enumerate(DIGIT_WORDS):
        seen = set(starts[labels == digit].tolist())
        assert seen == set(range(8 - 1 - len(word) + 1)), word
    texts = alphabet.digit_texts(labels, starts, 8)
    for row, digit, start in zip(texts[::97], labels[::97], starts[::97], strict=True):
        word = DIGIT_WORDS[digit]
        assert alphabet.decode(row) == " " * start + word + " " * (8 - start - len(word))


# ------------------------------------------------------------------- MNIST-SVHN-Text
def test_mst_pairs_agree_and_counts_follow_the_pairing_rule(mst_h5, raw_dir):
    for split, prefix, svhn_file in (("train", "train", "train_32x32.mat"), ("test", "t10k", "test_32x32.mat")):
        data = read_split(mst_h5, MST_SPEC, split)
        mnist_labels = read_idx_independently(raw_dir / f"MNIST/raw/{prefix}-labels-idx1-ubyte.gz")
        svhn_labels = scipy.io.loadmat(raw_dir / "SVHN" / svhn_file)["y"].reshape(-1) % 10
        np.testing.assert_array_equal(data["mnist_labels"], mnist_labels)
        np.testing.assert_array_equal(data["svhn_labels"], svhn_labels)
        assert (data["mnist_labels"][data["pair_mnist"]] == data["pair_label"]).all()
        assert (data["svhn_labels"][data["pair_svhn"]] == data["pair_label"]).all()
        for digit in range(10):
            n = min((mnist_labels == digit).sum(), (svhn_labels == digit).sum())
            assert (data["pair_label"] == digit).sum() == MST_PARAMS["pairs_per_image"] * n
            # the first n images of the class in file order, each used pairs_per_image times
            used = np.bincount(data["pair_mnist"][data["pair_label"] == digit], minlength=len(mnist_labels))
            first_n = np.flatnonzero(mnist_labels == digit)[:n]
            assert (used[first_n] == MST_PARAMS["pairs_per_image"]).all() and used.sum() == used[first_n].sum()


def test_mst_images_are_the_raw_pixels_stored_once(mst_h5, raw_dir):
    data = read_split(mst_h5, MST_SPEC, "train")
    raw_mnist = read_idx_independently(raw_dir / "MNIST/raw/train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data["mnist_images"], raw_mnist)
    raw_svhn = scipy.io.loadmat(raw_dir / "SVHN/train_32x32.mat")["X"]  # [32, 32, 3, N]
    np.testing.assert_array_equal(data["svhn_images"][7], raw_svhn[:, :, :, 7].transpose(2, 0, 1))
    assert len(data["mnist_images"]) == len(raw_mnist)  # pixels not repeated per pair


def test_mst_text_is_the_digit_word_at_a_legal_offset(mst_h5):
    data = read_split(mst_h5, MST_SPEC, "test")
    for row, digit in zip(data["pair_text"], data["pair_label"], strict=True):
        text = alphabet.decode(row)
        word = DIGIT_WORDS[digit]
        assert text.strip() == word and text.index(word) <= 8 - 1 - len(word) and text[-1] == " "


def test_max_per_class_caps_the_pairing(manifests, tmp_path):
    path = build("mnist_svhn_text", manifests, {**MST_PARAMS, "max_per_class": 4}, tmp_path / "capped.h5")
    labels = read_split(path, MST_SPEC, "train")["pair_label"]
    assert (np.bincount(labels, minlength=10) == 4 * MST_PARAMS["pairs_per_image"]).all()


def test_builds_are_byte_identical_for_a_seed_and_differ_across_seeds(manifests, tmp_path, mst_h5, celeba_h5):
    again = build("mnist_svhn_text", manifests, MST_PARAMS, tmp_path / "again.h5")
    assert sha256_file(again) == sha256_file(mst_h5)
    other = build("mnist_svhn_text", manifests, {**MST_PARAMS, "seed": 1}, tmp_path / "other.h5")
    assert sha256_file(other) != sha256_file(mst_h5)
    parallel = build("celeba", manifests, CELEBA_PARAMS, tmp_path / "celeba2.h5", workers=2)
    assert sha256_file(parallel) == sha256_file(celeba_h5)


def test_provenance_attributes(mst_h5, manifests, raw_dir):
    attrs = read_attrs(mst_h5, MST_SPEC)
    assert attrs["format"] == "mmjsd.mnist_svhn_text" and attrs["seed"] == 0 and attrs["builder_version"]
    assert attrs["params"] == MST_PARAMS
    assert attrs["sources"]["mnist"]["MNIST/raw/train-images-idx3-ubyte.gz"] == sha256_file(
        raw_dir / "MNIST/raw/train-images-idx3-ubyte.gz"
    )
    assert attrs["sources"]["svhn"]["SVHN/test_32x32.mat"] == sha256_file(raw_dir / "SVHN/test_32x32.mat")


# ----------------------------------------------------------------------------- CelebA
def _raw_attributes(raw_dir: Path) -> tuple[list[str], dict[str, np.ndarray], dict[str, int]]:
    lines = (raw_dir / "celeba/list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    values = {r.split()[0]: np.array(r.split()[1:], dtype=int) for r in lines[2:]}
    partitions = {
        r.split()[0]: int(r.split()[1]) for r in (raw_dir / "celeba/list_eval_partition.txt").read_text().splitlines()
    }
    return names, values, partitions


def test_celeba_splits_labels_and_text(celeba_h5, raw_dir):
    names, values, partitions = _raw_attributes(raw_dir)
    for split, wanted in (("train", 0), ("test", 1)):
        data = read_split(celeba_h5, CELEBA_SPEC, split)
        ids = [i.decode() for i in data["image_ids"]]
        assert ids == [i for i, p in partitions.items() if p == wanted]
        for row, image_id in enumerate(ids):
            assert (data["labels"][row] == (values[image_id] > 0)).all()
            text = alphabet.decode(data["text"][row])
            assert len(text) == 256
            sentence = text.strip("*")
            expected = [n.replace("_", " ").lower() for n, v in zip(names, values[image_id], strict=True) if v > 0]
            assert sentence.split(", ") == expected if expected else sentence == ""
            start = text.index(sentence) if sentence else 0
            assert start < max(1, 255 - len(sentence))
    assert read_attrs(celeba_h5, CELEBA_SPEC)["attribute_names"] == names


def test_celeba_crop_is_the_right_pixels(celeba_h5, raw_dir):
    data = read_split(celeba_h5, CELEBA_SPEC, "test")
    image_id = data["image_ids"][2].decode()
    face = np.asarray(Image.open(raw_dir / "celeba/img_align_celeba" / image_id).convert("RGB"))
    crop = face[35:183, 15:163]
    expected = np.asarray(Image.fromarray(crop).resize((64, 64), Image.BICUBIC))
    np.testing.assert_array_equal(data["images"][2], expected.transpose(2, 0, 1))


@pytest.mark.parametrize(
    "folder", ["img_align_celeba/", "img_align_celeba/img_align_celeba/", ""], ids=["official", "nested", "flat"]
)
def test_celeba_zip_gives_the_same_dataset(raw_dir, celeba_h5, tmp_path, folder):
    """The official zip, and mirrors' layouts with the folder nested twice or absent."""
    import zipfile

    zipped = tmp_path / "raw"
    shutil.copytree(raw_dir / "celeba", zipped / "celeba", ignore=shutil.ignore_patterns("img_align_celeba"))
    with zipfile.ZipFile(zipped / "celeba/img_align_celeba.zip", "w") as archive:
        for jpg in sorted((raw_dir / "celeba/img_align_celeba").iterdir()):
            archive.write(jpg, f"{folder}{jpg.name}")
    manifest = tmp_path / "celeba.json"
    acquire.main(
        ["--dataset", "celeba", "--source", "directory", "--raw-dir", str(zipped), "--manifest", str(manifest)]
    )
    out = build("celeba", {"celeba": manifest}, CELEBA_PARAMS, tmp_path / "celeba.h5")
    a, b = read_split(out, CELEBA_SPEC, "train"), read_split(celeba_h5, CELEBA_SPEC, "train")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_celeba_folder_nested_twice_says_what_to_move(raw_dir, tmp_path):
    nested = tmp_path / "raw/celeba/img_align_celeba"
    shutil.copytree(raw_dir / "celeba", tmp_path / "raw/celeba", ignore=shutil.ignore_patterns("img_align_celeba"))
    shutil.copytree(raw_dir / "celeba/img_align_celeba", nested / "img_align_celeba")
    args = [
        "--dataset",
        "celeba",
        "--source",
        "directory",
        "--raw-dir",
        str(tmp_path / "raw"),
        "--manifest",
        str(tmp_path / "m.json"),
    ]
    with pytest.raises(UserError, match=r"holds no images but a folder img_align_celeba/: move its JPEGs up one level"):
        acquire.main(args)


def test_celeba_zip_with_an_image_twice_is_refused(raw_dir, tmp_path):
    import zipfile

    zipped = tmp_path / "raw"
    shutil.copytree(raw_dir / "celeba", zipped / "celeba", ignore=shutil.ignore_patterns("img_align_celeba"))
    with zipfile.ZipFile(zipped / "celeba/img_align_celeba.zip", "w") as archive:
        for jpg in sorted((raw_dir / "celeba/img_align_celeba").iterdir()):
            archive.write(jpg, f"img_align_celeba/{jpg.name}")
        archive.write(jpg, f"copy/{jpg.name}")
    args = [
        "--dataset",
        "celeba",
        "--source",
        "directory",
        "--raw-dir",
        str(zipped),
        "--manifest",
        str(tmp_path / "m.json"),
    ]
    with pytest.raises(UserError, match=rf"img_align_celeba\.zip holds {jpg.name} twice"):
        acquire.main(args)


# ---------------------------------------------------------------------------- readers
def test_mst_reader_batches_and_dataset_items(mst_h5):
    split = load_split("mnist_svhn_text", mst_h5, "train")
    data, labels = split.batch(torch.arange(6))
    assert data["mnist"].shape == (6, 1, 28, 28) and data["svhn"].shape == (6, 3, 32, 32)
    assert data["text"].shape == (6, 8, 71) and (data["text"].sum(-1) == 1).all()
    assert data["svhn"].min() >= 0.0 and data["svhn"].max() <= 1.0
    raw = read_split(mst_h5, MST_SPEC, "train")
    np.testing.assert_allclose(
        data["mnist"][3, 0].numpy(), raw["mnist_images"][raw["pair_mnist"][3]] / 255.0, atol=1e-7
    )
    item = ModalityDataset(split)[4]
    assert set(item) == {"mnist", "svhn", "text", "label"} and item["text"].shape == (8, 71)
    assert int(item["label"]) == int(labels[4])


def test_train_text_redraw_is_seeded_and_keeps_the_word(mst_h5):
    split = load_split("mnist_svhn_text", mst_h5, "train")
    frozen = split.text.clone()
    split.redraw_text(seed=3, epoch=1)
    first = split.text.clone()
    split.redraw_text(seed=3, epoch=1)
    assert torch.equal(first, split.text)
    split.redraw_text(seed=3, epoch=2)
    assert not torch.equal(first, split.text) and not torch.equal(frozen, split.text)
    for row, digit in zip(split.text[:50], split.labels[:50], strict=True):
        assert alphabet.decode(row).strip() == DIGIT_WORDS[digit]


def test_celeba_reader(celeba_h5):
    split = load_split("celeba", celeba_h5, "test")
    data, labels = split.batch(torch.tensor([0, 2]))
    assert data["img"].shape == (2, 3, 64, 64) and data["text"].shape == (2, 256, 71)
    assert labels.shape == (2, 40) and labels.dtype == torch.float32


# -------------------------------------------------------------------------- bad input
def _copy_raw(raw_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(raw_dir, dst)
    return dst


def _acquire(name: str, raw: Path, tmp_path: Path) -> Path:
    manifest = tmp_path / f"{name}.json"
    acquire.main(["--dataset", name, "--source", "directory", "--raw-dir", str(raw), "--manifest", str(manifest)])
    return manifest


def test_missing_raw_file_names_it(raw_dir, tmp_path):
    raw = _copy_raw(raw_dir, tmp_path)
    (raw / "MNIST/raw/t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match=r"missing raw file .*t10k-labels-idx1-ubyte\.gz"):
        _acquire("mnist", raw, tmp_path)
    shutil.rmtree(raw / "celeba/img_align_celeba")
    with pytest.raises(UserError, match=r"img_align_celeba.*list_attr_celeba\.txt"):
        _acquire("celeba", raw, tmp_path)


def test_corrupt_gzip_and_mat_are_reported(raw_dir, tmp_path):
    raw = _copy_raw(raw_dir, tmp_path)
    gz = raw / "MNIST/raw/train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\.gz is not a valid gzip file"):
        _acquire("mnist", raw, tmp_path)
    mat = raw / "SVHN/train_32x32.mat"
    mat.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 50)
    with pytest.raises(UserError, match=r"train_32x32\.mat is not a readable MATLAB \.mat file"):
        _acquire("svhn", raw, tmp_path)


def test_label_and_image_count_mismatch(raw_dir, tmp_path):
    raw = _copy_raw(raw_dir, tmp_path)
    labels = raw / "MNIST/raw/train-labels-idx1-ubyte.gz"
    payload = gzip.decompress(labels.read_bytes())
    short = payload[:4] + (299).to_bytes(4, "big") + payload[8:-1]
    labels.write_bytes(gzip.compress(short))
    with pytest.raises(UserError, match=r"has 300 images but .*train-labels-idx1-ubyte\.gz has 299 labels"):
        _acquire("mnist", raw, tmp_path)
    mat = raw / "SVHN/test_32x32.mat"
    contents = scipy.io.loadmat(mat)
    scipy.io.savemat(mat, {"X": contents["X"], "y": contents["y"][:-3]})
    with pytest.raises(UserError, match=r"test_32x32\.mat has 90 images but 87 labels"):
        _acquire("svhn", raw, tmp_path)


def test_celeba_attribute_rows_must_match_images(raw_dir, tmp_path):
    raw = _copy_raw(raw_dir, tmp_path)
    (raw / "celeba/img_align_celeba/000005.jpg").unlink()
    with pytest.raises(
        UserError,
        match=r"1 images listed in .*list_attr_celeba\.txt are not in img_align_celeba/ \(first: 000005\.jpg\)",
    ):
        _acquire("celeba", raw, tmp_path)
    raw = _copy_raw(raw_dir, tmp_path / "b")
    part = raw / "celeba/list_eval_partition.txt"
    lines = part.read_text().splitlines()
    part.write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    with pytest.raises(UserError, match="do not list the same images in the same order"):
        _acquire("celeba", raw, tmp_path)
    raw = _copy_raw(raw_dir, tmp_path / "c")
    attr = raw / "celeba/list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:-1])  # an attribute name dropped from the header
    lines[2:] = [" ".join(line.split()[:-1]) for line in lines[2:]]
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        UserError, match=r"list_attr_celeba\.txt names 39 attributes on its second line, the official file 40"
    ):
        _acquire("celeba", raw, tmp_path)


def test_raw_file_changed_after_acquisition_is_refused(raw_dir, tmp_path):
    raw = _copy_raw(raw_dir, tmp_path)
    manifests = {n: _acquire(n, raw, tmp_path) for n in ("mnist", "svhn")}
    images = raw / "MNIST/raw/t10k-images-idx3-ubyte.gz"
    payload = bytearray(gzip.decompress(images.read_bytes()))
    payload[-1] ^= 0xFF
    images.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz changed since it was acquired"):
        build("mnist_svhn_text", manifests, MST_PARAMS, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_truncated_and_foreign_hdf5_files(mst_h5, tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(mst_h5.read_bytes()[: mst_h5.stat().st_size // 2])
    with pytest.raises(UserError, match=r"truncated\.h5 is truncated or not an HDF5 file"):
        load_split("mnist_svhn_text", truncated, "train")
    with pytest.raises(UserError, match=r"is not a mmjsd\.celeba file"):
        load_split("celeba", mst_h5, "train")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(UserError, match=re.escape("is not a mmjsd.mnist_svhn_text file")):
        load_split("mnist_svhn_text", foreign, "test")
    broken = tmp_path / "broken.h5"
    shutil.copy(mst_h5, broken)
    with h5py.File(broken, "a") as handle:
        del handle["test/pair_text"]
        handle["test"].create_dataset("pair_text", data=np.zeros((5, 8), dtype=np.uint8))
    with pytest.raises(UserError, match="has 5 for dimension P"), open_dataset_file(broken, MST_SPEC):
        pass


def test_failed_build_leaves_no_file_under_the_final_name(manifests, tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5py.Group, "create_dataset", disk_full)
    out = tmp_path / "datasets" / "mnist_svhn_text.h5"
    with pytest.raises(OSError, match="No space left"):
        build("mnist_svhn_text", manifests, MST_PARAMS, out)
    assert list(out.parent.iterdir()) == []


def test_killed_writer_leaves_no_file_under_the_final_name(tmp_path):
    final = tmp_path / "out.h5"
    script = textwrap.dedent(
        f"""
        import os, signal
        from mmjsd.core.io import atomic_path
        with atomic_path({str(final)!r}) as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert not final.exists()
    assert [p.name.startswith(".out.h5.") for p in tmp_path.iterdir()] == [True]


def test_cli_reports_user_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmjsd.acquire",
            "--dataset",
            "svhn",
            "--source",
            "directory",
            "--raw-dir",
            str(tmp_path),
            "--manifest",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: missing raw file") and "Traceback" not in proc.stderr


def test_manifest_records_counts_and_source(manifests):
    manifest = json.loads(manifests["celeba"].read_text())
    assert manifest["source"] == "directory" and manifest["counts"] == {
        "partition0": 40,
        "partition1": 12,
        "partition2": 8,
    }
    assert set(manifest["files"]) >= {"list_attr_celeba.txt", "list_eval_partition.txt"}


# ----------------------------------------------------------------- download source
def test_download_source_uses_torchvision_then_validates(monkeypatch, tmp_path):
    """No network here: torchvision's downloaders are replaced by writers of the official files."""
    import torchvision

    from mmjsd.data import synthetic

    calls = []

    def fake_mnist(root, train, download):
        calls.append(("MNIST", train, download))
        synthetic.generate_mnist(root, 120, 40, seed=5)

    def fake_svhn(root, split, download):
        calls.append(("SVHN", split, download))
        synthetic.generate_svhn(Path(root).parent, 120, 40, seed=5)

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    monkeypatch.setattr(torchvision.datasets, "SVHN", fake_svhn)
    for name in ("mnist", "svhn"):
        acquire.main(
            [
                "--dataset",
                name,
                "--source",
                "download",
                "--raw-dir",
                str(tmp_path),
                "--manifest",
                str(tmp_path / f"{name}.json"),
            ]
        )
        manifest = json.loads((tmp_path / f"{name}.json").read_text())
        assert manifest["source"] == "download" and manifest["counts"] == {"train": 120, "test": 40}
    assert calls == [("MNIST", True, True), ("MNIST", False, True), ("SVHN", "train", True), ("SVHN", "test", True)]


def test_celeba_download_failure_says_where_to_put_the_files(monkeypatch, tmp_path):
    import torchvision

    def quota_exceeded(**kwargs):
        raise RuntimeError("The daily quota of the file img_align_celeba.zip is exceeded")

    monkeypatch.setattr(torchvision.datasets, "CelebA", quota_exceeded)
    with pytest.raises(
        UserError,
        match=r"CelebA download failed \(RuntimeError: The daily quota.*put them in .*celeba/ as .*img_align_celeba/",
    ):
        acquire.main(
            [
                "--dataset",
                "celeba",
                "--source",
                "download",
                "--raw-dir",
                str(tmp_path),
                "--manifest",
                str(tmp_path / "c.json"),
            ]
        )
    assert not (tmp_path / "c.json").exists()


def test_celeba_files_placed_by_hand_are_used_without_downloading(monkeypatch, raw_dir, tmp_path):
    import torchvision

    def must_not_download(**kwargs):
        raise AssertionError("CelebA files are present; nothing should be downloaded")

    monkeypatch.setattr(torchvision.datasets, "CelebA", must_not_download)
    raw = _copy_raw(raw_dir, tmp_path)
    acquire.main(
        ["--dataset", "celeba", "--source", "download", "--raw-dir", str(raw), "--manifest", str(tmp_path / "c.json")]
    )
    assert json.loads((tmp_path / "c.json").read_text())["counts"]["partition0"] == 40
