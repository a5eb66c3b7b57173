"""Step: the paper's qualitative figures from one trained run (Figures 1 and 2, random samples).

    python -m mmjsd.samples --run-dir results/runs/corrected/mnist_svhn_text/mmjsd/seed0 \\
        --data results/datasets/mnist_svhn_text.h5 --out-dir results/figures/corrected --seed 0

Writes PNG and PDF per figure into --out-dir, one figure per kind the dataset's spec
lists (``DatasetSpec.sample_figures``), named ``<dataset>_<variant>_<kind>``
(:func:`output_names`):

* ``conditional_<m>`` (Figure 1, every MNIST-SVHN-Text modality): m generated from all
  other modalities for one test item per class (columns). The given test items fill the
  top rows; every further row is one draw: a fresh z from the subset posterior q(z | X_S)
  in every cell and, for ``-ms`` variants, one prior style shared by the whole row.
* ``<t>_to_<m>`` with a text modality t (Figure 2, CelebA ``text_to_img``): per row one
  test item's text (beside the row) and m generated from it; every column one draw (a
  fresh z per cell, one prior style per column).
* ``random``: every modality decoded from the same prior draws (z ~ N(0, I) and prior
  styles), one panel per modality; cells at the same position share z.

The run is loaded by :func:`mmjsd.evaluation.runs.load_run` (eval mode). Everything is
seeded by --seed (test items by a CPU generator, latent draws by a generator on the
model's device) and decoded under ``torch.inference_mode``. Mixture posteriors (MMVAE,
mmJSD) draw by their stratified selection, so blocks of consecutive draws come from each
unimodal expert, as in the paper's code. Images are
the clamped Laplace means (MNIST in grey), text the argmax characters with the ``*``
padding and outer spaces stripped.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmjsd.core import registry
from mmjsd.core.cli import add_runtime_arguments, main_guard
from mmjsd.core.errors import UserError
from mmjsd.core.registry import FigureLayout
from mmjsd.core.runtime import resolve_device, set_threads
from mmjsd.data import alphabet
from mmjsd.data.readers import CelebASplit, MSTSplit
from mmjsd.evaluation.generation import RANDOM, generate_means
from mmjsd.evaluation.runs import TEST_SPLIT, load_data_split, load_run
from mmjsd.models import MultimodalVAE
from mmjsd.reporting.figures import FIGURE_FORMATS, save_figure
from mmjsd.reporting.outputs import sample_figure_stems

#: Figure 1: one test item per class (columns) and the number of draws (rows).
CONDITIONAL_ITEMS, CONDITIONAL_DRAWS = 10, 5
#: Figure 2: test items (rows) and draws (columns).
TEXT_ITEMS, TEXT_DRAWS = 6, 7
#: Pixels of white space around every image cell.
CELL_PAD = 1
#: Extra room left of the row labels (constrained layout alone cuts long ones slightly).
LEFT_MARGIN_INCHES = 0.15
#: Characters stripped from both ends of displayed text: CelebA's padding, MST's spaces.
TEXT_PADDING = "* \n"


@dataclass
class Panel:
    """One grid of a figure: a modality's data as rows × columns of cells, in batch format per cell.

    ``values`` is ``[R, C, *example shape]`` on the CPU: images ``[R, C, ch, H, W]``, text
    one-hot ``[R, C, L, 71]``. Empty label lists draw no labels.
    """

    modality: str
    values: torch.Tensor
    title: str
    row_labels: list[str]
    col_labels: list[str]

    @property
    def is_image(self) -> bool:
        """Image cells are ``[ch, H, W]``; text cells ``[L, 71]``."""
        return self.values.dim() == 5

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns of cells."""
        return self.values.shape[0], self.values.shape[1]


@dataclass
class SampleFigure:
    """A figure's panels, its title and file stem; ``items`` are the test indices it shows (if any)."""

    stem: str
    title: str
    panels: list[Panel]
    items: torch.Tensor | None = None


# --------------------------------------------------------------------------- names
def output_names(dataset: str, variant: str) -> list[str]:
    """Every file name the step writes for ``dataset`` and ``variant`` (PNG and PDF per figure)."""
    return [f"{stem}.{fmt}" for stem in sample_figure_stems(dataset, variant) for fmt in FIGURE_FORMATS]


