"""Per-modality encoders and decoders of each dataset (docs/reference-code.md §2).

``NETWORK_BUILDERS[dataset](content_dim, style_dims)`` returns ``(encoders, decoders)``
keyed by modality; ``DATA_SHAPES[dataset][modality]`` is one example's shape.
"""

from __future__ import annotations

from mmjsd.models.networks import celeba, mst
from mmjsd.models.networks.blocks import ALPHABET_SIZE, Decoder, Encoder, Encoding

NETWORK_BUILDERS = {
    "mnist_svhn_text": mst.build_networks,
    "celeba": celeba.build_networks,
}

DATA_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "mnist_svhn_text": mst.DATA_SHAPES,
    "celeba": celeba.DATA_SHAPES,
}

__all__ = ["ALPHABET_SIZE", "DATA_SHAPES", "NETWORK_BUILDERS", "Decoder", "Encoder", "Encoding"]
