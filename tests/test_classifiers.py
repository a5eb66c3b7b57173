"""Coherence classifiers (docs/reference-code.md §2.6): architectures, training step, loading, predictions.

Training runs use tiny, easily separable datasets written here with ``write_dataset_file``:
each digit is a bright block at its own place (MNIST, SVHN) and the text is the digit
word. The training texts keep the word at offset 0 in the file, so classifying words at
every legal offset shows the step re-draws offsets per epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmjsd.classifiers.loading import load_classifier
from mmjsd.classifiers.networks import build_classifier
from mmjsd.classifiers.predict import attribute_scores, penultimate_features, predict_labels
from mmjsd.core import registry
from mmjsd.core.cli import main_guard
from mmjsd.core.errors import UserError
from mmjsd.data import alphabet
from mmjsd.data.hdf5 import CELEBA_SPEC, MST_SPEC, write_dataset_file
from mmjsd.data.readers import text_one_hot
from mmjsd.train_classifier import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MST = "mnist_svhn_text"
MST_TEXT_LENGTH = 8
CELEBA_TEXT_LENGTH = 256
PARAMS = {"epochs": 4, "lr": 2.0e-3, "batch_size": 32, "seed": 3, "feature_seed": 4}
DOCUMENTED_KEYS = {"dataset", "modality", "role", "seed", "epochs", "n_train", "n_test"}

INPUT_SHAPES = {
    (MST, "mnist"): (1, 28, 28),
    (MST, "svhn"): (3, 32, 32),
    (MST, "text"): (MST_TEXT_LENGTH, 71),
    ("celeba", "img"): (3, 64, 64),
    ("celeba", "text"): (CELEBA_TEXT_LENGTH, 71),
}
FEATURE_DIMS = {
    (MST, "mnist"): 128,
    (MST, "svhn"): 128,
    (MST, "text"): 128,
    ("celeba", "img"): 640,
    ("celeba", "text"): 896,
}
OUTPUTS = {MST: 10, "celeba": 40}


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------ tiny datasets
def block_images(labels: np.ndarray, shape: tuple[int, ...], block: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 images: dim noise plus a bright block whose place encodes the digit (5 columns × 2 rows)."""
    images = rng.integers(0, 60, size=(len(labels), *shape), dtype=np.uint8)
    height, width = shape[-2:]
    for i, digit in enumerate(labels):
        top = (digit // 5) * (height // 2) + 3
        left = (digit % 5) * (width // 5)
        images[i, ..., top : top + block, left : left + block] = 255
    return images


def mst_split(per_class: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One MST split: ``per_class`` images of each digit per modality,
    image i paired with image i, words at offset 0."""
    labels = np.repeat(np.arange(10), per_class)
    return {
        "mnist_images": block_images(labels, (28, 28), 5, rng),
        "mnist_labels": labels,
        "svhn_images": block_images(labels, (3, 32, 32), 6, rng),
        "svhn_labels": labels,
        "pair_mnist": np.arange(len(labels)),
        "pair_svhn": np.arange(len(labels)),
        "pair_label": labels,
        "pair_text": alphabet.digit_texts(labels, np.zeros(len(labels), dtype=np.int64), MST_TEXT_LENGTH),
    }


@pytest.fixture(scope="module")
def mst_file(tmp_path_factory) -> Path:
    """300 training and 100 test examples per MST modality."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "mnist_svhn_text.h5"
    splits = {"train": mst_split(30, rng), "test": mst_split(10, rng)}
    write_dataset_file(path, MST_SPEC, splits, {"seed": 0, "params": {}, "sources": {}})
    return path


def celeba_split(size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random images, texts and attributes (every attribute present at least once)."""
    labels = rng.integers(0, 2, size=(size, 40))
    labels[0] = 1
    return {
        "images": rng.integers(0, 256, size=(size, 3, 64, 64), dtype=np.uint8),
        "labels": labels,
        "text": rng.integers(0, 71, size=(size, CELEBA_TEXT_LENGTH)),
        "image_ids": np.array([f"{i:06d}.jpg".encode() for i in range(size)]),
    }


@pytest.fixture(scope="module")
def celeba_file(tmp_path_factory) -> Path:
    """4 training and 3 test CelebA examples: enough for one step at batch 4."""
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "celeba.h5"
    write_dataset_file(
        path,
        CELEBA_SPEC,
        {"train": celeba_split(4, rng), "test": celeba_split(3, rng)},
        {"seed": 0, "params": {}, "sources": {}},
    )
    return path


def train_args(dataset: str, modality: str, role: str, data: Path, out_dir: Path, params: dict = PARAMS) -> list[str]:
    """Command line of one CPU, single-thread training run without a progress bar."""
    return [
        "--dataset", dataset, "--modality", modality, "--role", role, "--params", json.dumps(params),
        "--data", str(data), "--out-dir", str(out_dir), "--device", "cpu", "--threads", "1", "--no-progress",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained_mst(mst_file, tmp_path_factory) -> dict[str, Path]:
    """Coherence classifiers of the three MST modalities trained by the CLI; modality → out dir."""
    root = tmp_path_factory.mktemp("classifiers")
    out_dirs = {}
    for modality in ("mnist", "svhn", "text"):
        out_dirs[modality] = root / modality
        main(train_args(MST, modality, "coherence", mst_file, out_dirs[modality]))
    return out_dirs


# ------------------------------------------------------------------ architectures
def test_mst_parameter_counts_are_the_reference_ones():
    counts = {modality: count_parameters(build_classifier(MST, modality)) for modality in ("mnist", "svhn", "text")}
    assert counts == {"mnist": 165_866, "svhn": 233_066, "text": 459_850}


#: docs/reference-code.md §2.6 gives 21.5 M (image) and 16.3 M (text); measured 21,502,632 and 16,261,544.
CELEBA_REFERENCE_MILLIONS = {"img": 21.5, "text": 16.3}


@pytest.mark.parametrize("modality", ["img", "text"])
def test_celeba_parameter_counts_match_the_reference_within_0_1_million(modality):
    count = count_parameters(build_classifier("celeba", modality))
    assert abs(count / 1e6 - CELEBA_REFERENCE_MILLIONS[modality]) < 0.1


@pytest.mark.parametrize(
    ("dataset", "modality"), [(spec.name, m) for spec in registry.DATASETS for m in spec.modalities]
)
def test_forward_and_feature_shapes(dataset, modality):
    torch.manual_seed(0)
    classifier = build_classifier(dataset, modality)
    x = torch.rand(2, *INPUT_SHAPES[(dataset, modality)])
    logits = classifier(x)  # train mode: one forward/backward at batch 2 is all the big CelebA nets get
    logits.sum().backward()
    assert logits.shape == (2, OUTPUTS[dataset])
    assert all(p.grad is not None for p in classifier.parameters())
    classifier.eval()
    assert classifier.features(x).shape == (2, FEATURE_DIMS[(dataset, modality)])


def test_features_are_the_input_of_the_last_linear_layer_in_eval_mode():
    classifier = build_classifier(MST, "mnist").eval()
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(classifier.head(classifier.features(x)), classifier(x))


# ---------------------------------------------------------------- training (CLI)
def test_short_training_reaches_high_test_accuracy(trained_mst):
    for modality, out_dir in trained_mst.items():
        metrics = json.loads((out_dir / "metrics.json").read_text())
        assert metrics["test_accuracy"] >= 0.95, modality


def test_cli_writes_documented_files(trained_mst, mst_file):
    metrics = json.loads((trained_mst["svhn"] / "metrics.json").read_text())
    assert DOCUMENTED_KEYS | {"test_accuracy"} <= set(metrics)
    assert (metrics["dataset"], metrics["modality"], metrics["role"], metrics["seed"]) == (
        MST,
        "svhn",
        "coherence",
        PARAMS["seed"],
    )
    assert (metrics["epochs"], metrics["n_train"], metrics["n_test"]) == (PARAMS["epochs"], 300, 100)
    assert len(metrics["train_loss"]) == PARAMS["epochs"] and metrics["train_loss"][-1] < metrics["train_loss"][0]
    record = torch.load(trained_mst["svhn"] / "model.pt", weights_only=True)
    assert {k: record[k] for k in ("dataset", "modality", "role", "seed", "architecture")} == {
        "dataset": MST,
        "modality": "svhn",
        "role": "coherence",
        "seed": PARAMS["seed"],
        "architecture": "mmjsd.classifiers.networks:svhn_classifier",
    }


def test_text_classifier_reads_the_word_at_every_legal_offset(trained_mst):
    """The file's training texts all start at offset 0; only per-epoch re-drawing teaches the other offsets."""
    digits = np.arange(10)
    labels = np.concatenate(
        [np.full(high + 1, d) for d, high in zip(digits, alphabet.max_word_start(digits, MST_TEXT_LENGTH), strict=True)]
    )
    starts = np.concatenate([np.arange(high + 1) for high in alphabet.max_word_start(digits, MST_TEXT_LENGTH)])
    texts = text_one_hot(torch.from_numpy(alphabet.digit_texts(labels, starts, MST_TEXT_LENGTH)))
    classifier = load_classifier(trained_mst["text"], "cpu", dataset=MST, modality="text")
    assert predict_labels(classifier, texts).tolist() == labels.tolist()


def test_same_seed_gives_identical_weights_and_features_role_differs(mst_file, tmp_path):
    quick = PARAMS | {"epochs": 1}
    for name, role in (("first", "coherence"), ("second", "coherence"), ("features", "features")):
        main(train_args(MST, "mnist", role, mst_file, tmp_path / name, quick))
    weights = {
        name: torch.load(tmp_path / name / "model.pt", weights_only=True)["state_dict"]
        for name in ("first", "second", "features")
    }
    assert all(torch.equal(weights["first"][k], weights["second"][k]) for k in weights["first"])
    assert not torch.equal(weights["first"]["head.weight"], weights["features"]["head.weight"])
    metrics = json.loads((tmp_path / "features" / "metrics.json").read_text())
    assert (metrics["role"], metrics["seed"]) == ("features", PARAMS["feature_seed"])


def test_celeba_cli_one_step_writes_mean_ap(celeba_file, tmp_path):
    params = PARAMS | {"epochs": 1, "batch_size": 4}
    main(train_args("celeba", "img", "coherence", celeba_file, tmp_path / "img", params))
    metrics = json.loads((tmp_path / "img" / "metrics.json").read_text())
    assert DOCUMENTED_KEYS | {"test_mean_ap"} <= set(metrics) and "test_accuracy" not in metrics
    assert 0.0 <= metrics["test_mean_ap"] <= 1.0 and (metrics["n_train"], metrics["n_test"]) == (4, 3)
    classifier = load_classifier(tmp_path / "img", "cpu", dataset="celeba", modality="img", role="coherence")
    scores = attribute_scores(classifier, torch.rand(3, 3, 64, 64), batch_size=2)
    assert scores.shape == (3, 40) and ((scores > 0) & (scores < 1)).all()


# ------------------------------------------------------------------------ loading
def test_loaded_classifier_is_in_eval_mode_and_deterministic(trained_mst):
    classifier = load_classifier(trained_mst["svhn"], "cpu", dataset=MST, modality="svhn")
    assert not any(module.training for module in classifier.modules())
    x = torch.rand(50, 3, 32, 32)
    first = predict_labels(classifier, x, batch_size=7)
    assert torch.equal(first, predict_labels(classifier, x)) and first.shape == (50,)
    torch.testing.assert_close(penultimate_features(classifier, x, batch_size=7), penultimate_features(classifier, x))
    assert classifier.record["role"] == "coherence"


def test_loading_errors_are_clear(trained_mst, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_classifier(tmp_path / "nowhere", "cpu")
    with pytest.raises(UserError, match="modality 'text', but modality 'mnist'"):
        load_classifier(trained_mst["text"], "cpu", dataset=MST, modality="mnist")
    with pytest.raises(UserError, match="role 'coherence', but role 'features'"):
        load_classifier(trained_mst["mnist"], "cpu", role="features")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="unreadable"):
        load_classifier(tmp_path / "broken", "cpu")


# --------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("dataset", "modality", "role", "message"),
    [
        (MST, "text", "features", "only for image modalities"),
        ("celeba", "text", "features", "only for image modalities"),
        (MST, "img", "coherence", "has no modality 'img'"),
    ],
)
def test_bad_requests_fail_before_reading_data(dataset, modality, role, message, tmp_path):
    with pytest.raises(UserError, match=message):
        main(train_args(dataset, modality, role, tmp_path / "absent.h5", tmp_path / "out"))


def test_missing_data_file_exits_with_status_2_and_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main_guard(main, train_args(MST, "mnist", "coherence", tmp_path / "absent.h5", tmp_path / "out"))
    assert exit_info.value.code == 2
    assert "absent.h5 does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
