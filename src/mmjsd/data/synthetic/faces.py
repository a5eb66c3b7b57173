"""Synthetic aligned-CelebA data: correlated attributes and drawn faces that show them.

:func:`sample_attributes` draws the 40 CelebA attributes from a small generative model with
roughly the real marginals and the obvious dependencies (sex, age, hair, beard, make-up).
:func:`render_face` draws a cartoon face on the 218x178 aligned-CelebA canvas, centred so that
the builders' 148x148 centre crop (rows 35:183, cols 15:163) holds it. The attributes listed
in :data:`VISIBLE_ATTRIBUTES` are drawn so that a linear model on a 32x32 crop can tell them;
a dozen more are drawn subtly; Attractive, Oval_Face, High_Cheekbones and Male are only
labels (Male shows through its correlates: beards, make-up, hair length). Pose, skin tone,
background, clothes, eye colour and lighting vary at random, independently of the attributes.

Drawing happens at 2x resolution on a PIL canvas and is box-downsampled, for soft edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mmjsd.data.synthetic.formats import CELEBA_ATTRIBUTES, CELEBA_SHAPE

_SUPERSAMPLE = 2
_HEIGHT, _WIDTH = CELEBA_SHAPE[:2]
_ATTRIBUTE_INDEX = {name: index for index, name in enumerate(CELEBA_ATTRIBUTES)}

# Attributes drawn clearly enough for a linear probe on the 32x32 centre crop to find them
# (Blurry: in the image's sharpness). Wavy/Straight hair, Narrow_Eyes, Bushy/Arched eyebrows,
# Receding_Hairline, Double_Chin, Bags_Under_Eyes, 5_o_Clock_Shadow, Big_Lips, Pointy_Nose and
# Young (wrinkles) are drawn too, but more subtly.
VISIBLE_ATTRIBUTES = (
    "Bald",
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Blurry",
    "Eyeglasses",
    "Smiling",
    "Mouth_Slightly_Open",
    "Wearing_Hat",
    "No_Beard",
    "Goatee",
    "Mustache",
    "Sideburns",
    "Pale_Skin",
    "Wearing_Lipstick",
    "Heavy_Makeup",
    "Rosy_Cheeks",
    "Wearing_Necktie",
    "Wearing_Necklace",
    "Wearing_Earrings",
    "Big_Nose",
    "Chubby",
)

Colour = tuple[int, ...]


# --------------------------------------------------------------------------- attributes


def _bernoulli(rng: np.random.Generator, probability: np.ndarray | float, count: int) -> np.ndarray:
    """Independent coin flips [count] with per-row ``probability``."""
    return rng.random(count) < probability


def _hair_colour_codes(
    male: np.ndarray, young: np.ndarray, has_hair: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """0 none (bald), 1 black, 2 blond, 3 brown, 4 gray, 5 other (dyed, ash): one per person.

    Gray is mostly for the old; among the rest women are more often blond, men more often
    unlabelled ("other"), as in CelebA where 37% of faces have none of the four colours.
    """
    count = len(male)
    gray = has_hair & _bernoulli(rng, np.where(young, 0.01, 0.15), count)
    # Cumulative shares of black, blond, brown (the remainder is "other").
    cumulative = np.where(male[:, None], [0.28, 0.32, 0.49], [0.22, 0.46, 0.71])
    draw = rng.random(count)
    colour = 1 + (draw[:, None] >= cumulative).sum(axis=1)
    colour = np.where(colour == 4, 5, colour)  # past the last share: "other", code 5
    return np.where(~has_hair, 0, np.where(gray, 4, colour))


def _beards(male: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Facial hair of men: a full jaw beard, or a goatee (chin only), either with a moustache,
    and sideburns; ``No_Beard`` is none of them."""
    count = len(male)
    full = male & _bernoulli(rng, 0.12, count)
    goatee = male & ~full & _bernoulli(rng, 0.19, count)
    mustache = male & _bernoulli(rng, np.where(goatee, 0.4, 0.05), count)
    sideburns = male & ~full & _bernoulli(rng, 0.17, count)
    return {
        "Goatee": goatee,
        "Mustache": mustache,
        "Sideburns": sideburns,
        "No_Beard": ~(full | goatee | mustache | sideburns),
    }


