"""Building blocks shared by the per-modality networks (docs/reference-code.md §2).

An :class:`Encoder` is a feature body followed by linear Gaussian heads; a
:class:`Decoder` concatenates [style, content] and runs a body that ends in the
likelihood's parameters. :class:`ResidualBlock` is the a·shortcut + b·branch block of the
CelebA networks (and of the reference's residual classifiers), in 1-D or 2-D, plain or
transposed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Symbols of the reference text alphabet (docs/reference-code.md §1.2): the channel count of text.
ALPHABET_SIZE = 71


@dataclass
class Encoding:
    """One modality's encoder output: content (shared) Gaussian and optional style Gaussian.

    All tensors are [B, dim] (mean and log-variance). ``style_mu``/``style_logvar`` are
    None when the modality has no modality-specific subspace.
    """

    content_mu: torch.Tensor
    content_logvar: torch.Tensor
    style_mu: torch.Tensor | None = None
    style_logvar: torch.Tensor | None = None


class Transpose(nn.Module):
    """Swap two dimensions: text is [B, L, C] in batches and [B, C, L] inside 1-D convolutions."""

    def __init__(self, dim0: int, dim1: int):
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class Encoder(nn.Module):
    """``body`` maps data to [B, feature_dim]; linear heads give content and style (mu, logvar).

    Log-variances are the raw linear outputs (no clamp, no softplus), as in the reference;
    outputs are at least float32 (see :func:`_at_least_float32`).
    """

    def __init__(self, body: nn.Module, feature_dim: int, content_dim: int, style_dim: int):
        super().__init__()
        self.body = body
        self.content_mu = nn.Linear(feature_dim, content_dim)
        self.content_logvar = nn.Linear(feature_dim, content_dim)
        self.style_mu = nn.Linear(feature_dim, style_dim) if style_dim > 0 else None
        self.style_logvar = nn.Linear(feature_dim, style_dim) if style_dim > 0 else None

    def forward(self, x: torch.Tensor) -> Encoding:
        features = self.body(x)
        encoding = Encoding(
            _at_least_float32(self.content_mu(features)), _at_least_float32(self.content_logvar(features))
        )
        if self.style_mu is not None:
            encoding.style_mu = _at_least_float32(self.style_mu(features))
            encoding.style_logvar = _at_least_float32(self.style_logvar(features))
        return encoding


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Under bf16 autocast the heads give bf16; the Gaussian math downstream (exp of log-variances,
    precisions of products, KLs) then loses digits, so latents are kept in float32 or wider."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class Decoder(nn.Module):
    """``body`` maps concat[style, content] ([B, style_dim + content_dim]) to likelihood parameters."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, content: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        latent = content if style is None else torch.cat([style, content], dim=-1)
        return self.body(latent)


_CONVOLUTIONS = {
    (1, False): nn.Conv1d,
    (1, True): nn.ConvTranspose1d,
    (2, False): nn.Conv2d,
    (2, True): nn.ConvTranspose2d,
}
_BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_DROPOUTS = {1: nn.Dropout, 2: nn.Dropout2d}


class ResidualBlock(nn.Module):
    """out = a · shortcut(x) + b · branch(x) (docs/reference-code.md §2.3).

    branch: BN → ReLU → 1×1 conv (channels_in → channels_in) → dropout(0.5) → BN → ReLU →
    k-conv (channels_in → channels_out, stride, padding) → dropout(0.5).
    shortcut: the same k-conv (always with bias) followed by BN. Every block of these
    networks changes the channel count or the length, so the shortcut is always this
    projection. ``transposed`` swaps both convolutions for transposed ones (decoders);
    ``branch_bias`` is False for the reference's 2-D blocks and True for its 1-D blocks;
    dropout is channel-wise (Dropout2d) in 2-D and element-wise in 1-D, as the reference.
    """

    def __init__(
        self,
        channels_in: int,
        channels_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        *,
        spatial_dims: int,
        transposed: bool,
        branch_bias: bool,
        shortcut_weight: float,
        branch_weight: float,
    ):
        super().__init__()
        conv = _CONVOLUTIONS[(spatial_dims, transposed)]
        batch_norm, dropout = _BATCH_NORMS[spatial_dims], _DROPOUTS[spatial_dims]
        self.branch = nn.Sequential(
            batch_norm(channels_in),
            nn.ReLU(),
            conv(channels_in, channels_in, 1, bias=branch_bias),
            dropout(0.5),
            batch_norm(channels_in),
            nn.ReLU(),
            conv(channels_in, channels_out, kernel_size, stride, padding, bias=branch_bias),
            dropout(0.5),
        )
        self.shortcut = nn.Sequential(
            conv(channels_in, channels_out, kernel_size, stride, padding),
            batch_norm(channels_out),
        )
        self.shortcut_weight = shortcut_weight
        self.branch_weight = branch_weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut_weight * self.shortcut(x) + self.branch_weight * self.branch(x)
