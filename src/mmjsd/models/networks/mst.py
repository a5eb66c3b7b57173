"""MNIST-SVHN-Text networks (docs/reference-code.md §2.1; identical in the mmjsd and MoPoE repositories).

Encoders end in linear Gaussian heads on a 400-d (MNIST) or 128-d (SVHN, text) feature;
decoders take concat[style, content]. MNIST decodes to a sigmoid Laplace location, SVHN to
an unbounded location, text to logits over the 71 characters at each of the 8 positions.
"""

from __future__ import annotations

from torch import nn

from mmjsd.models.networks.blocks import ALPHABET_SIZE, Decoder, Encoder, Transpose

#: Characters per MST text (docs/reference-code.md §1.2).
TEXT_LENGTH = 8

#: Shape of one example of each modality (docs/file-formats.md).
DATA_SHAPES: dict[str, tuple[int, ...]] = {
    "mnist": (1, 28, 28),
    "svhn": (3, 32, 32),
    "text": (TEXT_LENGTH, ALPHABET_SIZE),
}

_MNIST_HIDDEN = 400
_CONV_FEATURES = 128


def mnist_encoder(content_dim: int, style_dim: int) -> Encoder:
    """flatten 784 → Linear 400 + ReLU → heads."""
    body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, _MNIST_HIDDEN), nn.ReLU())
    return Encoder(body, _MNIST_HIDDEN, content_dim, style_dim)


def mnist_decoder(latent_dim: int) -> Decoder:
    """Linear 400 + ReLU → Linear 784 → sigmoid → [1, 28, 28] (Laplace location in (0, 1))."""
    body = nn.Sequential(
        nn.Linear(latent_dim, _MNIST_HIDDEN),
        nn.ReLU(),
        nn.Linear(_MNIST_HIDDEN, 28 * 28),
        nn.Sigmoid(),
        nn.Unflatten(1, DATA_SHAPES["mnist"]),
    )
    return Decoder(body)


def svhn_encoder(content_dim: int, style_dim: int) -> Encoder:
    """Four stride-2 convolutions 32×32 → 16 → 8 → 4 → 1 (channels 32, 64, 64, 128) → heads."""
    body = nn.Sequential(
        nn.Conv2d(3, 32, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(64, _CONV_FEATURES, 4, 2, 0),
        nn.ReLU(),
        nn.Flatten(),
    )
    return Encoder(body, _CONV_FEATURES, content_dim, style_dim)


def svhn_decoder(latent_dim: int) -> Decoder:
    """Linear 128 → [128, 1, 1] → ReLU → transposed convolutions 1 → 4 → 8 → 16 → 32, no output activation."""
    body = nn.Sequential(
        nn.Linear(latent_dim, _CONV_FEATURES),
        nn.Unflatten(1, (_CONV_FEATURES, 1, 1)),
        nn.ReLU(),
        nn.ConvTranspose2d(_CONV_FEATURES, 64, 4, 1, 0),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 64, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 3, 4, 2, 1),
    )
    return Decoder(body)


def text_encoder(content_dim: int, style_dim: int) -> Encoder:
    """[B, 8, 71] → [B, 71, 8] → Conv1d k1 (128) → stride-2 Conv1d to length 4 and 1 → heads."""
    body = nn.Sequential(
        Transpose(1, 2),
        nn.Conv1d(ALPHABET_SIZE, _CONV_FEATURES, 1),
        nn.ReLU(),
        nn.Conv1d(_CONV_FEATURES, _CONV_FEATURES, 4, 2, 1),
        nn.ReLU(),
        nn.Conv1d(_CONV_FEATURES, _CONV_FEATURES, 4, 2, 0),
        nn.ReLU(),
        nn.Flatten(),
    )
    return Encoder(body, _CONV_FEATURES, content_dim, style_dim)


def text_decoder(latent_dim: int) -> Decoder:
    """Linear 128 (no activation) → [128, 1] → ConvT1d to length 4 and 8 → Conv1d k1 to 71 logits → [B, 8, 71].

    The reference applies a log-softmax here; the logits are normalised in the
    likelihood instead (docs/reference-code.md §2.5, docs/design.md §4).
    """
    body = nn.Sequential(
        nn.Linear(latent_dim, _CONV_FEATURES),
        nn.Unflatten(1, (_CONV_FEATURES, 1)),
        nn.ConvTranspose1d(_CONV_FEATURES, _CONV_FEATURES, 4, 1, 0),
        nn.ReLU(),
        nn.ConvTranspose1d(_CONV_FEATURES, _CONV_FEATURES, 4, 2, 1),
        nn.ReLU(),
        nn.Conv1d(_CONV_FEATURES, ALPHABET_SIZE, 1),
        Transpose(1, 2),
    )
    return Decoder(body)


def build_networks(content_dim: int, style_dims: dict[str, int]) -> tuple[dict[str, Encoder], dict[str, Decoder]]:
    """Encoders and decoders for ``mnist``, ``svhn`` and ``text``, keyed by modality."""
    encoders = {
        "mnist": mnist_encoder(content_dim, style_dims["mnist"]),
        "svhn": svhn_encoder(content_dim, style_dims["svhn"]),
        "text": text_encoder(content_dim, style_dims["text"]),
    }
    decoders = {
        "mnist": mnist_decoder(content_dim + style_dims["mnist"]),
        "svhn": svhn_decoder(content_dim + style_dims["svhn"]),
        "text": text_decoder(content_dim + style_dims["text"]),
    }
    return encoders, decoders
