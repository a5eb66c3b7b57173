"""Synthetic digit images: MNIST-like handwriting and SVHN-like house-number crops.

No font files are assumed (CI machines are bare): every digit is a small set of strokes
(polylines and elliptic arcs) in one of several glyph styles defined below. Each image draws
its own smooth wobble, slant, rotation, aspect, size, position and stroke width; the strokes
are rendered with PIL at 4x resolution and box-downsampled, which gives MNIST's soft edges.
Colour, blur and noise for SVHN are applied to whole batches with numpy.

Glyph units: x to the right, y downwards, the glyph body spans y in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

_SUPERSAMPLE = 4
MNIST_SIZE = 28
SVHN_SIZE = 32

# A stroke: points [k, 2] in glyph units and a width factor (serif fonts mix thick and thin).
Stroke = tuple[np.ndarray, float]


@dataclass(frozen=True)
class GlyphStyle:
    """A digit font: ten glyphs (index = digit), each a tuple of strokes."""

    name: str
    glyphs: tuple[tuple[Stroke, ...], ...]
    round_caps: bool


def _arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float) -> np.ndarray:
    """Points along an ellipse arc; angles in degrees, 0 = right, 90 = up (drawn on screen)."""
    count = max(4, int(abs(end_deg - start_deg) / 12) + 1)
    angles = np.deg2rad(np.linspace(start_deg, end_deg, count))
    return np.stack([cx + rx * np.cos(angles), cy - ry * np.sin(angles)], axis=1)


def _poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=float)


def _path(*parts: np.ndarray) -> np.ndarray:
    """One continuous stroke through several pieces (arcs, polylines) in order."""
    return np.concatenate(parts, axis=0)


def _figure_eight(cx: float, half_width: float) -> np.ndarray:
    """A single-stroke figure eight (Gerono lemniscate) from the top, as an 8 is handwritten."""
    t = np.linspace(0.0, 2.0 * np.pi, 49)
    return np.stack([cx - half_width * np.sin(2.0 * t), 0.5 - 0.5 * np.cos(t)], axis=1)


def _glyph(*strokes: np.ndarray | Stroke) -> tuple[Stroke, ...]:
    """Strokes of one glyph; a bare point array means width factor 1."""
    return tuple(stroke if isinstance(stroke, tuple) else (stroke, 1.0) for stroke in strokes)


def _hand_round_glyphs() -> tuple[tuple[Stroke, ...], ...]:
    """American-school handwriting: plain 1, open 4, plain 7, round loops."""
    return (
        _glyph(_arc(0.3, 0.5, 0.3, 0.5, 100, 470)),
        _glyph(_poly((0.3, 0.0), (0.3, 1.0))),
        _glyph(_path(_arc(0.3, 0.28, 0.28, 0.28, 160, -30), _poly((0.02, 1.0), (0.62, 0.98)))),
        _glyph(_path(_arc(0.3, 0.26, 0.27, 0.26, 150, -90), _arc(0.3, 0.74, 0.3, 0.26, 90, -160))),
        _glyph(_poly((0.1, 0.0), (0.02, 0.62), (0.62, 0.62)), _poly((0.46, 0.15), (0.46, 1.0))),
        _glyph(_path(_poly((0.58, 0.0), (0.12, 0.0), (0.1, 0.47)), _arc(0.3, 0.7, 0.28, 0.3, 130, -150))),
        _glyph(_path(_arc(0.6, 0.65, 0.55, 0.65, 105, 178), _arc(0.32, 0.72, 0.27, 0.27, 180, -180))),
        _glyph(_poly((0.0, 0.02), (0.6, 0.02), (0.2, 1.0))),
        _glyph(_arc(0.3, 0.25, 0.22, 0.25, 90, 450), _arc(0.3, 0.74, 0.28, 0.26, 90, 450)),
        _glyph(_path(_arc(0.3, 0.28, 0.28, 0.28, -10, 350), _poly((0.57, 0.3), (0.52, 1.0)))),
    )


def _hand_europe_glyphs() -> tuple[tuple[Stroke, ...], ...]:
    """European handwriting: flagged 1, crossed 7, closed 4, looped 2, flat-topped 3, curled 9."""
    return (
        _glyph(_arc(0.24, 0.5, 0.24, 0.5, 70, 440)),
        _glyph(_poly((0.08, 0.3), (0.35, 0.0), (0.35, 1.0))),
        _glyph(
            _path(_arc(0.3, 0.27, 0.27, 0.27, 150, -35), _poly((0.04, 0.9), (0.17, 0.82), (0.2, 0.97), (0.62, 0.96)))
        ),
        _glyph(_path(_poly((0.05, 0.02), (0.55, 0.02), (0.22, 0.42)), _arc(0.28, 0.7, 0.3, 0.28, 110, -150))),
        _glyph(_poly((0.45, 1.0), (0.45, 0.0), (0.0, 0.68), (0.62, 0.68))),
        _glyph(
            _poly((0.12, 0.02), (0.6, 0.0)),
            _path(_poly((0.12, 0.02), (0.08, 0.44)), _arc(0.3, 0.68, 0.27, 0.3, 125, -155)),
        ),
        _glyph(_path(_arc(0.5, 0.45, 0.46, 0.45, 90, 180), _poly((0.04, 0.7)), _arc(0.3, 0.73, 0.26, 0.26, 180, -180))),
        _glyph(_poly((0.0, 0.14), (0.05, 0.0), (0.62, 0.0), (0.25, 1.0)), _poly((0.15, 0.5), (0.54, 0.5))),
        _glyph(_figure_eight(0.3, 0.27)),
        _glyph(_path(_arc(0.3, 0.28, 0.27, 0.27, -10, 350), _arc(0.0, 0.3, 0.57, 0.68, 0, -80))),
    )


def _sans_glyphs() -> tuple[tuple[Stroke, ...], ...]:
    """A DIN-like sans-serif print face: straight-sided 0, diagonal-stemmed 6 and 9, closed 4."""
    return (
        _glyph(_path(_arc(0.3, 0.3, 0.3, 0.3, 180, 0), _arc(0.3, 0.7, 0.3, 0.3, 0, -180), _poly((0.0, 0.3)))),
        _glyph(_poly((0.16, 0.15), (0.36, 0.0), (0.36, 1.0))),
        _glyph(_path(_arc(0.3, 0.28, 0.28, 0.28, 165, -35), _poly((0.0, 1.0), (0.62, 1.0)))),
        _glyph(_path(_arc(0.3, 0.25, 0.26, 0.25, 160, -90), _arc(0.3, 0.74, 0.3, 0.26, 90, -165))),
        _glyph(_poly((0.66, 0.7), (0.0, 0.7), (0.48, 0.0), (0.48, 1.0))),
        _glyph(_path(_poly((0.58, 0.0), (0.1, 0.0), (0.06, 0.47)), _arc(0.31, 0.68, 0.3, 0.32, 140, -155))),
        _glyph(_path(_poly((0.5, 0.0), (0.06, 0.6)), _arc(0.31, 0.7, 0.29, 0.3, 160, -200))),
        _glyph(_poly((0.0, 0.0), (0.62, 0.0), (0.22, 1.0))),
        _glyph(_arc(0.3, 0.24, 0.24, 0.24, 90, 450), _arc(0.3, 0.73, 0.3, 0.27, 90, 450)),
        _glyph(_path(_arc(0.3, 0.3, 0.29, 0.3, -20, 340), _poly((0.14, 1.0)))),
    )


def _serif_glyphs() -> tuple[tuple[Stroke, ...], ...]:
    """A modern serif print face: thick stems, thin hairlines and horizontal serifs."""
    thin, thick = 0.5, 1.35
    return (
        _glyph((_arc(0.28, 0.5, 0.26, 0.5, 90, 270), thin), (_arc(0.3, 0.5, 0.26, 0.5, 270, 450), thick)),
        _glyph(
            (_poly((0.08, 0.18), (0.32, 0.0)), thin),
            (_poly((0.32, 0.0), (0.32, 1.0)), thick),
            (_poly((0.08, 1.0), (0.56, 1.0)), thin),
        ),
        _glyph(
            (_arc(0.3, 0.28, 0.28, 0.28, 160, -40), thick),
            (_poly((0.51, 0.46), (0.02, 1.0)), thin),
            (_poly((0.02, 1.0), (0.62, 1.0), (0.62, 0.86)), thick),
        ),
        _glyph((_arc(0.3, 0.26, 0.26, 0.26, 150, -90), thick), (_arc(0.3, 0.74, 0.3, 0.26, 90, -150), thick)),
        _glyph(
            (_poly((0.0, 0.7), (0.42, 0.0)), thin),
            (_poly((0.46, 0.0), (0.46, 1.0)), thick),
            (_poly((0.0, 0.7), (0.66, 0.7)), thin),
            (_poly((0.28, 1.0), (0.64, 1.0)), thin),
        ),
        _glyph(
            (_poly((0.12, 0.0), (0.58, 0.0), (0.58, -0.08)), thin),
            (_poly((0.12, 0.0), (0.1, 0.46)), thin),
            (_arc(0.3, 0.7, 0.3, 0.3, 135, -150), thick),
        ),
        _glyph((_arc(0.34, 0.5, 0.3, 0.5, 70, 180), thick), (_arc(0.33, 0.72, 0.29, 0.28, 180, -180), thick)),
        _glyph((_poly((0.0, 0.12), (0.0, 0.0), (0.62, 0.0)), thin), (_poly((0.62, 0.0), (0.28, 1.0)), thick)),
        _glyph((_arc(0.3, 0.25, 0.22, 0.25, 90, 450), thin), (_arc(0.3, 0.74, 0.29, 0.26, 90, 450), thick)),
        _glyph((_arc(0.3, 0.28, 0.28, 0.28, 0, 360), thick), (_arc(0.28, 0.5, 0.3, 0.5, 0, -110), thick)),
    )


def _square_glyphs() -> tuple[tuple[Stroke, ...], ...]:
    """A squared technical face (licence plates, stencilled signs): straight runs, cut corners."""
    w, c = 0.56, 0.12
    return (
        _glyph(_poly((c, 0), (w - c, 0), (w, c), (w, 1 - c), (w - c, 1), (c, 1), (0, 1 - c), (0, c), (c, 0))),
        _glyph(_poly((0.06, 0.14), (0.28, 0.0), (0.28, 1.0))),
        _glyph(_poly((0, c), (c, 0), (w - c, 0), (w, c), (w, 0.4), (w - c, 0.5), (c, 0.5), (0, 0.6), (0, 1), (w, 1))),
        _glyph(
            _poly((0, 0), (w - c, 0), (w, c), (w, 0.4), (w - c, 0.5), (0.15, 0.5)),
            _poly((w - c, 0.5), (w, 0.6), (w, 1 - c), (w - c, 1), (0, 1)),
        ),
        _glyph(_poly((0.0, 0.0), (0.0, 0.62), (w, 0.62)), _poly((0.42, 0.25), (0.42, 1.0))),
        _glyph(_poly((w, 0), (0, 0), (0, 0.48), (w - c, 0.48), (w, 0.58), (w, 1 - c), (w - c, 1), (0, 1))),
        _glyph(
            _poly(
                (w - c, 0), (c, 0), (0, c), (0, 1 - c), (c, 1), (w - c, 1), (w, 1 - c), (w, 0.6), (w - c, 0.5), (0, 0.5)
            )
        ),
        _glyph(_poly((0, 0), (w, 0), (w, 0.2), (0.22, 1.0))),
        _glyph(
            _poly(
                (c, 0),
                (w - c, 0),
                (w, c),
                (w, 0.42),
                (w - c, 0.5),
                (w, 0.58),
                (w, 1 - c),
                (w - c, 1),
                (c, 1),
                (0, 1 - c),
                (0, 0.58),
                (c, 0.5),
                (0, 0.42),
                (0, c),
                (c, 0),
            ),
            _poly((c, 0.5), (w - c, 0.5)),
        ),
        _glyph(_poly((w, 0.5), (c, 0.5), (0, 0.4), (0, c), (c, 0), (w - c, 0), (w, c), (w, 1 - c), (w - c, 1), (0, 1))),
    )


def _seven_segment_glyphs() -> tuple[tuple[Stroke, ...], ...]:
    """A seven-segment display face: separate straight segments with gaps at the corners."""
    w, gap = 0.56, 0.07
    segments = {
        "a": _poly((gap, 0.0), (w - gap, 0.0)),
        "b": _poly((w, gap), (w, 0.5 - gap)),
        "c": _poly((w, 0.5 + gap), (w, 1.0 - gap)),
        "d": _poly((gap, 1.0), (w - gap, 1.0)),
        "e": _poly((0.0, 0.5 + gap), (0.0, 1.0 - gap)),
        "f": _poly((0.0, gap), (0.0, 0.5 - gap)),
        "g": _poly((gap, 0.5), (w - gap, 0.5)),
    }
    lit = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg")
    return tuple(_glyph(*(segments[name] for name in names)) for names in lit)


STYLES: dict[str, GlyphStyle] = {
    "hand_round": GlyphStyle("hand_round", _hand_round_glyphs(), round_caps=True),
    "hand_europe": GlyphStyle("hand_europe", _hand_europe_glyphs(), round_caps=True),
    "sans": GlyphStyle("sans", _sans_glyphs(), round_caps=True),
    "serif": GlyphStyle("serif", _serif_glyphs(), round_caps=False),
    "square": GlyphStyle("square", _square_glyphs(), round_caps=False),
    "segment": GlyphStyle("segment", _seven_segment_glyphs(), round_caps=False),
}
MNIST_STYLES = ("hand_round", "hand_europe", "sans")
SVHN_STYLES = ("sans", "serif", "square", "segment")


def _check_labels(labels: np.ndarray) -> np.ndarray:
    """Labels as int64 [N], refusing anything that is not a digit 0..9."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"digit labels must be an integer vector [N], got {labels.dtype} {list(labels.shape)}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError("digit labels must lie in 0..9")
    return labels.astype(np.int64)