def sample_attributes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` attribute rows, int8 [n, 40] of ±1 in :data:`CELEBA_ATTRIBUTES` order.

    Marginals are close to CelebA's (Male 42%, Young 77%, No_Beard ~82%, Smiling 48%, ...).
    Hard constraints: beards, stubble, Bald, Necktie only for men; lipstick and make-up only
    for women, make-up implies lipstick; at most one hair colour, none when bald; a bald
    head has no bangs, texture or hat; Straight and Wavy exclude each other; gray hair goes
    with age, smiling with open mouths and high cheekbones.
    """
    if n < 0:
        raise ValueError(f"number of faces must be >= 0, got {n}")

    def coin(probability: np.ndarray | float) -> np.ndarray:
        return _bernoulli(rng, probability, n)

    male = coin(0.417)
    female = ~male
    young = coin(np.where(male, 0.68, 0.84))
    bald = male & coin(np.where(young, 0.02, 0.12))
    hair = _hair_colour_codes(male, young, ~bald, rng)
    wavy = ~bald & coin(np.where(male, 0.14, 0.45))
    smiling = coin(0.482)
    lipstick = female & coin(0.8)
    chubby = coin(np.where(male, np.where(young, 0.07, 0.15), np.where(young, 0.02, 0.08)))
    big_nose = coin(np.where(male, 0.4, 0.12))
    traits = {
        "5_o_Clock_Shadow": male & coin(0.27),
        "Arched_Eyebrows": coin(np.where(male, 0.05, 0.42)),
        "Attractive": coin(np.where(male, np.where(young, 0.38, 0.1), np.where(young, 0.72, 0.3))),
        "Bags_Under_Eyes": coin(np.where(young, 0.15, 0.4)),
        "Bald": bald,
        "Bangs": ~bald & coin(np.where(male, 0.09, 0.2)),
        "Big_Lips": coin(np.where(male, 0.19, 0.28)),
        "Big_Nose": big_nose,
        "Black_Hair": hair == 1,
        "Blond_Hair": hair == 2,
        "Brown_Hair": hair == 3,
        "Gray_Hair": hair == 4,
        "Blurry": coin(0.051),
        "Bushy_Eyebrows": coin(np.where(male, 0.25, 0.06)),
        "Chubby": chubby,
        "Double_Chin": coin(np.where(chubby, 0.5, 0.02)),
        "Eyeglasses": coin(np.where(male, 0.1, 0.04)),
        "Heavy_Makeup": lipstick & coin(0.8),
        "High_Cheekbones": coin(np.where(smiling, 0.8, 0.12)),
        "Male": male,
        "Mouth_Slightly_Open": coin(np.where(smiling, 0.7, 0.28)),
        "Narrow_Eyes": coin(0.115),
        "Oval_Face": coin(0.284),
        "Pale_Skin": coin(np.where(male, 0.02, 0.06)),
        "Pointy_Nose": ~big_nose & coin(0.36),
        "Receding_Hairline": ~bald & coin(np.where(male, np.where(young, 0.08, 0.3), 0.04)),
        "Rosy_Cheeks": coin(np.where(male, 0.02, 0.1)),
        "Smiling": smiling,
        "Straight_Hair": ~bald & ~wavy & coin(0.3),
        "Wavy_Hair": wavy,
        "Wearing_Earrings": coin(np.where(male, 0.015, 0.3)),
        "Wearing_Hat": ~bald & coin(np.where(male, 0.06, 0.04)),
        "Wearing_Lipstick": lipstick,
        "Wearing_Necklace": coin(np.where(male, 0.005, 0.2)),
        "Wearing_Necktie": male & coin(0.17),
        "Young": young,
        **_beards(male, rng),
    }
    return np.stack([np.where(traits[name], 1, -1) for name in CELEBA_ATTRIBUTES], axis=1).astype(np.int8)


# --------------------------------------------------------------------------- geometry and colours


@dataclass(frozen=True)
class _Head:
    """Where the face is, in output pixels: the face ellipse and the features' axis.

    ``turn`` shifts the features sideways inside the outline, as a slightly turned head does.
    """

    cx: float
    cy: float
    rx: float
    ry: float
    turn: float

    @property
    def fx(self) -> float:
        return self.cx + self.turn

    @property
    def eye_y(self) -> float:
        return self.cy - 0.12 * self.ry

    @property
    def eye_dx(self) -> float:
        return 0.42 * self.rx

    @property
    def brow_y(self) -> float:
        return self.eye_y - 0.19 * self.ry

    @property
    def nose_y(self) -> float:
        return self.cy + 0.22 * self.ry

    @property
    def mouth_y(self) -> float:
        return self.cy + 0.5 * self.ry

    @property
    def chin_y(self) -> float:
        return self.cy + self.ry


@dataclass(frozen=True)
class _Hair:
    """Hairstyle; ``colour`` None means bald."""

    colour: Colour | None
    beard_colour: Colour
    long: bool
    volume: float
    texture: str  # "wavy", "straight" or "plain"
    bangs: bool
    receding: bool


_HAIR_COLOURS = {
    "Black_Hair": (30, 25, 25),
    "Blond_Hair": (228, 198, 122),
    "Brown_Hair": (118, 74, 42),
    "Gray_Hair": (178, 178, 182),
}
# Hair of none of the four labelled colours (dyed plum, dark ash, dyed pink), chosen so that
# each labelled colour stays at an extreme of colour space: a linear probe can single it out.
_OTHER_HAIR_COLOURS = ((126, 56, 122), (80, 80, 92), (224, 140, 170))
_PALE_SKIN = (250, 233, 226)
# Non-pale skin tones, light to dark; a tone is drawn between neighbouring anchors.
_SKIN_TONES = np.array([(228, 186, 160), (205, 152, 118), (168, 112, 80), (112, 72, 50)], dtype=float)
_EYE_COLOURS = ((70, 45, 25), (40, 30, 25), (70, 110, 160), (80, 120, 80), (120, 90, 50))
_LIPSTICK_COLOURS = ((200, 25, 55), (170, 20, 70), (225, 50, 80), (150, 20, 40))
_EYESHADOW_COLOURS = ((120, 60, 140, 210), (60, 80, 150, 210), (90, 60, 45, 210), (40, 40, 48, 210))
_JEWEL_COLOURS = ((236, 190, 60), (222, 222, 232), (248, 244, 232))
_TIE_COLOURS = ((160, 20, 30), (30, 50, 140), (30, 110, 60), (120, 30, 120), (200, 160, 30))


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return options[int(rng.integers(len(options)))]


def _shade(colour: Colour, factor: float, alpha: int | None = None) -> Colour:
    """``colour`` scaled by ``factor`` (clipped), optionally with an alpha for blending."""
    rgb = tuple(int(np.clip(round(channel * factor), 0, 255)) for channel in colour[:3])
    return rgb if alpha is None else rgb + (alpha,)


def _random_colour(rng: np.random.Generator, low: int = 20, high: int = 235) -> Colour:
    return tuple(int(value) for value in rng.integers(low, high, size=3))


def _skin_colour(pale: bool, rng: np.random.Generator) -> Colour:
    """Pale skin is near-white and cool; other tones span light to dark at random."""
    if pale:
        return tuple(int(c) for c in np.clip(np.array(_PALE_SKIN) + rng.normal(0, 3, size=3), 0, 255))
    position = rng.uniform(0.1, len(_SKIN_TONES) - 1.0)
    low = int(position)
    tone = _SKIN_TONES[low] + (position - low) * (_SKIN_TONES[min(low + 1, len(_SKIN_TONES) - 1)] - _SKIN_TONES[low])
    return tuple(int(c) for c in np.clip(tone + rng.normal(0, 4, size=3), 0, 255))


def _hair_colour(traits: dict[str, bool], rng: np.random.Generator) -> Colour | None:
    """The labelled hair colour with some natural variation; None when bald."""
    if traits["Bald"]:
        return None
    labelled = [name for name in ("Gray_Hair", "Blond_Hair", "Black_Hair", "Brown_Hair") if traits[name]]
    base = _HAIR_COLOURS[labelled[0]] if labelled else _pick(rng, _OTHER_HAIR_COLOURS)
    return _shade(base, rng.uniform(0.9, 1.1))


def _head(traits: dict[str, bool], rng: np.random.Generator) -> _Head:
    """Face placement and size with pose jitter; chubby faces are wider."""
    width = rng.uniform(35.0, 39.0) * (1.22 if traits["Chubby"] else 1.0)
    return _Head(
        cx=89.0 + np.clip(rng.normal(0.0, 2.5), -6, 6),
        cy=110.0 + np.clip(rng.normal(0.0, 2.5), -6, 6),
        rx=width,
        ry=rng.uniform(46.0, 50.0),
        turn=rng.uniform(-4.0, 4.0),
    )


def _hair(traits: dict[str, bool], rng: np.random.Generator) -> _Hair:
    """Hairstyle: women's hair is mostly long and fuller; wavy hair is bigger."""
    texture = "wavy" if traits["Wavy_Hair"] else "straight" if traits["Straight_Hair"] else "plain"
    colour = _hair_colour(traits, rng)
    # Dyed or absent hair says nothing about the beard, which then is dark brown.
    natural = colour is not None and any(traits[name] for name in _HAIR_COLOURS)
    long = bool(rng.random() < (0.1 if traits["Male"] else 0.8))
    volume = rng.uniform(4.0, 9.0) if traits["Male"] else rng.uniform(8.0, 15.0)
    return _Hair(
        colour=colour,
        beard_colour=_shade(colour, 0.85) if natural else (52, 38, 30),
        long=long,
        volume=volume + (5.0 if texture == "wavy" else 0.0),
        texture=texture,
        bangs=traits["Bangs"],
        receding=traits["Receding_Hairline"],
    )


# --------------------------------------------------------------------------- drawing


class _Pen:
    """ImageDraw on the supersampled canvas, addressed in output-pixel coordinates, with alpha."""

    def __init__(self, image: Image.Image):
        self._draw = ImageDraw.Draw(image, "RGBA")

    def ellipse(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        fill: Colour | None = None,
        outline: Colour | None = None,
        width: float = 1.0,
    ) -> None:
        s = _SUPERSAMPLE
        self._draw.ellipse(
            ((cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s),
            fill=fill,
            outline=outline,
            width=max(1, round(width * s)),
        )

    def polygon(self, points: np.ndarray, fill: Colour) -> None:
        self._draw.polygon((np.asarray(points) * _SUPERSAMPLE).ravel().tolist(), fill=fill)

    def line(self, points: np.ndarray, fill: Colour, width: float) -> None:
        self._draw.line(
            (np.asarray(points) * _SUPERSAMPLE).ravel().tolist(),
            fill=fill,
            width=max(1, round(width * _SUPERSAMPLE)),
            joint="curve",
        )


def _ellipse_points(
    cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, count: int = 24
) -> np.ndarray:
    """Points [count, 2] along an ellipse arc; 0 deg = right, 90 deg = up on screen."""
    angles = np.deg2rad(np.linspace(start_deg, end_deg, count))
    return np.stack([cx + rx * np.cos(angles), cy - ry * np.sin(angles)], axis=1)


def _wavy(points: np.ndarray, centre: tuple[float, float], amplitude: float, waves: float, phase: float) -> np.ndarray:
    """Push points radially in and out around ``centre``: a curly outline."""
    offsets = points - np.asarray(centre)
    radius = np.linalg.norm(offsets, axis=1, keepdims=True) + 1e-9
    angle = np.arctan2(offsets[:, 1], offsets[:, 0])[:, None]
    return points + offsets / radius * amplitude * np.sin(waves * angle + phase)


def _background(rng: np.random.Generator) -> Image.Image:
    """A smooth two-colour gradient at a random angle (the photo's backdrop), supersampled.

    A linear ramp is bilinear, so it is computed on a 2x2 grid and interpolated up by PIL.
    """
    first, second = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    angle = rng.uniform(0.0, 2.0 * np.pi)
    corners = np.array([-0.5, 0.5])
    ramp = (np.cos(angle) * corners[None, :] + np.sin(angle) * corners[:, None] + 0.5)[..., None]
    pixels = np.clip(first + ramp * (second - first), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB").resize(
        (_WIDTH * _SUPERSAMPLE, _HEIGHT * _SUPERSAMPLE), Image.Resampling.BILINEAR
    )


def _hair_outline(head: _Head, hair: _Hair, bottom_y: float, rng: np.random.Generator) -> np.ndarray:
    """Outer edge of the hair mass from the left, over the crown, to the right, down to ``bottom_y``."""
    top = _ellipse_points(
        head.cx, head.cy - 0.05 * head.ry, head.rx + hair.volume, head.ry + 0.7 * hair.volume, 185, -5, count=40
    )
    sides_x = (head.cx - head.rx - hair.volume, head.cx + head.rx + hair.volume)
    outline = np.concatenate([[(sides_x[0], bottom_y)], top, [(sides_x[1], bottom_y)]])
    if hair.texture == "wavy":
        outline = _wavy(outline, (head.cx, head.cy), 5.0, rng.uniform(14.0, 20.0), rng.uniform(0, 2 * np.pi))
    return outline


def _draw_strands(pen: _Pen, head: _Head, hair: _Hair, bottom_y: float, rng: np.random.Generator) -> None:
    """Darker strands: straight falls for straight hair, ripples for wavy hair."""
    if hair.texture == "plain":
        return
    dark = _shade(hair.colour, 0.62)
    rows = np.linspace(head.cy - head.ry - 0.4 * hair.volume, bottom_y, 16)
    for side in (-1, 1):
        for offset in np.linspace(0.25, 0.85, 3) * hair.volume:
            x = head.cx + side * (head.rx + offset) * np.ones_like(rows)
            x = x - side * np.clip(head.cy - rows, 0.0, None) * 0.3
            if hair.texture == "wavy":
                x = x + 2.5 * np.sin(rows / 5.0 + rng.uniform(0, 2 * np.pi))
            pen.line(np.stack([x, rows], axis=1), dark, 1.0)


def _draw_back_hair(pen: _Pen, head: _Head, hair: _Hair, rng: np.random.Generator) -> None:
    """Long hair falling behind the face to the shoulders."""
    if hair.colour is None or not hair.long:
        return
    bottom_y = head.chin_y + rng.uniform(10.0, 30.0)
    pen.polygon(_hair_outline(head, hair, bottom_y, rng), hair.colour)
    _draw_strands(pen, head, hair, bottom_y, rng)


def _draw_body(pen: _Pen, head: _Head, skin: Colour, rng: np.random.Generator) -> None:
    """Neck and shoulders in a random garment colour."""
    neck_half = 0.42 * head.rx
    pen.polygon(
        [
            (head.cx - neck_half, head.mouth_y),
            (head.cx + neck_half, head.mouth_y),
            (head.cx + neck_half, head.chin_y + 30),
            (head.cx - neck_half, head.chin_y + 30),
        ],
        _shade(skin, 0.88),
    )
    pen.ellipse(head.cx, head.chin_y + 75, 92.0, 58.0, fill=_random_colour(rng))
    # An open neckline shows skin below the neck in most garments.
    if rng.random() < 0.6:
        pen.polygon(
            [
                (head.cx - 1.4 * neck_half, head.chin_y + 16),
                (head.cx + 1.4 * neck_half, head.chin_y + 16),
                (head.cx, head.chin_y + 38),
            ],
            _shade(skin, 0.88),
        )


def _draw_necktie(pen: _Pen, head: _Head, rng: np.random.Generator) -> None:
    """White shirt collar with a coloured tie knot and blade."""
    top = head.chin_y + 12
    collar = (250, 250, 248)
    pen.polygon(
        [(head.cx - 20, top + 2), (head.cx, top + 10), (head.cx - 5, top + 22), (head.cx - 24, top + 14)], collar
    )
    pen.polygon(
        [(head.cx + 20, top + 2), (head.cx, top + 10), (head.cx + 5, top + 22), (head.cx + 24, top + 14)], collar
    )
    tie = _pick(rng, _TIE_COLOURS)
    pen.polygon(
        [(head.cx - 6, top + 7), (head.cx + 6, top + 7), (head.cx + 4, top + 16), (head.cx - 4, top + 16)],
        _shade(tie, 0.85),
    )
    pen.polygon(
        [(head.cx - 4, top + 16), (head.cx + 4, top + 16), (head.cx + 10, top + 60), (head.cx - 10, top + 60)], tie
    )


def _draw_necklace(pen: _Pen, head: _Head, rng: np.random.Generator) -> None:
    """A bead or chain necklace lying around the base of the neck, with a pendant."""
    jewel = _pick(rng, _JEWEL_COLOURS)
    chain = _ellipse_points(head.cx, head.chin_y + 2, 0.55 * head.rx, 17.0, 195, 345, count=15)
    pen.line(chain, _shade(jewel, 0.8), 1.8)
    for x, y in chain[1:-1:2]:
        pen.ellipse(x, y, 2.2, 2.2, fill=jewel)
    pen.ellipse(head.cx, head.chin_y + 20, 3.4, 4.0, fill=jewel)


def _draw_ears(pen: _Pen, head: _Head, skin: Colour) -> None:
    for side in (-1, 1):
        pen.ellipse(
            head.cx + side * 0.98 * head.rx,
            head.eye_y + 0.12 * head.ry,
            0.14 * head.rx,
            0.22 * head.ry,
            fill=_shade(skin, 0.92),
        )


def _draw_face_shape(pen: _Pen, head: _Head, skin: Colour, traits: dict[str, bool]) -> None:
    """The face; chubby faces get round cheeks, a double chin gets a fold under the chin."""
    pen.ellipse(head.cx, head.cy, head.rx, head.ry, fill=skin)
    if traits["Chubby"]:
        for side in (-1, 1):
            pen.ellipse(head.cx + side * 0.6 * head.rx, head.nose_y + 6, 0.42 * head.rx, 0.3 * head.ry, fill=skin)
    if traits["Double_Chin"]:
        pen.line(_ellipse_points(head.fx, head.chin_y - 4, 0.4 * head.rx, 7.0, 200, 340, 10), _shade(skin, 0.8), 1.5)


def _hairline(head: _Head, hair: _Hair, rng: np.random.Generator) -> np.ndarray:
    """Lower edge of the hair on the forehead, from the right temple to the left one."""
    temple_y = head.cy - (0.1 if hair.bangs else 0.3) * head.ry
    right, left = (head.cx + 1.02 * head.rx, temple_y), (head.cx - 1.02 * head.rx, temple_y)
    if hair.bangs:
        # A fringe cut just above the brows, with a ragged edge.
        xs = np.linspace(head.cx + 0.9 * head.rx, head.cx - 0.9 * head.rx, 11)
        ys = head.brow_y + rng.uniform(-2.0, 2.0, size=xs.size)
        return np.concatenate([[right], np.stack([xs, ys], axis=1), [left]])
    if hair.receding:
        # Bare temples: the hairline climbs high at the sides, an M shape.
        inner = [
            (head.cx + 0.5 * head.rx, head.cy - 0.88 * head.ry),
            (head.fx, head.cy - 0.74 * head.ry),
            (head.cx - 0.5 * head.rx, head.cy - 0.88 * head.ry),
        ]
        return np.array([right, *inner, left])
    arc = _ellipse_points(head.fx, temple_y, 0.95 * head.rx, 0.3 * head.ry, 0, 180, count=12)
    return np.concatenate([[right], arc, [left]])


def _draw_top_hair(pen: _Pen, head: _Head, hair: _Hair, rng: np.random.Generator) -> None:
    """Hair over the crown and forehead, down to the hairline (fringe, receding or normal)."""
    if hair.colour is None:
        return
    outline = _hair_outline(head, hair, head.eye_y - 0.05 * head.ry, rng)
    hairline = _hairline(head, hair, rng)
    if hair.bangs:
        # The fringe shades the skin just below it.
        pen.line(hairline[1:-1] + (0.0, 2.5), (0, 0, 0, 110), 5.0)
    pen.polygon(np.concatenate([outline, hairline]), hair.colour)
    _draw_strands(pen, head, hair, head.eye_y, rng)
    if hair.bangs:
        for x, y in hairline[2:-2:2]:
            pen.line([(x + 1.5, head.cy - 0.62 * head.ry), (x, y - 1)], _shade(hair.colour, 0.6), 1.2)


def _draw_bald_shine(pen: _Pen, head: _Head, hair: _Hair) -> None:
    """A light reflection on a bald scalp."""
    if hair.colour is None:
        pen.ellipse(
            head.cx - 0.15 * head.rx, head.cy - 0.8 * head.ry, 0.4 * head.rx, 0.1 * head.ry, fill=(255, 255, 255, 110)
        )


def _draw_eyes(pen: _Pen, head: _Head, traits: dict[str, bool], skin: Colour, rng: np.random.Generator) -> None:
    """Eyes with eye shadow and heavy liner for heavy make-up, slits for narrow eyes, bags below."""
    eye_rx, eye_ry = 0.22 * head.rx, (1.2 if traits["Narrow_Eyes"] else 4.4)
    iris = _pick(rng, _EYE_COLOURS)
    shadow = _pick(rng, _EYESHADOW_COLOURS)
    for side in (-1, 1):
        x = head.fx + side * head.eye_dx
        if traits["Heavy_Makeup"]:
            pen.ellipse(x, head.eye_y - 3.0, 1.25 * eye_rx, 6.0, fill=shadow)
        if traits["Bags_Under_Eyes"]:
            pen.line(_ellipse_points(x, head.eye_y + 2, eye_rx, 5.0, 200, 340, 8), _shade(skin, 0.78), 1.4)
        pen.ellipse(
            x,
            head.eye_y,
            eye_rx,
            eye_ry,
            fill=(242, 240, 236),
            outline=(40, 30, 30),
            width=2.2 if traits["Heavy_Makeup"] else 0.8,
        )
        pen.ellipse(x, head.eye_y, 2.8, min(2.8, eye_ry), fill=iris)
        pen.ellipse(x, head.eye_y, 1.2, min(1.2, eye_ry), fill=(10, 10, 10))


def _draw_brows(pen: _Pen, head: _Head, hair: _Hair, traits: dict[str, bool]) -> None:
    """Bushy brows are thick, arched brows peak in the middle."""
    colour = _shade(hair.colour, 0.7) if hair.colour else (60, 45, 35)
    width = 4.2 if traits["Bushy_Eyebrows"] else 1.8
    lift = 4.5 if traits["Arched_Eyebrows"] else 1.0
    for side in (-1, 1):
        x = head.fx + side * head.eye_dx
        inner, outer = x - side * 0.24 * head.rx, x + side * 0.26 * head.rx
        pen.line([(inner, head.brow_y + 1), (x, head.brow_y - lift), (outer, head.brow_y + 2)], colour, width)


def _draw_nose(pen: _Pen, head: _Head, traits: dict[str, bool], skin: Colour) -> None:
    """A shaded ridge and nostrils; a big nose is long and wide with a bulbous tip."""
    dark = _shade(skin, 0.72)
    half = 0.34 * head.rx if traits["Big_Nose"] else 0.15 * head.rx
    tip_y = head.nose_y + (4 if traits["Big_Nose"] else 0) + (3 if traits["Pointy_Nose"] else 0)
    if traits["Big_Nose"]:
        pen.ellipse(head.fx, tip_y - 2, 0.6 * half, 5.0, fill=_shade(skin, 0.9))
    pen.line([(head.fx - 1, head.eye_y + 4), (head.fx - 0.3 * half, tip_y - 2), (head.fx, tip_y)], dark, 1.4)
    for side in (-1, 1):
        pen.ellipse(head.fx + side * 0.55 * half, tip_y, 0.28 * half, 1.2 + 0.1 * half, fill=_shade(skin, 0.5))
        pen.line([(head.fx + side * half, tip_y - 5), (head.fx + side * 0.8 * half, tip_y + 1)], dark, 0.1 * half + 0.8)


def _draw_cheeks(pen: _Pen, head: _Head, traits: dict[str, bool]) -> None:
    if traits["Rosy_Cheeks"]:
        for side in (-1, 1):
            pen.ellipse(
                head.fx + side * 0.58 * head.rx, head.nose_y + 1, 0.2 * head.rx, 0.12 * head.ry, fill=(228, 70, 95, 140)
            )


def _jaw_polygon(head: _Head, top_y: float) -> np.ndarray:
    """The lower face below ``top_y``: the face outline from side to side, under the chin."""
    half_angle = np.rad2deg(np.arcsin(np.clip((top_y - head.cy) / head.ry, -1.0, 1.0)))
    return _ellipse_points(head.cx, head.cy, head.rx, head.ry, -half_angle, -180 + half_angle, count=24)


def _draw_facial_hair(pen: _Pen, head: _Head, hair: _Hair, traits: dict[str, bool]) -> None:
    """Stubble, then a full jaw beard when No_Beard is off and no specific style is named,
    else the named goatee, moustache and sideburns."""
    colour = hair.beard_colour
    if traits["5_o_Clock_Shadow"]:
        pen.polygon(_jaw_polygon(head, head.nose_y + 4), (55, 55, 70, 40))
    specific = traits["Goatee"] or traits["Mustache"] or traits["Sideburns"]
    if not traits["No_Beard"] and not specific:
        pen.polygon(_jaw_polygon(head, head.nose_y + 4), colour)
    if traits["Goatee"]:
        pen.ellipse(head.fx, head.chin_y - 0.2 * head.ry, 0.26 * head.rx, 0.18 * head.ry, fill=colour)
    if traits["Mustache"]:
        pen.line(
            [
                (head.fx - 0.42 * head.rx, head.mouth_y - 1),
                (head.fx, head.mouth_y - 7),
                (head.fx + 0.42 * head.rx, head.mouth_y - 1),
            ],
            colour,
            6.0,
        )
    if traits["Sideburns"]:
        for side in (-1, 1):
            x = head.cx + side * 0.9 * head.rx
            pen.polygon(
                [
                    (x - 5, head.eye_y - 6),
                    (x + 5, head.eye_y - 6),
                    (x + 4 - side * 3, head.mouth_y + 2),
                    (x - 4 - side * 3, head.mouth_y + 2),
                ],
                colour,
            )


def _draw_mouth(pen: _Pen, head: _Head, traits: dict[str, bool], skin: Colour, rng: np.random.Generator) -> None:
    """Lips in lipstick or skin tone. A smile is wide with raised corners and smile lines (open:
    a D shape showing teeth); a non-smiling open mouth is a small dark oval."""
    lips = _pick(rng, _LIPSTICK_COLOURS) if traits["Wearing_Lipstick"] else _shade(skin, 0.72)
    lip_width = 4.0 if traits["Big_Lips"] else 2.4
    smiling, open_mouth = traits["Smiling"], traits["Mouth_Slightly_Open"]
    half = (0.5 if smiling else 0.33) * head.rx
    x, y = head.fx, head.mouth_y
    if smiling:
        for side in (-1, 1):
            pen.line(
                [(x + side * (half + 4), y - 10), (x + side * (half + 7), y - 3), (x + side * (half + 4), y + 3)],
                _shade(skin, 0.7),
                1.6,
            )
    if open_mouth and smiling:
        opening = _ellipse_points(x, y - 3, half, 11.0, 0, -180, count=14)
        pen.polygon(opening, (70, 20, 28))
        pen.polygon(
            [(x - 0.85 * half, y - 3), (x + 0.85 * half, y - 3), (x + 0.75 * half, y + 2), (x - 0.75 * half, y + 2)],
            (245, 245, 240),
        )
        pen.line(np.concatenate([opening, opening[:1]]), lips, lip_width)
    elif open_mouth:
        pen.ellipse(x, y + 1, 0.6 * half, 6.0, fill=(70, 20, 28), outline=lips, width=lip_width)
    else:
        curve = 7.0 if smiling else 0.8
        upper = np.array(
            [(x - half, y - curve), (x - 0.4 * half, y), (x, y + 0.3), (x + 0.4 * half, y), (x + half, y - curve)]
        )
        pen.line(upper, lips, lip_width)
        pen.line(upper + (0, 0.8 * lip_width), _shade(lips, 0.9), 0.8 * lip_width)


def _draw_age_lines(pen: _Pen, head: _Head, traits: dict[str, bool], skin: Colour) -> None:
    """Forehead wrinkles and nose-to-mouth folds on older faces."""
    if traits["Young"]:
        return
    line = _shade(skin, 0.8)
    for row in (0.5, 0.6):
        y = head.cy - row * head.ry
        pen.line([(head.fx - 0.35 * head.rx, y + 1), (head.fx, y), (head.fx + 0.35 * head.rx, y + 1)], line, 1.0)
    for side in (-1, 1):
        pen.line(
            [(head.fx + side * 0.28 * head.rx, head.nose_y), (head.fx + side * 0.44 * head.rx, head.mouth_y + 3)],
            line,
            1.2,
        )


def _draw_glasses(pen: _Pen, head: _Head, rng: np.random.Generator) -> None:
    """Round or rectangular frames with a bridge and temples; a quarter are sunglasses."""
    frame = _pick(rng, ((20, 20, 20), (70, 45, 25), (40, 40, 60), (110, 20, 30)))
    lens_fill = (25, 25, 30, 225) if rng.random() < 0.25 else (255, 255, 255, 40)
    lens_rx, lens_ry = 0.3 * head.rx, 7.5 if rng.random() < 0.5 else 9.0
    for side in (-1, 1):
        x = head.fx + side * head.eye_dx
        pen.ellipse(x, head.eye_y, lens_rx, lens_ry, fill=lens_fill, outline=frame, width=3.0)
        pen.line([(x + side * lens_rx, head.eye_y - 2), (head.cx + side * 0.98 * head.rx, head.eye_y - 1)], frame, 2.0)
    pen.line(
        [(head.fx - head.eye_dx + lens_rx, head.eye_y - 2), (head.fx + head.eye_dx - lens_rx, head.eye_y - 2)],
        frame,
        2.0,
    )


def _draw_earrings(pen: _Pen, head: _Head, rng: np.random.Generator) -> None:
    """Studs or hoops hanging from both ear lobes."""
    jewel = _pick(rng, _JEWEL_COLOURS)
    hoop = rng.random() < 0.5
    for side in (-1, 1):
        x, y = head.cx + side * 0.99 * head.rx, head.eye_y + 0.33 * head.ry
        if hoop:
            pen.ellipse(x, y + 5, 4.5, 5.5, outline=jewel, width=1.8)
        else:
            pen.ellipse(x, y + 2, 3.0, 3.0, fill=jewel)


def _draw_hat(pen: _Pen, head: _Head, hair: _Hair, rng: np.random.Generator) -> None:
    """A beanie, a brimmed hat or a cap covering the crown down to the forehead."""
    colour = _random_colour(rng)
    brim_y = head.cy - 0.55 * head.ry
    crown = _ellipse_points(head.cx, brim_y, head.rx + 0.6 * hair.volume + 3, 0.75 * head.ry + hair.volume, 180, 0)
    kind = int(rng.integers(3))
    # Every hat shades the forehead under its lower edge.
    pen.polygon(
        [
            (head.cx - 0.95 * head.rx, brim_y),
            (head.cx + 0.95 * head.rx, brim_y),
            (head.cx + 0.9 * head.rx, brim_y + 11),
            (head.cx - 0.9 * head.rx, brim_y + 11),
        ],
        (0, 0, 0, 140),
    )
    if kind == 1:  # brimmed hat: tall crown, wide brim
        pen.polygon(
            [
                (head.cx - 0.85 * head.rx, brim_y),
                (head.cx - 0.75 * head.rx, brim_y - 0.75 * head.ry - 16),
                (head.cx + 0.75 * head.rx, brim_y - 0.75 * head.ry - 16),
                (head.cx + 0.85 * head.rx, brim_y),
            ],
            colour,
        )
        pen.ellipse(head.cx, brim_y, 1.6 * head.rx, 6.0, fill=_shade(colour, 0.85))
        return
    pen.polygon(crown, colour)
    if kind == 0:  # beanie: a folded band above the brows
        pen.polygon(
            [
                (crown[0][0], brim_y - 9),
                (crown[-1][0], brim_y - 9),
                (crown[-1][0], brim_y + 2),
                (crown[0][0], brim_y + 2),
            ],
            _shade(colour, 0.8),
        )
    else:  # cap: a visor sticking out over the face
        pen.ellipse(head.fx, brim_y + 1, 0.95 * head.rx, 6.0, fill=_shade(colour, 0.75))


def _finish(canvas: Image.Image, blurry: bool, rng: np.random.Generator) -> np.ndarray:
    """Downsample to 178x218, blur if Blurry, then exposure and sensor noise."""
    image = canvas.reduce(_SUPERSAMPLE)
    if blurry:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(1.8, 2.6)))
    pixels = np.asarray(image, dtype=np.float32) * np.float32(rng.uniform(0.85, 1.12))
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 4.0))
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _traits(attributes: np.ndarray) -> dict[str, bool]:
    """Attribute row (±1 or 0/1, [40]) as name -> present."""
    row = np.asarray(attributes)
    if row.shape != (len(CELEBA_ATTRIBUTES),):
        raise ValueError(f"an attribute row must have {len(CELEBA_ATTRIBUTES)} values, got shape {row.shape}")
    return {name: bool(row[index] > 0) for name, index in _ATTRIBUTE_INDEX.items()}


def render_face(attributes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One aligned-CelebA-like image uint8 [218, 178, 3] showing ``attributes`` (a ±1 row [40]).

    Inconsistent rows are drawn by precedence: Bald wins over hair colours, the first of
    Gray/Blond/Black/Brown wins over the others, Wavy over Straight.
    """
    traits = _traits(attributes)
    head, hair = _head(traits, rng), _hair(traits, rng)
    skin = _skin_colour(traits["Pale_Skin"], rng)
    canvas = _background(rng)
    pen = _Pen(canvas)
    _draw_back_hair(pen, head, hair, rng)
    _draw_body(pen, head, skin, rng)
    if traits["Wearing_Necktie"]:
        _draw_necktie(pen, head, rng)
    if traits["Wearing_Necklace"]:
        _draw_necklace(pen, head, rng)
    _draw_ears(pen, head, skin)
    _draw_face_shape(pen, head, skin, traits)
    _draw_age_lines(pen, head, traits, skin)
    _draw_top_hair(pen, head, hair, rng)
    _draw_bald_shine(pen, head, hair)
    _draw_cheeks(pen, head, traits)
    _draw_eyes(pen, head, traits, skin, rng)
    _draw_brows(pen, head, hair, traits)
    _draw_nose(pen, head, traits, skin)
    _draw_facial_hair(pen, head, hair, traits)
    _draw_mouth(pen, head, traits, skin, rng)
    if traits["Eyeglasses"]:
        _draw_glasses(pen, head, rng)
    if traits["Wearing_Earrings"]:
        _draw_earrings(pen, head, rng)
    if traits["Wearing_Hat"]:
        _draw_hat(pen, head, hair, rng)
    return _finish(canvas, traits["Blurry"], rng)


def render_faces(attributes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images uint8 [n, 218, 178, 3] for attribute rows [n, 40]; image i draws from its own
    child of ``rng`` (``rng.spawn``), so it depends only on ``rng``'s state and i."""
    attributes = np.asarray(attributes)
    children = rng.spawn(len(attributes))
    images = np.empty((len(attributes), *CELEBA_SHAPE), dtype=np.uint8)
    for index, (row, child) in enumerate(zip(attributes, children, strict=True)):
        images[index] = render_face(row, child)
    return images
