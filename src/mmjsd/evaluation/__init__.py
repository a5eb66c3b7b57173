"""Evaluation: metric math (one module per metric) and the evaluators that apply it to a run.

Math: :mod:`prd`, :mod:`likelihood`, :mod:`probe`, :mod:`coherence`,
:mod:`average_precision`. Evaluators (run + data → metric file contents): the modules in
:data:`EVALUATOR_MODULES`, sharing :mod:`runs`, :mod:`generation` and :mod:`features`.
This module stays free of torch: the Snakefile reads the mapping below at parse time to
give each metric's jobs a code version of their own evaluator only.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

#: The evaluator module of each metric (``python -m mmjsd.evaluate --metric <key>``).
EVALUATOR_MODULES: dict[str, str] = {
    "latent_probe": "mmjsd.evaluation.probe_eval",
    "coherence": "mmjsd.evaluation.coherence_eval",
    "prd": "mmjsd.evaluation.prd_eval",
    "likelihood": "mmjsd.evaluation.likelihood_eval",
}


def load_evaluator(metric: str) -> Callable[[Any], Any]:
    """``evaluate(inputs) -> MetricResult`` of ``metric``, importing only that evaluator's module.

    A metric job then loads only what it needs (scikit-learn, classifiers), which matters
    when a run is hundreds of short jobs.
    """
    return importlib.import_module(EVALUATOR_MODULES[metric]).evaluate