def _resolve_styles(names: tuple[str, ...]) -> tuple[GlyphStyle, ...]:
    unknown = [name for name in names if name not in STYLES]
    if unknown or not names:
        raise ValueError(f"unknown digit styles {unknown or names}; known: {sorted(STYLES)}")
    return tuple(STYLES[name] for name in names)


def _wobbled(strokes: tuple[Stroke, ...], rng: np.random.Generator, amplitude: float) -> list[Stroke]:
    """Displace a glyph by one smooth random field (two low-frequency waves): elastic-like jitter.

    One field per glyph, not per stroke, so strokes that meet keep meeting.
    """
    frequencies = rng.uniform(0.4, 1.4, size=(2, 2)) * rng.choice((-1.0, 1.0), size=(2, 2))
    phases = rng.uniform(0.0, 2.0 * np.pi, size=2)
    return [
        (points + amplitude * np.sin(2.0 * np.pi * points @ frequencies.T + phases), weight)
        for points, weight in strokes
    ]


def _linear_map(rotation: float, slant: float, x_scale: float) -> np.ndarray:
    """2x2 matrix: horizontal stretch, then slant (positive leans the top right), then rotation."""
    stretch = np.array([[x_scale, 0.0], [0.0, 1.0]])
    shear = np.array([[1.0, -slant], [0.0, 1.0]])
    cos, sin = np.cos(rotation), np.sin(rotation)
    return np.array([[cos, -sin], [sin, cos]]) @ shear @ stretch


