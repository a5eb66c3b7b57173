"""Coherence-classifier architectures (docs/reference-code.md §2.6), one per (dataset, modality).

Every classifier is a feature ``body`` ending in a flat ``[B, feature_dim]`` vector,
optional dropout, and one linear layer giving **logits**: 10 digit logits for MST, 40
attribute logits for CelebA. The reference ends in a sigmoid; argmax and average
precision do not change under a monotone map, so training uses cross-entropy (digits)
or BCE-with-logits (attributes) on the logits instead. ``features(x)`` is the body's
output, the penultimate layer used by the fallback PRD feature extractor
(docs/metrics.md §2.4); in eval mode it equals the dropout's output the reference exposes.

The CelebA image body is the CelebA image encoder's feature extractor and every residual
block is :class:`mmjsd.models.networks.blocks.ResidualBlock`, so the classifiers share
those definitions with the VAEs.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from mmjsd.core import registry
from mmjsd.core.errors import UserError
from mmjsd.models.networks import celeba
from mmjsd.models.networks.blocks import ALPHABET_SIZE, ResidualBlock, Transpose

#: Digit classes (MST) and binary attributes (CelebA) predicted.
NUM_DIGITS = 10
NUM_ATTRIBUTES = 40

#: Branch weight of the MST text classifier's residual blocks; the shortcut weight is 1.
MST_TEXT_BRANCH_WEIGHT = 0.3


class Classifier(nn.Module):
    """``body`` → features ``[B, feature_dim]`` → dropout (optional) → linear → logits ``[B, num_outputs]``."""

    def __init__(self, body: nn.Module, feature_dim: int, num_outputs: int, head_dropout: bool):
        super().__init__()
        self.body = body
        self.dropout = nn.Dropout(0.5) if head_dropout else nn.Identity()
        self.head = nn.Linear(feature_dim, num_outputs)
        self.feature_dim = feature_dim
        self.num_outputs = num_outputs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer ``[B, feature_dim]`` (the fallback PRD embedding)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_outputs]``."""
        return self.head(self.dropout(self.body(x)))


def _residual_1d(
    channels_in: int, channels_out: int, padding: int, shortcut_weight: float, branch_weight: float
) -> ResidualBlock:
    """Kernel-4, stride-2 1-D residual block with biased convolutions (the reference's ResidualBlock1dConv)."""
    return ResidualBlock(
        channels_in,
        channels_out,
        4,
        2,
        padding,
        spatial_dims=1,
        transposed=False,
        branch_bias=True,
        shortcut_weight=shortcut_weight,
        branch_weight=branch_weight,
    )


def mnist_classifier() -> Classifier:
    """[B,1,28,28] → three unpadded k4/s2 convolutions with ReLU (13, 5, 1) → 128 → dropout → 10. 165,866 parameters."""
    body = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2),
        nn.ReLU(),
        nn.Conv2d(64, 128, 4, 2),
        nn.ReLU(),
        nn.Flatten(),
    )
    return Classifier(body, 128, NUM_DIGITS, head_dropout=True)


def _svhn_stage(channels_in: int, channels_out: int, padding: int) -> list[nn.Module]:
    """One k4/s2 convolution of the SVHN encoder followed by Dropout(0.5) → BatchNorm → ReLU."""
    return [
        nn.Conv2d(channels_in, channels_out, 4, 2, padding),
        nn.Dropout(0.5),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(),
    ]


def svhn_classifier() -> Classifier:
    """[B,3,32,32] → the SVHN encoder's convolutions (16, 8, 4, 1), each with
    dropout, BN, ReLU → 128 → 10. 233,066 parameters."""
    body = nn.Sequential(
        *_svhn_stage(3, 32, 1),
        *_svhn_stage(32, 64, 1),
        *_svhn_stage(64, 64, 1),
        *_svhn_stage(64, 128, 0),
        nn.Flatten(),
    )
    return Classifier(body, 128, NUM_DIGITS, head_dropout=False)


def mst_text_classifier() -> Classifier:
    """[B,8,71] → Conv1d 71→128 (k1) → residual 128→192 (len 4) → 192→128 (len 1) → dropout → 10. 459,850 parameters.

    Residual output = shortcut + 0.3 · branch (docs/reference-code.md §2.6).
    """
    body = nn.Sequential(
        Transpose(1, 2),
        nn.Conv1d(ALPHABET_SIZE, 128, 1),
        _residual_1d(128, 192, 1, 1.0, MST_TEXT_BRANCH_WEIGHT),
        _residual_1d(192, 128, 0, 1.0, MST_TEXT_BRANCH_WEIGHT),
        nn.Flatten(),
    )
    return Classifier(body, 128, NUM_DIGITS, head_dropout=True)


def celeba_image_classifier() -> Classifier:
    """[B,3,64,64] → the CelebA image encoder's feature extractor → 640 → dropout → 40 (about 21.5 M parameters)."""
    # The encoder's Gaussian heads are built and dropped: only its body is the reference's FeatureExtractorImg.
    body = celeba.image_encoder(content_dim=1, style_dim=0).body
    return Classifier(body, 5 * celeba.DIM, NUM_ATTRIBUTES, head_dropout=True)


def celeba_text_classifier() -> Classifier:
    """[B,256,71] → Conv1d 71→128 (k3, s2) [128] → residual 256, 384, 512,
    640, 768 [64 … 4] → 896 (p0) [1] → dropout → 40.

    About 16.3 M parameters. Kernel 4 / stride 2 for every block and padding 0 for the
    last, so the length reaches 1 as in the CelebA text encoder; residual weights are
    the CelebA ones (2.0 · shortcut + 0.3 · branch).
    """
    channels = [celeba.DIM * k for k in range(1, 8)]  # 128, 256, …, 896
    blocks = [
        _residual_1d(c_in, c_out, 0 if c_out == channels[-1] else 1, celeba.SHORTCUT_WEIGHT, celeba.BRANCH_WEIGHT)
        for c_in, c_out in itertools.pairwise(channels)
    ]
    body = nn.Sequential(
        Transpose(1, 2),
        nn.Conv1d(ALPHABET_SIZE, celeba.DIM, 3, 2, 1),
        *blocks,
        nn.Flatten(),
    )
    return Classifier(body, channels[-1], NUM_ATTRIBUTES, head_dropout=True)


def architecture_name(dataset: str, modality: str) -> str:
    """The ``"module:function"`` the spec of ``dataset`` names for the
    classifier of ``modality`` (recorded in model.pt)."""
    spec = registry.dataset(dataset)
    if modality not in spec.classifiers:
        raise UserError(f"dataset '{dataset}' has no modality '{modality}'; use one of {', '.join(spec.modalities)}")
    return spec.classifiers[modality]


def build_classifier(dataset: str, modality: str) -> Classifier:
    """A freshly initialised classifier for ``modality`` of ``dataset`` (seed torch first for reproducibility)."""
    name = architecture_name(dataset, modality)
    classifier = registry.load_object(name, f"dataset '{dataset}' classifier of {modality}")()
    if not isinstance(classifier, Classifier):
        raise UserError(
            f"dataset '{dataset}': classifier builder {name} must return a mmjsd.classifiers.networks.Classifier"
        )
    return classifier
