"""Names of files that steps write, for the Snakefile to declare as outputs.

Importable at Snakefile parse time (no torch, no matplotlib).
"""

from __future__ import annotations

from mmjsd.core import registry


def sample_figure_stems(dataset: str, variant: str) -> list[str]:
    """File stems (no extension) of the generation figures of ``python -m mmjsd.samples`` for a run.

    One per kind the dataset's spec lists (``DatasetSpec.sample_figures``), in that order.
    """
    return [f"{dataset}_{variant}_{kind}" for kind in registry.dataset(dataset).sample_figures]
