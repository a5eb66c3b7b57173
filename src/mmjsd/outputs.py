"""Names of files that steps write, for the Snakefile to declare as outputs.

Importable at Snakefile parse time (no torch, no matplotlib).
"""

from __future__ import annotations

from mmjsd.config import MODALITIES


def sample_figure_stems(dataset: str, variant: str) -> list[str]:
    """File stems (no extension) of the generation figures of ``python -m mmjsd.samples`` for a run."""
    prefix = f"{dataset}_{variant}"
    kinds = ["text_to_img"] if dataset == "celeba" else [f"conditional_{m}" for m in MODALITIES[dataset]]
    return [f"{prefix}_{kind}" for kind in kinds + ["random"]]
