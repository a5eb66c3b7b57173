"""Models: per-modality networks, likelihoods, distribution math and one module per objective.

``build_model(dataset, variant, cfg)`` is the entry point; see :mod:`mmjsd.models.base` for
the API every model shares. The model class of each objective is named by its spec in
the registry (:mod:`mmjsd.core.registry`) and imported only when a model of it is built, so a
job imports, and its code version covers, the one objective it runs.
"""

from __future__ import annotations

import inspect

from mmjsd.core import registry
from mmjsd.core.config import TrainConfig
from mmjsd.core.errors import UserError
from mmjsd.models.base import Encodings, MultimodalVAE
from mmjsd.models.networks import Encoding


def objective_model_class(objective: str) -> type[MultimodalVAE]:
    """The :class:`MultimodalVAE` subclass of ``objective``, checked to be a complete model."""
    spec = registry.objective(objective)
    where = f"objective '{objective}' of {spec.source}"
    cls = registry.load_object(spec.model, where)
    if not (isinstance(cls, type) and issubclass(cls, MultimodalVAE)):
        raise UserError(f"{where}: model {spec.model} is not a subclass of mmjsd.models.base.MultimodalVAE")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise UserError(f"{where}: model {spec.model} does not implement {missing} (abstract in MultimodalVAE)")
    return cls


def build_model(dataset: str, variant: str, cfg: TrainConfig) -> MultimodalVAE:
    """The model of ``variant`` (e.g. ``mmjsd`` or ``mmjsd-ms``) on ``dataset``, with ``cfg``'s dimensions and weights.

    Style dimensions come from ``cfg.style_dim``; an ``-ms`` variant must have at least
    one style subspace and a plain variant none, so a mismatched config fails here rather
    than training the wrong model.
    """
    objective, modality_specific = registry.parse_variant(variant)
    modalities = registry.modalities(dataset)
    has_style = any(cfg.style_dim[m] > 0 for m in modalities)
    if modality_specific != has_style:
        raise UserError(
            f"variant '{variant}' on {dataset} needs {'a non-zero' if modality_specific else 'zero'} "
            f"style_dim, got {cfg.style_dim}"
        )
    return objective_model_class(objective)(dataset, cfg)


__all__ = ["Encoding", "Encodings", "MultimodalVAE", "build_model", "objective_model_class"]
