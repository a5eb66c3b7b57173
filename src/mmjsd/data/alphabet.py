"""The reference's 71-symbol text alphabet and the text encodings built on it.

Order (docs/reference-code.md §1.2): ``a``-``z`` (0-25), ``0``-``9`` (26-35), 33 punctuation symbols
(36-68; ``-`` appears twice, at 36 and 59, and ``*`` is 55), space (69), newline (70).
Encoding looks characters up by first occurrence, as the reference's ``str.find`` does,
so channel 59 is never set.
"""

from __future__ import annotations

import numpy as np

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"\\/|_@#$%^&*~`+-=<>()[]{} \n"
NUM_SYMBOLS = len(ALPHABET)
assert NUM_SYMBOLS == 71

SPACE = ALPHABET.index(" ")
PAD_STAR = ALPHABET.index("*")

#: Symbol → index by first occurrence; 256-entry lookup table for vectorised encoding.
_LOOKUP = np.full(256, -1, dtype=np.int16)
for _i in reversed(range(NUM_SYMBOLS)):
    _LOOKUP[ord(ALPHABET[_i])] = _i

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def encode(text: str) -> np.ndarray:
    """Character indices (uint8) of ``text``; a symbol outside the alphabet is an error."""
    try:
        codes = np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError as err:
        raise ValueError(f"character {text[err.start]!r} is not in the 71-symbol alphabet") from err
    indices = _LOOKUP[codes]
    if (indices < 0).any():
        bad = text[int(np.argmax(indices < 0))]
        raise ValueError(f"character {bad!r} is not in the 71-symbol alphabet")
    return indices.astype(np.uint8)


def decode(indices) -> str:
    """The string of character indices (any integer array-like)."""
    return "".join(ALPHABET[int(i)] for i in np.asarray(indices).reshape(-1))


def one_hot(indices: np.ndarray) -> np.ndarray:
    """float32 one-hot ``[..., L, 71]`` of character indices ``[..., L]``."""
    return np.eye(NUM_SYMBOLS, dtype=np.float32)[np.asarray(indices, dtype=np.int64)]


# ------------------------------------------------------------ MNIST-SVHN-Text words
_WORD_CODES = [encode(w) for w in DIGIT_WORDS]
WORD_LENGTHS = np.array([len(w) for w in DIGIT_WORDS], dtype=np.int64)


def max_word_start(labels: np.ndarray, length: int) -> np.ndarray:
    """Largest legal start of each digit word: ``length - 1 - len(word)``.

    The reference draws ``random.randint(0, length - 1 - len(word))`` (both ends
    inclusive), so the last character is always a space.
    """
    return length - 1 - WORD_LENGTHS[np.asarray(labels, dtype=np.int64)]


def draw_word_starts(labels: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform start offsets in [0, max_word_start] per label (inclusive), as the reference."""
    high = max_word_start(labels, length)
    if (high < 0).any():
        raise ValueError(f"text length {length} is too short for the digit words (needs at least 6)")
    return rng.integers(0, high + 1)


def digit_texts(labels: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """uint8 ``[N, length]`` character indices: the digit word at ``starts``, spaces elsewhere."""
    labels = np.asarray(labels, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    texts = np.full((len(labels), length), SPACE, dtype=np.uint8)
    for digit, codes in enumerate(_WORD_CODES):
        rows = np.flatnonzero(labels == digit)
        if rows.size:
            cols = starts[rows, None] + np.arange(len(codes))
            texts[rows[:, None], cols] = codes
    return texts


# ----------------------------------------------------------------- CelebA attributes
def attribute_text(names: list[str], present: np.ndarray, max_length: int) -> str:
    """The reference's attribute sentence: present names in file order, ", "-joined.

    Names are dropped from the end while the sentence is longer than ``max_length``;
    then "_" becomes a space and everything is lower-cased (docs/reference-code.md §1.3, steps 1-4).
    """
    chosen = [name for name, on in zip(names, present, strict=True) if on]
    while chosen and len(", ".join(chosen)) > max_length:
        chosen.pop()
    return ", ".join(chosen).replace("_", " ").lower()


def pad_attribute_text(sentence: str, length: int, rng: np.random.Generator) -> str:
    """Left- and right-pad with ``*`` to ``length`` at a random start (docs/reference-code.md §1.3, step 5).

    When the sentence is shorter than ``length - 1`` the start is drawn from
    ``[0, length - 1 - len)`` (upper end exclusive), otherwise it is 0. One draw is
    taken from ``rng`` either way, so later rows' offsets do not depend on this row's length.
    """
    draw = rng.random()
    start = int(draw * (length - 1 - len(sentence))) if len(sentence) < length - 1 else 0
    return ("*" * start + sentence).ljust(length, "*")