def _mapped(strokes: list[Stroke], matrix: np.ndarray) -> list[Stroke]:
    return [(points @ matrix.T, weight) for points, weight in strokes]


def _shifted(strokes: list[Stroke], offset: np.ndarray) -> list[Stroke]:
    return [(points + offset, weight) for points, weight in strokes]


def _bounds(strokes: list[Stroke]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the box around all stroke points."""
    points = np.concatenate([points for points, _ in strokes])
    return points.min(axis=0), points.max(axis=0)


def _placed(
    strokes: list[Stroke], box: tuple[np.ndarray, np.ndarray], scale: float, centre_px: np.ndarray
) -> list[Stroke]:
    """Scale strokes about the centre of ``box`` and move that centre to ``centre_px``."""
    box_centre = (box[0] + box[1]) / 2.0
    return [((points - box_centre) * scale + centre_px, weight) for points, weight in strokes]


def _sharp_corners(points: np.ndarray, min_turn_deg: float = 20.0) -> np.ndarray:
    """Interior vertices [k, 2] where a polyline turns by more than ``min_turn_deg``.

    Wide PIL lines leave notches at such corners; arcs, sampled finely, turn too little to need it.
    """
    steps = np.diff(points, axis=0)
    headings = np.arctan2(steps[:, 1], steps[:, 0])
    turns = np.abs((np.diff(headings) + np.pi) % (2.0 * np.pi) - np.pi)
    return points[1:-1][turns > np.deg2rad(min_turn_deg)]


def _rasterise(strokes_px: list[Stroke], width_px: float, size: int, round_caps: bool) -> np.ndarray:
    """Ink coverage [size, size] in [0, 1]: strokes drawn at 4x resolution, then box-averaged.

    Sharp corners get round joins; stroke ends get round caps only in ``round_caps`` styles.
    """
    canvas = Image.new("L", (size * _SUPERSAMPLE, size * _SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for points, weight in strokes_px:
        line_width = max(1, round(width_px * weight * _SUPERSAMPLE))
        scaled = points * _SUPERSAMPLE
        draw.line(scaled.ravel().tolist(), fill=255, width=line_width)
        dots = _sharp_corners(scaled)
        if round_caps:
            dots = np.concatenate([dots, scaled[[0, -1]]])
        radius = line_width / 2.0
        for x, y in dots:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(canvas.reduce(_SUPERSAMPLE), dtype=np.float32) / 255.0


def _mnist_coverage(digit: int, style: GlyphStyle, rng: np.random.Generator) -> np.ndarray:
    """One handwritten-looking digit [28, 28]: its larger side normalised to about 20 px, centred.

    MNIST itself size-normalised each digit into a 20x20 box and centred it in 28x28.
    """
    strokes = _wobbled(style.glyphs[digit], rng, rng.uniform(0.01, 0.05))
    matrix = _linear_map(np.clip(rng.normal(0.0, 0.15), -0.35, 0.35), rng.uniform(-0.4, 0.4), rng.uniform(0.75, 1.25))
    strokes = _mapped(strokes, matrix)
    width_px = rng.uniform(1.4, 3.4)
    box = _bounds(strokes)
    scale = (rng.uniform(16.0, 20.0) - width_px) / float(np.max(box[1] - box[0]))
    centre_px = MNIST_SIZE / 2.0 + rng.normal(0.0, 0.6, size=2)
    return _rasterise(_placed(strokes, box, scale, centre_px), width_px, MNIST_SIZE, style.round_caps)


def _mnist_ink(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coverage [N, 28, 28] to uint8 MNIST pixels: saturated stroke cores, noisy ink, black paper."""
    count = len(coverage)
    gain = rng.uniform(1.1, 1.7, size=(count, 1, 1))
    noise = rng.standard_normal(coverage.shape, dtype=np.float32) * rng.uniform(0.0, 0.08, size=(count, 1, 1))
    ink = np.clip(coverage * gain, 0.0, 1.0)
    # Only inked pixels get noise: MNIST's background is exactly 0.
    ink = np.where(ink > 0.0, np.clip(ink + noise, 0.0, 1.0), 0.0)
    return np.round(ink * 255.0).astype(np.uint8)


def render_mnist_digits(
    labels: np.ndarray, rng: np.random.Generator, styles: tuple[str, ...] = MNIST_STYLES
) -> np.ndarray:
    """MNIST-like images uint8 [N, 28, 28] (white digit on black) for digit ``labels`` [N].

    Each image picks one of ``styles`` (see :data:`STYLES`) and its own wobble, slant,
    rotation, aspect, size, position, stroke width, ink gain and ink noise.
    """
    labels = _check_labels(labels)
    glyph_styles = _resolve_styles(tuple(styles))
    style_index = rng.integers(len(glyph_styles), size=len(labels))
    coverage = np.zeros((len(labels), MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    for i, (digit, style) in enumerate(zip(labels, style_index, strict=True)):
        coverage[i] = _mnist_coverage(int(digit), glyph_styles[style], rng)
    return _mnist_ink(coverage, rng)


def _svhn_coverage(digit: int, style: GlyphStyle, rng: np.random.Generator) -> np.ndarray:
    """One house-number crop's ink [32, 32]: the digit centred, height 14-26 px, with its
    neighbouring digits (same sign: same font, slant and size) cut off at the left/right edges.
    """
    width_rel = rng.uniform(0.08, 0.2)
    wobble = rng.uniform(0.0, 0.015)
    centre = _wobbled(style.glyphs[digit], rng, wobble)
    strokes = list(centre)
    low, high = _bounds(centre)
    for side, neighbour in zip((-1, 1), rng.integers(10, size=2), strict=True):
        if rng.random() < 0.35:
            continue
        glyph = _wobbled(style.glyphs[int(neighbour)], rng, wobble)
        glyph_low, glyph_high = _bounds(glyph)
        gap = width_rel + rng.uniform(0.05, 0.2)
        x_shift = low[0] - gap - glyph_high[0] if side < 0 else high[0] + gap - glyph_low[0]
        strokes += _shifted(glyph, np.array([x_shift, 0.0]))
    italic = rng.random() < 0.4
    matrix = _linear_map(rng.normal(0.0, 0.06), rng.uniform(-0.25, 0.25) * italic, rng.uniform(0.7, 1.3))
    box = _bounds(_mapped(centre, matrix))
    height_px = rng.uniform(14.0, 26.0)
    scale = height_px / float(box[1][1] - box[0][1])
    centre_px = SVHN_SIZE / 2.0 + np.array([rng.normal(0.0, 1.2), rng.normal(0.0, 0.8)])
    strokes_px = _placed(_mapped(strokes, matrix), box, scale, centre_px)
    return _rasterise(strokes_px, width_rel * height_px, SVHN_SIZE, style.round_caps)


_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def _colours_with_luma(luma: np.ndarray, saturation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random RGB colours [N, 3] with (before clipping) the given luma and chroma strength."""
    direction = rng.normal(size=(len(luma), 3))
    # Remove the luma component so the chroma shift leaves brightness alone (weights sum to 1).
    direction -= (direction @ _LUMA_WEIGHTS)[:, None]
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-9
    return np.clip(luma[:, None] + saturation[:, None] * direction, 0.0, 1.0)


def _svhn_palette(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background start and end colours and ink colour, each [N, 3]: light ink on dark plates
    and dark ink on light ones, with a contrast that varies from faint to strong."""
    background_luma = rng.uniform(0.08, 0.92, size=count)
    contrast = rng.uniform(0.2, 0.7, size=count)
    ink_luma = np.where(background_luma < 0.5, background_luma + contrast, background_luma - contrast)
    background = _colours_with_luma(background_luma, rng.uniform(0.0, 0.35, size=count), rng)
    background_end = np.clip(background + rng.normal(0.0, 0.12, size=(count, 3)), 0.0, 1.0)
    ink = _colours_with_luma(np.clip(ink_luma, 0.0, 1.0), rng.uniform(0.0, 0.35, size=count), rng)
    return background, background_end, ink


def _linear_gradients(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Per-image ramps [N, size, size] from about 0 to 1 along a random direction."""
    angle = rng.uniform(0.0, 2.0 * np.pi, size=(count, 1, 1))
    coords = np.arange(size) - (size - 1) / 2.0
    ramp = np.cos(angle) * coords[None, None, :] + np.sin(angle) * coords[None, :, None]
    return ramp / size + 0.5


def _blurred(images: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Gaussian blur of images [N, H, W, 3], each with its own sigma taken from a small set."""
    out = images.copy()
    for sigma in np.unique(sigmas):
        if sigma > 0:
            chosen = sigmas == sigma
            out[chosen] = ndimage.gaussian_filter(images[chosen], sigma=(0, sigma, sigma, 0), mode="nearest")
    return out


def _svhn_photo(coverage: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coverage [N, 32, 32] to uint8 RGB [N, 32, 32, 3]: coloured gradient plate, coloured ink,
    an occasional drop shadow, then blur, exposure and sensor noise."""
    count = len(coverage)
    background, background_end, ink = (
        colour[:, None, None, :].astype(np.float32) for colour in _svhn_palette(count, rng)
    )
    ramp = _linear_gradients(count, SVHN_SIZE, rng)[..., None].astype(np.float32)
    plate = background + ramp * (background_end - background)
    mask = coverage[..., None]
    has_shadow = (rng.random(count) < 0.3)[:, None, None, None]
    shadow = np.roll(mask, shift=(1, 1), axis=(1, 2)) * (1.0 - mask) * has_shadow
    image = (plate * (1.0 - mask) + ink * mask) * (1.0 - 0.45 * shadow)
    image = _blurred(image, rng.choice(np.array([0.0, 0.5, 0.8, 1.1]), size=count))
    exposure = rng.uniform(0.75, 1.15, size=(count, 1, 1, 1)).astype(np.float32)
    noise_level = rng.uniform(0.005, 0.05, size=(count, 1, 1, 1)).astype(np.float32)
    image = image * exposure + rng.standard_normal(image.shape, dtype=np.float32) * noise_level
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_svhn_digits(
    labels: np.ndarray, rng: np.random.Generator, styles: tuple[str, ...] = SVHN_STYLES
) -> np.ndarray:
    """SVHN-like house-number crops uint8 [N, 32, 32, 3] for digit ``labels`` [N].

    Each image picks one of ``styles`` and its own size, aspect, slant, stroke weight,
    neighbouring digits, colours, gradient, shadow, blur, exposure and noise.
    """
    labels = _check_labels(labels)
    glyph_styles = _resolve_styles(tuple(styles))
    style_index = rng.integers(len(glyph_styles), size=len(labels))
    coverage = np.zeros((len(labels), SVHN_SIZE, SVHN_SIZE), dtype=np.float32)
    for i, (digit, style) in enumerate(zip(labels, style_index, strict=True)):
        coverage[i] = _svhn_coverage(int(digit), glyph_styles[style], rng)
    return _svhn_photo(coverage, rng)


def glyph_coverage(digit: int, style: str, size: int = MNIST_SIZE) -> np.ndarray:
    """The undistorted glyph of ``digit`` in ``style`` as ink coverage [size, size] in [0, 1]:
    height 70% of the image, centred, stroke width 10% of the height (for galleries and tests)."""
    glyph_style = _resolve_styles((style,))[0]
    strokes = list(glyph_style.glyphs[_check_labels(np.array([digit]))[0]])
    height_px = 0.7 * size
    box = _bounds(strokes)
    placed = _placed(strokes, box, height_px / float(box[1][1] - box[0][1]), np.full(2, size / 2.0))
    return _rasterise(placed, 0.1 * height_px, size, glyph_style.round_caps)
