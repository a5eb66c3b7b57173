"""CelebA image and attribute-text networks (docs/reference-code.md §2.3, the mmjsd version).

Residual feature extractors with DIM = 128 channels per stage (128 → 640), residual
weights a = 2.0 (shortcut) and b = 0.3 (branch), a 640-d feature and linear Gaussian heads;
decoders mirror them with transposed residual blocks. The image decoder gives an
unbounded Laplace location [B, 3, 64, 64]; the text decoder gives logits [B, 256, 71].
The image encoder's first convolution uses padding 1 (mmjsd), not MoPoE's 2 (§2.4).
"""

from __future__ import annotations

from torch import nn

from mmjsd.models.networks.blocks import ALPHABET_SIZE, Decoder, Encoder, ResidualBlock, Transpose

#: Characters per CelebA attribute text (docs/reference-code.md §1.3).
TEXT_LENGTH = 256

#: Shape of one example of each modality (docs/file-formats.md).
DATA_SHAPES: dict[str, tuple[int, ...]] = {
    "img": (3, 64, 64),
    "text": (TEXT_LENGTH, ALPHABET_SIZE),
}

#: Channels per stage (the reference's DIM_img = DIM_text).
DIM = 128
SHORTCUT_WEIGHT = 2.0
BRANCH_WEIGHT = 0.3
_FEATURES = 5 * DIM


def _residual(
    channels_in: int, channels_out: int, stride: int, padding: int, *, spatial_dims: int, transposed: bool
) -> ResidualBlock:
    """Kernel-4 residual block with the CelebA weights; 2-D branches have no bias, 1-D ones do (reference)."""
    return ResidualBlock(
        channels_in,
        channels_out,
        4,
        stride,
        padding,
        spatial_dims=spatial_dims,
        transposed=transposed,
        branch_bias=spatial_dims == 1,
        shortcut_weight=SHORTCUT_WEIGHT,
        branch_weight=BRANCH_WEIGHT,
    )


def image_encoder(content_dim: int, style_dim: int) -> Encoder:
    """Conv 3→128 (k3, s2, no bias) [32×32] → residual 128→256→384→512 [16, 8, 4] → 512→640 (p0) [1×1] → heads."""
    body = nn.Sequential(
        nn.Conv2d(3, DIM, 3, 2, 1, bias=False),
        _residual(DIM, 2 * DIM, 2, 1, spatial_dims=2, transposed=False),
        _residual(2 * DIM, 3 * DIM, 2, 1, spatial_dims=2, transposed=False),
        _residual(3 * DIM, 4 * DIM, 2, 1, spatial_dims=2, transposed=False),
        _residual(4 * DIM, 5 * DIM, 2, 0, spatial_dims=2, transposed=False),
        nn.Flatten(),
    )
    return Encoder(body, _FEATURES, content_dim, style_dim)


def image_decoder(latent_dim: int) -> Decoder:
    """Linear 640 → [640, 1, 1] → transposed residual 640→512 [4×4] → 384 [8] → 256 [16] → 128 [32] → ConvT 128→3 [64].

    No output activation: an unbounded Laplace location.
    """
    body = nn.Sequential(
        nn.Linear(latent_dim, _FEATURES),
        nn.Unflatten(1, (_FEATURES, 1, 1)),
        _residual(5 * DIM, 4 * DIM, 1, 0, spatial_dims=2, transposed=True),
        _residual(4 * DIM, 3 * DIM, 2, 1, spatial_dims=2, transposed=True),
        _residual(3 * DIM, 2 * DIM, 2, 1, spatial_dims=2, transposed=True),
        _residual(2 * DIM, DIM, 2, 1, spatial_dims=2, transposed=True),
        nn.ConvTranspose2d(DIM, 3, 3, 2, 1, output_padding=1),
    )
    return Decoder(body)


def text_encoder(content_dim: int, style_dim: int) -> Encoder:
    """[B, 256, 71] → [B, 71, 256] → Conv1d 71→128 (k4, s2) [128] → residual blocks → 640-d feature → heads.

    Residual blocks to 256, 384, 512, 640, 640 channels (lengths 64 … 4), then 640 with padding 0 (length 1).
    """
    body = nn.Sequential(
        Transpose(1, 2),
        nn.Conv1d(ALPHABET_SIZE, DIM, 4, 2, 1),
        _residual(DIM, 2 * DIM, 2, 1, spatial_dims=1, transposed=False),
        _residual(2 * DIM, 3 * DIM, 2, 1, spatial_dims=1, transposed=False),
        _residual(3 * DIM, 4 * DIM, 2, 1, spatial_dims=1, transposed=False),
        _residual(4 * DIM, 5 * DIM, 2, 1, spatial_dims=1, transposed=False),
        _residual(5 * DIM, 5 * DIM, 2, 1, spatial_dims=1, transposed=False),
        _residual(5 * DIM, 5 * DIM, 2, 0, spatial_dims=1, transposed=False),
        nn.Flatten(),
    )
    return Encoder(body, _FEATURES, content_dim, style_dim)


def text_decoder(latent_dim: int) -> Decoder:
    """Linear 640 → [640, 1] → transposed residual blocks → ConvT1d 128→71 [256] → [B, 256, 71] logits.

    Blocks to 640 [length 4], 640 [8], 512, 384, 256, 128 [128].

    The reference applies a log-softmax here; the logits are normalised in the
    likelihood instead (docs/reference-code.md §2.5, docs/design.md §4).
    """
    body = nn.Sequential(
        nn.Linear(latent_dim, _FEATURES),
        nn.Unflatten(1, (_FEATURES, 1)),
        _residual(5 * DIM, 5 * DIM, 1, 0, spatial_dims=1, transposed=True),
        _residual(5 * DIM, 5 * DIM, 2, 1, spatial_dims=1, transposed=True),
        _residual(5 * DIM, 4 * DIM, 2, 1, spatial_dims=1, transposed=True),
        _residual(4 * DIM, 3 * DIM, 2, 1, spatial_dims=1, transposed=True),
        _residual(3 * DIM, 2 * DIM, 2, 1, spatial_dims=1, transposed=True),
        _residual(2 * DIM, DIM, 2, 1, spatial_dims=1, transposed=True),
        nn.ConvTranspose1d(DIM, ALPHABET_SIZE, 4, 2, 1),
        Transpose(1, 2),
    )
    return Decoder(body)


def build_networks(content_dim: int, style_dims: dict[str, int]) -> tuple[dict[str, Encoder], dict[str, Decoder]]:
    """Encoders and decoders for ``img`` and ``text``, keyed by modality."""
    encoders = {
        "img": image_encoder(content_dim, style_dims["img"]),
        "text": text_encoder(content_dim, style_dims["text"]),
    }
    decoders = {
        "img": image_decoder(content_dim + style_dims["img"]),
        "text": text_decoder(content_dim + style_dims["text"]),
    }
    return encoders, decoders
