"""Qualitative figures from an untrained run on the synthetic test splits: files, content, seeding, errors."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
import torch

from helpers import MST_MODALITIES, celeba_config, mst_config, save_untrained_run
from mmjsd import samples
from mmjsd.core.errors import UserError
from mmjsd.data import alphabet
from mmjsd.data.readers import load_split
from mmjsd.evaluation.runs import load_run
from mmjsd.models import build_model
from mmjsd.models.posteriors import GaussianPosterior
from mmjsd.reporting.figures import save_figure
from mmjsd.reporting.outputs import sample_figure_stems

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mst_run(mst_h5, tmp_path_factory) -> Path:
    return save_untrained_run(
        tmp_path_factory.mktemp("runs") / "mmjsd-ms", "mnist_svhn_text", "mmjsd-ms", mst_config(ms=True), mst_h5
    )


@pytest.fixture(scope="module")
def celeba_run(celeba_h5, tmp_path_factory) -> Path:
    return save_untrained_run(
        tmp_path_factory.mktemp("runs") / "mopoe-ms", "celeba", "mopoe-ms", celeba_config(), celeba_h5
    )


def figures(run_dir: Path, data: Path, seed: int) -> list[samples.SampleFigure]:
    run = load_run(run_dir, torch.device("cpu"))
    return samples.build_figures(
        run.model, run.variant, load_split(run.dataset, data, "test"), seed, torch.device("cpu")
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking the signature)."""
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def check_files(out_dir: Path, written: list[Path], expected: list[str]) -> None:
    """Exactly the promised files, each a PNG or PDF of figure size."""
    assert [p.name for p in written] == expected
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(expected)
    for path in written:
        if path.suffix == ".png":
            width, height = png_size(path)
            assert width >= 800 and height >= 600, (path.name, width, height)
        else:
            assert path.read_bytes().startswith(b"%PDF") and path.stat().st_size > 5000, path.name


@pytest.mark.parametrize("kind", ["mst", "celeba"])
def test_cli_writes_the_promised_files(kind, request, tmp_path):
    run_dir, data = request.getfixturevalue(f"{kind}_run"), request.getfixturevalue(f"{kind}_h5")
    out_dir = tmp_path / "figures"
    arguments = [
        "--run-dir",
        str(run_dir),
        "--data",
        str(data),
        "--out-dir",
        str(out_dir),
        "--seed",
        "3",
        "--threads",
        "1",
    ]
    written = samples.main(arguments)
    dataset, variant = ("mnist_svhn_text", "mmjsd-ms") if kind == "mst" else ("celeba", "mopoe-ms")
    check_files(out_dir, written, samples.output_names(dataset, variant))


def test_output_names_depend_on_dataset_and_variant_only():
    assert samples.output_names("mnist_svhn_text", "mvae") == [
        "mnist_svhn_text_mvae_conditional_mnist.png",
        "mnist_svhn_text_mvae_conditional_mnist.pdf",
        "mnist_svhn_text_mvae_conditional_svhn.png",
        "mnist_svhn_text_mvae_conditional_svhn.pdf",
        "mnist_svhn_text_mvae_conditional_text.png",
        "mnist_svhn_text_mvae_conditional_text.pdf",
        "mnist_svhn_text_mvae_random.png",
        "mnist_svhn_text_mvae_random.pdf",
    ]
    assert samples.output_names("celeba", "mmjsd-ms") == [
        "celeba_mmjsd-ms_text_to_img.png",
        "celeba_mmjsd-ms_text_to_img.pdf",
        "celeba_mmjsd-ms_random.png",
        "celeba_mmjsd-ms_random.pdf",
    ]


def test_mst_columns_are_one_test_item_per_digit(mst_run, mst_h5):
    split = load_split("mnist_svhn_text", mst_h5, "test")
    conditional = figures(mst_run, mst_h5, seed=1)[: len(MST_MODALITIES)]  # then the random-generation figure
    for figure, target in zip(conditional, MST_MODALITIES, strict=True):
        assert split.labels[figure.items].tolist() == list(range(10))
        batch, _ = split.batch(figure.items)
        *given, generated = figure.panels
        assert [p.modality for p in figure.panels] == [m for m in MST_MODALITIES if m != target] + [target]
        for panel in given:
            assert torch.equal(panel.values[0], batch[panel.modality])
        assert given[0].col_labels == [f"digit {d}" for d in range(10)]
        assert generated.values.shape[:2] == (samples.CONDITIONAL_DRAWS, 10)
        assert generated.row_labels == [f"draw {s + 1}" for s in range(samples.CONDITIONAL_DRAWS)]


