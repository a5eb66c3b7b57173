"""Batched classifier outputs for evaluation: digit labels, attribute scores, PRD features.

Inputs are float batches in the format of docs/file-formats.md on any device; each chunk
of ``batch_size`` rows is moved to the classifier's device, so memory stays bounded, and
results come back on the input's device. The classifier's mode is left as it is (the
loader returns it in ``eval()`` mode); gradients are never recorded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mmjsd.classifiers.networks import Classifier

DEFAULT_BATCH_SIZE = 1024


def _apply_in_chunks(
    function: Callable[[torch.Tensor], torch.Tensor], classifier: Classifier, x: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``function`` over ``x`` in chunks of ``batch_size`` rows, on the classifier's device, concatenated."""
    device = next(classifier.parameters()).device
    with torch.inference_mode():
        outputs = [function(chunk.to(device)).to(x.device) for chunk in x.split(batch_size)]
    return torch.cat(outputs)


def predict_labels(classifier: Classifier, x: torch.Tensor, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """Predicted digits ``[N]`` (int64): argmax of the 10 logits (MST classifiers)."""
    return _apply_in_chunks(lambda chunk: classifier(chunk).argmax(dim=1), classifier, x, batch_size)


def attribute_scores(classifier: Classifier, x: torch.Tensor, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """Attribute probabilities ``[N, 40]``: sigmoid of the logits (CelebA classifiers; the reference's output)."""
    return _apply_in_chunks(lambda chunk: torch.sigmoid(classifier(chunk)), classifier, x, batch_size)


def penultimate_features(classifier: Classifier, x: torch.Tensor, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """Penultimate-layer features ``[N, feature_dim]`` (the fallback PRD embedding, docs/metrics.md §2.4)."""
    return _apply_in_chunks(classifier.features, classifier, x, batch_size)
