"""Generation coherence from classifier predictions (Table 2; docs/metrics.md §5.2-5.3, docs/design.md §5).

Inputs are predicted labels (argmax of a coherence classifier) per generated sample:

- conditional coherence: the fraction of samples generated from a subset S whose
  predicted label for modality m matches the label of the conditioning tuple;
- random coherence: the fraction of prior samples whose predicted labels agree across
  **all** modalities (MoPoE's definition; the headline);
- the mmjsd code's random-coherence formula, for a side log only.

CelebA coherence (Table 5 right) is a mean average precision of attribute scores against
the conditioning sample's attributes: see :mod:`mmjsd.evaluation.average_precision`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmjsd.core.errors import UserError


def _as_label_vector(labels, name: str) -> np.ndarray:
    """A non-empty 1-D array of labels, or a UserError naming ``name``."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise UserError(f"{name} must be a non-empty 1-D array of labels, got shape {array.shape}")
    return array


def _stack_predictions(predictions: Mapping[str, np.ndarray]) -> np.ndarray:
    """Predictions of M modalities as an ``[M, N]`` array, in the mapping's order."""
    arrays = [_as_label_vector(labels, f"predictions[{name!r}]") for name, labels in predictions.items()]
    if len({a.shape for a in arrays}) > 1:
        sizes = {name: len(a) for name, a in zip(predictions, arrays, strict=True)}
        raise UserError(f"every modality needs one prediction per generated sample, got counts {sizes}")
    return np.stack(arrays)


def conditional_accuracy(predicted_labels, true_labels) -> float:
    """Fraction of generated samples whose predicted label equals the conditioning label (docs/metrics.md §5.2)."""
    predicted = _as_label_vector(predicted_labels, "predicted_labels")
    true = _as_label_vector(true_labels, "true_labels")
    if predicted.shape != true.shape:
        raise UserError(f"got {predicted.size} predictions for {true.size} labels; they must pair up one to one")
    return float(np.mean(predicted == true))


def random_coherence_all_agree(predictions: Mapping[str, np.ndarray]) -> float:
    """Fraction of prior samples whose predicted labels agree across all modalities.

    MoPoE ``eval_metrics/coherence.py`` (docs/metrics.md §5.3, docs/reference-code.md §5.3); with M
    modalities and uniformly random predictions over C classes it is C^(1 - M)
    (0.01 for MST). The headline random coherence (docs/design.md §5).
    """
    stacked = _stack_predictions(predictions)
    if stacked.shape[0] < 2:
        raise UserError(f"random coherence needs at least two modalities, got {list(predictions)}")
    return float(np.mean(np.all(stacked == stacked[0], axis=0)))


def random_coherence_mmjsd_formula(predictions: Mapping[str, np.ndarray]) -> float:
    """The mmjsd code's random coherence: a sample counts when (M == S) equals (M == T).

    docs/metrics.md §5.3 (mmjsd ``test_functions_svhnmnist.py``). Defined for exactly three
    modalities, as in the reference; the first in the mapping's order is the anchor
    (canonical order: mnist, svhn, text). It also counts samples where the anchor
    disagrees with both others, so uniformly random predictions over C classes score
    1/C^2 + (1 - 1/C)^2 (0.82 for C = 10). Side logs only, under its own name.
    """
    stacked = _stack_predictions(predictions)
    if stacked.shape[0] != 3:
        raise UserError(f"the mmjsd random-coherence formula is defined for three modalities, got {list(predictions)}")
    anchor, second, third = stacked
    return float(np.mean((anchor == second) == (anchor == third)))