def test_celeba_rows_show_the_test_items_text(celeba_run, celeba_h5):
    split = load_split("celeba", celeba_h5, "test")
    text_figure, random_figure = figures(celeba_run, celeba_h5, seed=0)
    panel = text_figure.panels[0]
    assert panel.values.shape == (len(text_figure.items), samples.TEXT_DRAWS, 3, 64, 64)
    texts = [alphabet.decode(split.text[i]).strip("*") for i in text_figure.items]
    assert [label.replace("\n", " ") for label in panel.row_labels] == texts
    assert all("*" not in label for label in panel.row_labels)
    assert [p.modality for p in random_figure.panels] == ["img", "text"]


def test_figures_are_seeded(mst_run, mst_h5):
    first, again, other = (figures(mst_run, mst_h5, seed) for seed in (5, 5, 6))
    for a, b in zip(first, again, strict=True):
        assert a.stem == b.stem
        assert all(torch.equal(p.values, q.values) for p, q in zip(a.panels, b.panels, strict=True))
    assert not torch.equal(first[0].panels[-1].values, other[0].panels[-1].values)
    assert not torch.equal(first[-1].panels[0].values, other[-1].panels[0].values)


def test_rendered_files_are_byte_identical(mst_run, mst_h5, tmp_path):
    """No time stamps or other run-dependent bytes: equal seeds give equal PNG and PDF files."""
    written = [
        save_figure(
            samples.render(figures(mst_run, mst_h5, seed=2)[-1], "mnist_svhn_text", "title"), tmp_path / name / "random"
        )
        for name in ("first", "second")
    ]
    assert [p.read_bytes() for p in written[0]] == [p.read_bytes() for p in written[1]]


def test_models_without_styles_draw_only_z(mst_h5):
    """A plain variant (no style subspaces) gets every figure, without style notes in the titles."""
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", "mvae", mst_config(ms=False)).eval()
    built = samples.build_figures(model, "mvae", load_split("mnist_svhn_text", mst_h5, "test"), 0, torch.device("cpu"))
    assert [f.stem for f in built] == sample_figure_stems("mnist_svhn_text", "mvae")
    assert all("style" not in panel.title for figure in built for panel in figure.panels)
    assert "style" not in built[-1].title


def test_each_draw_shares_one_prior_style(monkeypatch):
    """With a point-mass posterior equal for all items, cells of a draw are equal and draws differ (by style only)."""
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", "mmjsd-ms", mst_config(ms=True)).eval()
    point_mass = GaussianPosterior(torch.zeros(4, model.shared_dim), torch.full((4, model.shared_dim), -60.0))
    monkeypatch.setattr(model, "subset_posterior", lambda encodings, subset: point_mass)
    given = {"svhn": torch.rand(4, 3, 32, 32), "text": torch.rand(4, 8, 71)}
    draws = samples.conditional_samples(model, given, "mnist", 3, torch.Generator().manual_seed(0))
    assert draws.shape == (3, 4, 1, 28, 28)
    for draw in draws:
        assert all(torch.allclose(draw[0], cell, atol=1e-6) for cell in draw[1:])
    assert not torch.allclose(draws[0], draws[1], atol=1e-3)


def test_choose_digit_items_fills_missing_digits():
    labels = torch.tensor([3, 3, 7, 1, 7, 3, 1, 1])
    items = samples.choose_digit_items(labels, 5, torch.Generator().manual_seed(0))
    assert labels[items[:3]].tolist() == [1, 3, 7]
    assert len(items) == 5 and len(set(items.tolist())) == 5


def test_text_strings_strip_padding():
    text = torch.stack([torch.from_numpy(alphabet.one_hot(alphabet.encode(s))) for s in ("**smile*", "  two   ")])
    assert samples.text_strings(text.reshape(1, 2, -1, 71)) == [["smile", "two"]]


def test_missing_inputs_are_clear_errors(mst_run, mst_h5, celeba_h5, tmp_path):
    out = ["--out-dir", str(tmp_path / "figures")]
    with pytest.raises(UserError, match=re.escape("model.pt does not exist")):
        samples.main(["--run-dir", str(tmp_path / "nowhere"), "--data", str(mst_h5)] + out)
    with pytest.raises(UserError, match=re.escape("missing.h5 does not exist")):
        samples.main(["--run-dir", str(mst_run), "--data", str(tmp_path / "missing.h5")] + out)
    with pytest.raises(UserError, match=re.escape("celeba.h5")):
        samples.main(["--run-dir", str(mst_run), "--data", str(celeba_h5)] + out)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="unreadable"):
        samples.main(["--run-dir", str(broken), "--data", str(mst_h5)] + out)
    assert not (tmp_path / "figures").exists()
