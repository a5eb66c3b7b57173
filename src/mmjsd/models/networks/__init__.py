"""Per-modality encoders and decoders of each dataset (docs/reference-code.md §2).

Each dataset's module (:mod:`~mmjsd.models.networks.mst`, :mod:`~mmjsd.models.networks.celeba`)
has ``build_networks(content_dim, style_dims) -> (encoders, decoders)`` keyed by modality
and ``DATA_SHAPES`` (modality → one example's shape); the dataset's spec names them
(:class:`mmjsd.core.registry.DatasetSpec`). :func:`dataset_networks` and :func:`data_shapes`
look them up.
"""

from __future__ import annotations

from collections.abc import Callable

from mmjsd.core import registry
from mmjsd.models.networks.blocks import ALPHABET_SIZE, Decoder, Encoder, Encoding


def dataset_networks(dataset: str) -> Callable:
    """``build_networks(content_dim, style_dims)`` of ``dataset``."""
    return registry.load_object(registry.dataset(dataset).networks, f"dataset '{dataset}' networks")


def data_shapes(dataset: str) -> dict[str, tuple[int, ...]]:
    """One example's shape per modality of ``dataset``, in the batch format."""
    return registry.load_object(registry.dataset(dataset).data_shapes, f"dataset '{dataset}' data shapes")


__all__ = ["ALPHABET_SIZE", "Decoder", "Encoder", "Encoding", "data_shapes", "dataset_networks"]
