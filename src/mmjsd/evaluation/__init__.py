"""Evaluation: metric math (one module per metric) and the evaluators that apply it to a run.

Math: :mod:`prd`, :mod:`likelihood`, :mod:`probe`, :mod:`coherence`,
:mod:`average_precision`. Evaluators (run + data → metric file contents): the function each
metric's spec names (:class:`mmjsd.core.registry.MetricSpec`, e.g.
``mmjsd.evaluation.probe_eval:evaluate``), sharing :mod:`runs`, :mod:`generation` and
:mod:`features`. This module stays free of torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmjsd.core import registry
from mmjsd.core.errors import UserError


def load_evaluator(metric: str) -> Callable[[Any], Any]:
    """``evaluate(inputs) -> MetricResult`` of ``metric``, importing only that evaluator's module.

    A metric job then loads only what it needs (scikit-learn, classifiers), which matters
    when a run is hundreds of short jobs.
    """
    spec = registry.metric(metric)
    evaluator = registry.load_object(spec.evaluator, f"metric '{metric}' of {spec.source}")
    if not callable(evaluator):
        raise UserError(f"metric '{metric}' of {spec.source}: evaluator {spec.evaluator} is not a function")
    return evaluator
