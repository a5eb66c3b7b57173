"""Coherence and mean average precision on hand-made predictions (docs/metrics.md §5.2-5.5)."""

from __future__ import annotations

import numpy as np
import pytest

from mmjsd.core.errors import UserError
from mmjsd.evaluation.average_precision import (
    average_precision_per_attribute,
    batch_mean_average_precision,
    chance_mean_average_precision,
    mean_average_precision,
)
from mmjsd.evaluation.coherence import (
    conditional_accuracy,
    random_coherence_all_agree,
    random_coherence_mmjsd_formula,
)

#: Per sample: (1,1,1) all agree; (1,2,2) M disagrees with both; (2,2,2) agree; (3,3,0) only M==S.
HAND_PREDICTIONS = {
    "mnist": np.array([1, 1, 2, 3]),
    "svhn": np.array([1, 2, 2, 3]),
    "text": np.array([1, 2, 2, 0]),
}


def test_conditional_accuracy_by_hand():
    assert conditional_accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    with pytest.raises(UserError, match="pair up"):
        conditional_accuracy([1, 2, 3], [1, 2])


def test_all_agree_by_hand():
    assert random_coherence_all_agree(HAND_PREDICTIONS) == 0.5  # samples 0 and 2


def test_mmjsd_formula_by_hand():
    # (M==S) == (M==T): sample 0 (T, T), 1 (F, F), 2 (T, T) count; sample 3 (T, F) does not.
    assert random_coherence_mmjsd_formula(HAND_PREDICTIONS) == 0.75


def test_uniform_random_predictions():
    rng = np.random.default_rng(0)
    predictions = {m: rng.integers(0, 10, size=200_000) for m in ("mnist", "svhn", "text")}
    assert random_coherence_all_agree(predictions) == pytest.approx(0.01, abs=0.002)  # 10^-2
    assert random_coherence_mmjsd_formula(predictions) == pytest.approx(0.82, abs=0.005)  # 0.1^2 + 0.9^2
    two = {m: predictions[m] for m in ("mnist", "svhn")}
    assert random_coherence_all_agree(two) == pytest.approx(0.1, abs=0.005)


def test_random_coherence_input_errors():
    with pytest.raises(UserError, match="three modalities"):
        random_coherence_mmjsd_formula({"img": [1, 2], "text": [1, 2]})
    with pytest.raises(UserError, match="at least two"):
        random_coherence_all_agree({"mnist": [1, 2]})
    with pytest.raises(UserError, match="one prediction per generated sample"):
        random_coherence_all_agree({"mnist": [1, 2], "svhn": [1, 2, 3]})


# ------------------------------------------------------------------ average precision
def test_pooled_average_precision_by_hand():
    # column 0 ranks 1,0,1,0: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; column 1 ranks 1,1,0,0: AP = 1;
    # column 2 has no positive: undefined, skipped by the mean.
    scores = np.array([[0.9, 0.1, 0.3], [0.8, 0.4, 0.2], [0.7, 0.35, 0.6], [0.6, 0.8, 0.1]])
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    per_attribute = average_precision_per_attribute(scores, labels)
    np.testing.assert_allclose(per_attribute[:2], [5 / 6, 1.0])
    assert np.isnan(per_attribute[2])
    assert mean_average_precision(scores, labels) == pytest.approx((5 / 6 + 1.0) / 2)


def test_batch_mean_average_precision_by_hand():
    # batches of 2 rows. Column 0: each batch ranks 1,0 -> AP 1 in both (pooled: 5/6).
    # Column 1: batch 1 ranks 0,1 -> 1/2; batch 2 has no positive -> 0.0; mean 1/4 (pooled: 1/3).
    scores = np.array([[0.9, 0.2], [0.8, 0.9], [0.7, 0.5], [0.6, 0.1]])
    labels = np.array([[1, 1], [0, 0], [1, 0], [0, 0]])
    assert batch_mean_average_precision(scores, labels, batch_size=2) == pytest.approx((1.0 + 0.25) / 2)
    assert mean_average_precision(scores, labels) == pytest.approx((5 / 6 + 1 / 3) / 2)


def test_random_scores_give_the_base_rate():
    rng = np.random.default_rng(1)
    labels = (rng.random((20_000, 3)) < [0.1, 0.3, 0.6]).astype(int)
    assert mean_average_precision(rng.random((20_000, 3)), labels) == pytest.approx(labels.mean(), abs=0.01)
    # the chance level the metric files record: the prevalence, averaged over attributes with positives
    assert chance_mean_average_precision(labels) == pytest.approx(labels.mean())
    with_empty = np.concatenate([labels, np.zeros((20_000, 1), dtype=int)], axis=1)
    assert chance_mean_average_precision(with_empty) == pytest.approx(labels.mean())
    assert mean_average_precision(rng.random((20_000, 4)), with_empty) == pytest.approx(labels.mean(), abs=0.01)


def test_average_precision_input_errors():
    with pytest.raises(UserError, match="0/1"):
        mean_average_precision(np.zeros((2, 1)), np.array([[-1], [1]]))
    with pytest.raises(UserError, match="no attribute has a positive"):
        mean_average_precision(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(UserError, match="same"):
        mean_average_precision(np.zeros((2, 2)), np.zeros((3, 2)))
