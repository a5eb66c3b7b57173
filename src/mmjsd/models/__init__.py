"""Models: per-modality networks, likelihoods, distribution math and one module per objective.

``build_model(dataset, variant, cfg)`` is the entry point; see :mod:`mmjsd.models.base` for
the API every model shares.
"""

from __future__ import annotations

from mmjsd.config import MODALITIES, TrainConfig, parse_variant
from mmjsd.errors import UserError
from mmjsd.models.base import Encodings, MultimodalVAE
from mmjsd.models.mmjsd import MMJSD
from mmjsd.models.mmvae import MMVAE
from mmjsd.models.mopoe import MoPoE
from mmjsd.models.mvae import MVAE
from mmjsd.models.networks import DATA_SHAPES, Encoding

#: The model class of each objective.
OBJECTIVE_MODELS: dict[str, type[MultimodalVAE]] = {
    "mvae": MVAE,
    "mmvae": MMVAE,
    "mmjsd": MMJSD,
    "mopoe": MoPoE,
}


def build_model(dataset: str, variant: str, cfg: TrainConfig) -> MultimodalVAE:
    """The model of ``variant`` (e.g. ``mmjsd`` or ``mmjsd-ms``) on ``dataset``, with ``cfg``'s dimensions and weights.

    Style dimensions come from ``cfg.style_dim``; an ``-ms`` variant must have at least
    one style subspace and a plain variant none, so a mismatched config fails here rather
    than training the wrong model.
    """
    objective, modality_specific = parse_variant(variant)
    if dataset not in MODALITIES:
        raise UserError(f"unknown dataset '{dataset}': use one of {', '.join(MODALITIES)}")
    has_style = any(cfg.style_dim[m] > 0 for m in MODALITIES[dataset])
    if modality_specific != has_style:
        raise UserError(
            f"variant '{variant}' on {dataset} needs {'a non-zero' if modality_specific else 'zero'} "
            f"style_dim, got {cfg.style_dim}"
        )
    return OBJECTIVE_MODELS[objective](dataset, cfg)


__all__ = [
    "DATA_SHAPES",
    "OBJECTIVE_MODELS",
    "Encoding",
    "Encodings",
    "MMJSD",
    "MMVAE",
    "MVAE",
    "MoPoE",
    "MultimodalVAE",
    "build_model",
]
