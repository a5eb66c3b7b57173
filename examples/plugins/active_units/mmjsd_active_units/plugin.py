"""Registers the active_units metric. Read by the Snakefile at parse time, so it imports no torch."""

from __future__ import annotations

from dataclasses import dataclass

from mmjsd.core.registry import MetricSpec, register_metric


@dataclass(frozen=True)
class ActiveUnitsSettings:
    """``evaluation.active_units``: the variance threshold and how many test items to encode (None: all)."""

    threshold: float
    n_test: int | None


register_metric(
    MetricSpec(
        name="active_units",
        label="Active units of each subset's posterior mean",
        evaluator="mmjsd_active_units.evaluator:evaluate",
        settings=ActiveUnitsSettings,
        description="Latent dimensions whose posterior mean varies over the test items (Burda et al. 2016).",
        precision=1,
    )
)
