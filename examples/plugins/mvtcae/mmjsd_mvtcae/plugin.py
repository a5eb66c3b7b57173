"""Registers the MVTCAE objective. Read by the Snakefile at parse time, so it imports no torch."""

from __future__ import annotations

from dataclasses import dataclass

from mmjsd.core.errors import UserError
from mmjsd.core.registry import ObjectiveSpec, register_objective


@dataclass(frozen=True)
class MVTCAESettings:
    """``training.<dataset>.objectives.mvtcae``: alpha weighs the conditional VIB terms against the VIB term."""

    alpha: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise UserError(f"the mvtcae setting alpha must lie in [0, 1], got {self.alpha}")


register_objective(
    ObjectiveSpec(
        name="mvtcae",
        label="MVTCAE",
        model="mmjsd_mvtcae.model:MVTCAE",
        description=(
            "Multi-view total correlation auto-encoder: PoE posterior, VIB and conditional "
            "VIB terms (Hwang et al. 2021)."
        ),
        settings=MVTCAESettings,
    )
)
