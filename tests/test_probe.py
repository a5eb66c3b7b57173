"""Latent linear probe: separable latents score perfectly, label noise scores chance (docs/metrics.md §5.4-5.5)."""

from __future__ import annotations

import numpy as np
import pytest

from mmjsd.core.errors import UserError
from mmjsd.evaluation.average_precision import mean_average_precision
from mmjsd.evaluation.coherence import conditional_accuracy
from mmjsd.evaluation.probe import (
    attribute_scores,
    draw_predictions,
    draw_training_rows,
    mean_and_std,
    predicted_digits,
)

NUM_CLASSES, LATENT_DIM = 10, 16


def class_latents(labels: np.ndarray, rng: np.random.Generator, separation: float) -> np.ndarray:
    """Class c sits at separation * e_c plus N(0, 0.3^2) noise; separation 0 gives pure noise."""
    latents = 0.3 * rng.normal(size=(len(labels), LATENT_DIM))
    latents[np.arange(len(labels)), labels] += separation
    return latents


def digits_split(rng: np.random.Generator, num_rows: int, separation: float):
    labels = rng.integers(0, NUM_CLASSES, size=num_rows)
    return class_latents(labels, rng, separation), labels


def probe_accuracy(train_latents, train_labels, test_latents, test_labels, n_train, draws, seed=0, max_iter=1000):
    """(mean, std) over draws of the test accuracy, as the evaluator scores the MoPoE protocol on MST."""
    draws = draw_predictions(
        predicted_digits, train_latents, train_labels, test_latents, n_train, draws, seed, max_iter
    )
    return mean_and_std([conditional_accuracy(p, test_labels) for p in draws])


def probe_mean_average_precision(
    train_latents, train_attributes, test_latents, test_attributes, n_train, draws, seed=0, max_iter=1000
):
    """(mean, std) over draws of the pooled mean AP, as the evaluator scores the MoPoE protocol on CelebA."""
    draws = draw_predictions(
        attribute_scores, train_latents, train_attributes, test_latents, n_train, draws, seed, max_iter
    )
    return mean_and_std([mean_average_precision(p, test_attributes) for p in draws])


def test_separable_latents_give_perfect_accuracy():
    rng = np.random.default_rng(0)
    train, test = digits_split(rng, 1500, 5.0), digits_split(rng, 1000, 5.0)
    mean, std = probe_accuracy(*train, *test, n_train=500, draws=3)
    assert mean == 1.0 and std == 0.0


def test_uninformative_latents_give_chance_accuracy():
    rng = np.random.default_rng(1)
    train, test = digits_split(rng, 1500, 0.0), digits_split(rng, 4000, 0.0)
    mean, std = probe_accuracy(*train, *test, n_train=500, draws=3)
    assert mean == pytest.approx(1 / NUM_CLASSES, abs=0.02)
    assert std > 0.0


def test_draws_are_seeded():
    rng = np.random.default_rng(2)
    train, test = digits_split(rng, 800, 0.5), digits_split(rng, 500, 0.5)
    first = probe_accuracy(*train, *test, n_train=100, draws=2, seed=3)
    assert first == probe_accuracy(*train, *test, n_train=100, draws=2, seed=3)


def test_training_rows_are_distinct_and_bounded():
    rows = draw_training_rows(600, 500, 1, np.random.default_rng(0))[0]
    assert len(np.unique(rows)) == 500 and rows.min() >= 0 and rows.max() < 600
    assert sorted(draw_training_rows(50, 50, 1, np.random.default_rng(0))[0]) == list(range(50))
    with pytest.raises(UserError, match="n_train"):
        draw_training_rows(400, 500, 1, np.random.default_rng(0))
    with pytest.raises(UserError, match="draws"):
        draw_training_rows(400, 100, 0, np.random.default_rng(0))


def test_draws_are_disjoint_when_the_rows_suffice():
    """The probe evaluator's pool holds exactly n_train · draws rows: every row is used once."""
    draws = draw_training_rows(2500, 500, 5, np.random.default_rng(1))
    assert [len(d) for d in draws] == [500] * 5
    assert sorted(np.concatenate(draws)) == list(range(2500))
    # Too few rows for disjoint sets: each set is still n_train distinct rows, and sets overlap.
    small = draw_training_rows(700, 500, 2, np.random.default_rng(1))
    assert all(len(np.unique(d)) == 500 for d in small)
    assert len(np.intersect1d(*small)) >= 300


def test_single_class_training_draw_raises():
    rng = np.random.default_rng(3)
    latents = rng.normal(size=(20, 4))
    with pytest.raises(UserError, match="single class"):
        probe_accuracy(latents, np.zeros(20, dtype=int), latents, np.zeros(20, dtype=int), n_train=10, draws=1)


# ------------------------------------------------------------------ attributes (CelebA)
BASE_RATES = np.array([0.1, 0.2, 0.3, 0.4, 0.5])


def attribute_split(rng: np.random.Generator, num_rows: int, separation: float):
    """Attributes with BASE_RATES; latent j = separation * (2 a_j - 1) + noise, plus 3 noise dimensions."""
    attributes = (rng.random(size=(num_rows, len(BASE_RATES))) < BASE_RATES).astype(float)
    latents = 0.3 * rng.normal(size=(num_rows, len(BASE_RATES) + 3))
    latents[:, : len(BASE_RATES)] += separation * (2 * attributes - 1)
    return latents, attributes


def test_separable_attributes_give_perfect_average_precision():
    rng = np.random.default_rng(4)
    train, test = attribute_split(rng, 1000, 3.0), attribute_split(rng, 1000, 3.0)
    mean, std = probe_mean_average_precision(*train, *test, n_train=500, draws=2)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)


def test_uninformative_latents_give_base_rate_average_precision():
    rng = np.random.default_rng(5)
    train, test = attribute_split(rng, 1000, 0.0), attribute_split(rng, 4000, 0.0)
    mean, _ = probe_mean_average_precision(*train, *test, n_train=500, draws=2)
    test_rates = test[1].mean(axis=0)
    assert mean == pytest.approx(test_rates.mean(), abs=0.03)


def test_attribute_absent_from_training_rows_scores_the_base_rate():
    rng = np.random.default_rng(6)
    train_latents, train_attributes = attribute_split(rng, 600, 3.0)
    test_latents, test_attributes = attribute_split(rng, 1000, 3.0)
    train_attributes[:, 0] = 0.0  # never present in training: a constant score, so AP = base rate
    mean, _ = probe_mean_average_precision(
        train_latents, train_attributes[:, :2], test_latents, test_attributes[:, :2], n_train=300, draws=1
    )
    assert mean == pytest.approx((test_attributes[:, 0].mean() + 1.0) / 2)