# ------------------------------------------------------------------------ sampling
def choose_digit_items(labels: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` test indices: one per digit (0-9, in digit order) where present, then random others.

    The item of each digit is its first in a seeded permutation of the split.
    """
    order = torch.randperm(len(labels), generator=generator)
    shuffled = labels[order]
    chosen = [order[shuffled == digit][0] for digit in range(10) if (shuffled == digit).any()][:count]
    taken = {int(i) for i in chosen}
    fillers = [i for i in order.tolist() if i not in taken][: count - len(chosen)]
    return torch.tensor([int(i) for i in chosen] + fillers, dtype=torch.long)


@torch.inference_mode()
def conditional_samples(
    model: MultimodalVAE, given: dict[str, torch.Tensor], target: str, num_draws: int, generator: torch.Generator
) -> torch.Tensor:
    """``target`` generated from the modalities in ``given`` (B items), as ``[num_draws, B, *example shape]``.

    Draw s of item b decodes the s-th sample of q(z | X_S) of item b with the s-th prior
    style of ``target`` (shared by every item of the draw).
    """
    posterior = model.subset_posterior(model.encode(given), tuple(given))
    z = posterior.sample(num_draws, generator)
    draws, items = z.shape[:2]
    styles = {m: style.repeat_interleave(items, dim=0) for m, style in model.prior_styles(num_draws, generator).items()}
    decoded = model.decode(z.reshape(draws * items, -1), styles, [target])
    generated = model.generate_means(decoded)[target]
    return generated.reshape(draws, items, *generated.shape[1:]).cpu()


@torch.inference_mode()
def random_samples(model: MultimodalVAE, rows: int, cols: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every modality decoded from the same ``rows * cols`` prior draws, each ``[rows, cols, *example shape]``."""
    generated = generate_means(model, {}, [RANDOM], model.modalities, rows * cols, generator)
    return {m: values.reshape(rows, cols, *values.shape[1:]).cpu() for m, values in generated.items()}


def has_styles(model: MultimodalVAE) -> bool:
    """Whether the model has modality-specific style subspaces (an ``-ms`` variant)."""
    return any(dim > 0 for dim in model.style_dims.values())


# ------------------------------------------------------------------------- figures
def conditional_figure(
    model: MultimodalVAE, split: MSTSplit, target: str, stem: str, seed: int, device: torch.device
) -> SampleFigure:
    """Figure 1 for ``target``: given modalities of one test item per class
    on top, ``CONDITIONAL_DRAWS`` draws below."""
    given = [m for m in model.modalities if m != target]
    items = choose_digit_items(split.labels.cpu(), CONDITIONAL_ITEMS, torch.Generator().manual_seed(seed))
    batch, labels = split.batch(items)
    inputs = {m: batch[m].to(device) for m in given}
    draws = conditional_samples(model, inputs, target, CONDITIONAL_DRAWS, torch.Generator(device).manual_seed(seed))
    digit_labels = [f"digit {int(label)}" for label in labels]
    panels = [
        Panel(m, batch[m].cpu()[None], "given test items" if k == 0 else "", [m], digit_labels if k == 0 else [])
        for k, m in enumerate(given)
    ]
    style = " (one prior style per row)" if has_styles(model) else ""
    title = f"generated {target} from {'+'.join(given)}: one draw per row{style}"
    panels.append(Panel(target, draws, title, [f"draw {s + 1}" for s in range(CONDITIONAL_DRAWS)], []))
    return SampleFigure(stem, f"{'+'.join(given)} → {target}", panels, items)


def text_conditional_figure(
    model: MultimodalVAE, split: CelebASplit, given: str, target: str, stem: str, seed: int, device: torch.device
) -> SampleFigure:
    """Figure 2: per row a random test item's text ``given`` (as row label) and
    ``TEXT_DRAWS`` samples of ``target`` from it."""
    count = min(TEXT_ITEMS, len(split))
    items = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count]
    batch, _ = split.batch(items)
    generator = torch.Generator(device).manual_seed(seed)
    draws = conditional_samples(model, {given: batch[given].to(device)}, target, TEXT_DRAWS, generator)
    wrap = registry.dataset(model.dataset).figure_layout.label_wrap
    texts = [textwrap.fill(text, wrap) for text in text_strings(batch[given].cpu()[None])[0]]
    style = " (one prior style per column)" if has_styles(model) else ""
    title = f"{target} generated from the {given} of test items: one draw per column{style}"
    panel = Panel(target, draws.transpose(0, 1), title, texts, [f"draw {s + 1}" for s in range(TEXT_DRAWS)])
    return SampleFigure(stem, f"{given} → {target}", [panel], items)


def random_figure(model: MultimodalVAE, stem: str, seed: int, device: torch.device) -> SampleFigure:
    """Random samples of every modality from the same prior draws, one panel per modality."""
    rows, cols = registry.dataset(model.dataset).figure_layout.random_grid
    generated = random_samples(model, rows, cols, torch.Generator(device).manual_seed(seed))
    panels = [Panel(m, generated[m], m, [], []) for m in model.modalities]
    styles = ", prior styles" if has_styles(model) else ""
    return SampleFigure(stem, f"random samples: z ~ N(0, I){styles}; cells at the same position share z", panels)


def build_figure(
    kind: str, model: MultimodalVAE, split: MSTSplit | CelebASplit, stem: str, seed: int, device: torch.device
) -> SampleFigure:
    """The figure of one kind of ``DatasetSpec.sample_figures`` (see the module docstring)."""
    if kind == "random":
        return random_figure(model, stem, seed, device)
    if kind.startswith("conditional_"):
        return conditional_figure(model, split, kind.removeprefix("conditional_"), stem, seed, device)
    given, target = kind.split("_to_", 1)
    return text_conditional_figure(model, split, given, target, stem, seed, device)


def build_figures(
    model: MultimodalVAE, variant: str, split: MSTSplit | CelebASplit, seed: int, device: torch.device
) -> list[SampleFigure]:
    """Every figure of a run of ``variant`` with ``model`` (in eval mode), in
    :func:`~mmjsd.reporting.outputs.sample_figure_stems` order."""
    if len(split) == 0:
        raise UserError("the test split is empty; there are no items to condition on")
    kinds = registry.dataset(model.dataset).sample_figures
    stems = sample_figure_stems(model.dataset, variant)
    return [build_figure(kind, model, split, stem, seed, device) for kind, stem in zip(kinds, stems, strict=True)]


# ----------------------------------------------------------------------- rendering
def text_strings(one_hot: torch.Tensor) -> list[list[str]]:
    """Displayed strings of one-hot text ``[R, C, L, 71]``: characters of the argmax, padding stripped."""
    indices = one_hot.argmax(-1)
    return [[alphabet.decode(cell).strip(TEXT_PADDING) for cell in row] for row in indices]


def tile_images(images: torch.Tensor) -> np.ndarray:
    """One ``[R*(H+2p), C*(W+2p), ch]`` float array of images ``[R, C, ch, H, W]``, white between cells."""
    rows, cols, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images.clamp(0.0, 1.0), (CELL_PAD,) * 4, value=1.0)
    tiled = padded.permute(0, 3, 1, 4, 2).reshape(
        rows * (height + 2 * CELL_PAD), cols * (width + 2 * CELL_PAD), channels
    )
    return tiled.numpy()


def draw_image_grid(axes: Axes, images: torch.Tensor) -> None:
    """Images ``[R, C, ch, H, W]`` in cells of unit size (cell (r, c) spans
    [c, c+1] × [r, r+1]); one channel in grey."""
    rows, cols = images.shape[:2]
    tiled = tile_images(images)
    grey = tiled.shape[-1] == 1
    pixels, cmap = (tiled[..., 0], "gray") if grey else (tiled, None)
    axes.imshow(pixels, cmap=cmap, vmin=0.0, vmax=1.0, extent=(0, cols, rows, 0), interpolation="nearest")


def draw_text_grid(axes: Axes, one_hot: torch.Tensor, layout: FigureLayout) -> None:
    """Text ``[R, C, L, 71]`` as wrapped monospace strings centred in unit cells, with light cell borders."""
    strings = text_strings(one_hot)
    rows, cols = len(strings), len(strings[0])
    for r, row in enumerate(strings):
        for c, text in enumerate(row):
            shown = textwrap.fill(text, layout.text_wrap) or "(empty)"
            axes.text(
                c + 0.5,
                r + 0.5,
                shown,
                ha="center",
                va="center",
                family="monospace",
                fontsize=layout.text_points,
                parse_math=False,
            )
    axes.set_xlim(0, cols)
    axes.set_ylim(rows, 0)
    axes.set_xticks(range(cols + 1), minor=True)
    axes.set_yticks(range(rows + 1), minor=True)
    axes.grid(which="minor", color="0.8", linewidth=0.6)
    axes.tick_params(which="minor", length=0)


def label_cells(axes: Axes, panel: Panel, layout: FigureLayout) -> None:
    """Row labels on the left, column labels on top, the title on the left; no frame."""
    rows, cols = panel.shape
    axes.set_xticks(
        [c + 0.5 for c in range(cols)] if panel.col_labels else [],
        panel.col_labels,
        fontsize=layout.label_points,
        parse_math=False,
    )
    axes.set_yticks(
        [r + 0.5 for r in range(rows)] if panel.row_labels else [],
        panel.row_labels,
        fontsize=layout.label_points,
        parse_math=False,
    )
    axes.xaxis.tick_top()
    axes.tick_params(which="major", length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if panel.title:
        axes.set_title(panel.title, loc="left", fontsize=layout.label_points + 1)


def panel_height(panel: Panel, layout: FigureLayout) -> float:
    """Inches a panel's cells need: square image cells, fixed-height text rows."""
    rows, _ = panel.shape
    return rows * (layout.cell_inches if panel.is_image else layout.text_row_inches)


def label_width(panels: Sequence[Panel], layout: FigureLayout) -> float:
    """Inches for the widest row label line (monospace-ish estimate: 0.6 em per character)."""
    lines = [line for panel in panels for label in panel.row_labels for line in label.splitlines()]
    characters = max((len(line) for line in lines), default=0)
    return characters * 0.6 * layout.label_points / 72


def render(spec: SampleFigure, dataset: str, run_title: str) -> Figure:
    """The figure of ``spec``: panels stacked vertically (same columns), each sized to its cells.

    Height ratios are the cells' heights alone (constrained layout keeps titles and tick
    labels outside them); the figure's height adds room for those decorations.
    """
    layout = registry.dataset(dataset).figure_layout
    cols = spec.panels[0].shape[1]
    heights = [panel_height(panel, layout) for panel in spec.panels]
    decorations = sum(0.1 + 0.25 * (bool(panel.title) + bool(panel.col_labels)) for panel in spec.panels)
    width = cols * layout.cell_inches + label_width(spec.panels, layout) + 0.5
    figure = Figure(figsize=(max(width, 6.0), sum(heights) + decorations + 0.6), layout="constrained")
    margin = LEFT_MARGIN_INCHES / figure.get_figwidth()
    figure.get_layout_engine().set(rect=(margin, 0.0, 1.0 - margin, 1.0))
    FigureCanvasAgg(figure)
    for axes, panel in zip(
        figure.subplots(len(spec.panels), 1, squeeze=False, height_ratios=heights).flat, spec.panels, strict=True
    ):
        if panel.is_image:
            draw_image_grid(axes, panel.values)
        else:
            draw_text_grid(axes, panel.values, layout)
        label_cells(axes, panel, layout)
    figure.suptitle(f"{run_title}\n{spec.title}", fontsize=10)
    return figure


def write_figures(run_dir: Path, data: Path, out_dir: Path, seed: int, device: torch.device) -> list[Path]:
    """Load the run and its test split, build every figure and write it as PNG and PDF; returns the paths."""
    run = load_run(run_dir, device)
    split = load_data_split(run.dataset, data, TEST_SPLIT, device)
    title = registry.dataset(run.dataset).title
    run_title = (
        f"{title}, {registry.variant_label(run.variant)}: run seed {run.seed}, epoch {run.epoch}, sampling seed {seed}"
    )
    paths = []
    for spec in build_figures(run.model, run.variant, split, seed, device):
        paths += save_figure(render(spec, run.dataset, run_title), Path(out_dir) / spec.stem)
    return paths


# ------------------------------------------------------------------------------- CLI
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments of ``python -m mmjsd.samples``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.samples", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-dir",
        required=True,
        type=Path,
        help="training run directory holding model.pt (runs/<protocol>/<dataset>/<variant>/seed<k>)",
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="HDF5 dataset of the run's dataset (its test split is used)"
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="directory for the figure files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test items and latent draws")
    add_runtime_arguments(parser, progress=False)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Write the figures and print (and return) their paths."""
    args = parse_args(argv)
    set_threads(args.threads)
    paths = write_figures(args.run_dir, args.data, args.out_dir, args.seed, resolve_device(args.device))
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main_guard(main)
