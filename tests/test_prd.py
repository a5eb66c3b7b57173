"""PRD (Sajjadi et al. 2018) against hand-derived curves and closed forms (docs/metrics.md §1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmjsd.core.errors import UserError
from mmjsd.evaluation.prd import (
    cluster_into_histograms,
    compute_prd,
    compute_prd_from_embedding,
    max_f_beta_pair,
    prd_ap_mmjsd,
)

SQRT2 = math.sqrt(2.0)

#: 1/2 + ln2/pi: (2/pi) * integral_0^{pi/2} min(tan t, 1) dt, the continuum ceiling of prd_ap_mmjsd.
CONTINUUM_CEILING = 0.5 + math.log(2.0) / math.pi


def grid_ceiling_trapezoid(num_angles: int) -> float:
    """Ceiling on the discrete grid from the continuum value by the trapezoid rule.

    For identical histograms alpha(t) = min(tan t, 1) and beta(t) = min(1, cot t); each
    has continuum mean I = CONTINUUM_CEILING. The grid mean of n points with both ends
    included is (sum f) / n, and the trapezoid rule gives sum f = (n - 1) I + (f(0) + f(pi/2)) / 2
    with f(0) + f(pi/2) = 1 for both curves; the kink at pi/4 lies on a grid point, so the
    error is O(h^2).
    """
    return ((num_angles - 1) * CONTINUUM_CEILING + 0.5) / num_angles


# --------------------------------------------------------------- the curve of one histogram pair
def test_disjoint_support_gives_all_zeros():
    precision, recall = compute_prd([0.0, 1.0], [1.0, 0.0], num_angles=11)
    assert np.all(precision == 0.0) and np.all(recall == 0.0)


def test_identical_point_masses_meet_at_the_diagonal():
    precision, recall = compute_prd([1.0, 0.0], [1.0, 0.0], num_angles=11)
    assert precision[5] == pytest.approx(1.0) and recall[5] == pytest.approx(1.0)


def test_low_precision_high_recall():
    # alpha = min(lambda, 1/2), beta = min(1, 1/(2 lambda))
    precision, recall = compute_prd([0.5, 0.5], [1.0, 0.0], num_angles=11)
    assert precision[5] == pytest.approx(0.5) and recall[5] == pytest.approx(0.5)
    assert precision[-1] == pytest.approx(0.5)
    assert recall[1] == pytest.approx(1.0)


def test_high_precision_low_recall():
    # alpha = min(lambda/2, 1), beta = min(1/2, 1/lambda)
    precision, recall = compute_prd([1.0, 0.0], [0.5, 0.5], num_angles=11)
    assert precision[5] == pytest.approx(0.5) and recall[5] == pytest.approx(0.5)
    assert recall[1] == pytest.approx(0.5)
    assert precision[-1] == pytest.approx(1.0)


def test_toy_histogram_curve_by_hand():
    # eval e = (1/2, 1/4, 1/4, 0), ref r = (1/4,) * 4: alpha = sum_i min(lambda/4, e_i) is
    # 3 lambda/4 for lambda <= 1, lambda/4 + 1/2 on [1, 2], 1 beyond; beta = alpha / lambda.
    # Five angles: 0, pi/8, pi/4, 3pi/8, pi/2 with tan(pi/8) = sqrt2 - 1, tan(3pi/8) = sqrt2 + 1.
    precision, recall = compute_prd([0.5, 0.25, 0.25, 0.0], [0.25] * 4, num_angles=5)
    np.testing.assert_allclose(precision, [0.0, 0.75 * (SQRT2 - 1), 0.75, 1.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(recall, [0.75, 0.75, 0.75, SQRT2 - 1, 0.0], atol=1e-9)


def test_swapping_arguments_swaps_curves_on_the_reversed_grid():
    rng = np.random.default_rng(0)
    eval_dist, ref_dist = rng.dirichlet(np.ones(20)), rng.dirichlet(np.ones(20))
    precision, recall = compute_prd(eval_dist, ref_dist)
    precision_swapped, recall_swapped = compute_prd(ref_dist, eval_dist)
    np.testing.assert_allclose(precision_swapped, recall[::-1], atol=1e-8)
    np.testing.assert_allclose(recall_swapped, precision[::-1], atol=1e-8)
    assert prd_ap_mmjsd(precision, recall) == pytest.approx(prd_ap_mmjsd(precision_swapped, recall_swapped), abs=1e-8)


def test_identical_histograms_reach_the_grid_ceiling():
    dist = np.random.default_rng(1).dirichlet(np.ones(20))
    ap = prd_ap_mmjsd(*compute_prd(dist, dist))
    assert ap == pytest.approx(grid_ceiling_trapezoid(1001), abs=1e-6)
    assert ap == pytest.approx(CONTINUUM_CEILING, abs=1e-3)
    assert ap <= 0.7205


@pytest.mark.parametrize("epsilon", [0, 1, -1, 0.1])
def test_invalid_epsilon_raises(epsilon):
    with pytest.raises(UserError, match="epsilon"):
        compute_prd([1.0, 0.0], [1.0, 0.0], epsilon=epsilon)


@pytest.mark.parametrize("num_angles", [0, 1, -1, 1_000_001, 2.5, 3.5])
def test_invalid_num_angles_raises(num_angles):
    with pytest.raises(UserError, match="num_angles"):
        compute_prd([1.0, 0.0], [1.0, 0.0], num_angles=num_angles)


def test_unnormalised_histograms_raise():
    with pytest.raises(UserError, match="sum to 1"):
        compute_prd([2.0, 0.0], [1.0, 0.0])


# --------------------------------------------------------------- from embeddings
def blob_features(copies_per_blob: list[int], seed: int = 0) -> np.ndarray:
    """Four tight, far-apart blobs of 30 fixed points; blob b's points repeated copies_per_blob[b] times.

    Any clustering that never spans two blobs gives every cluster of blob b the same
    eval/ref mass ratio, so the PRD equals that of the per-blob histograms exactly.
    """
    rng = np.random.default_rng(seed)
    centres = 100.0 * np.eye(4, 8)
    points = [centre + rng.normal(size=(30, 8)) for centre in centres]
    return np.concatenate([np.tile(blob, (copies, 1)) for blob, copies in zip(points, copies_per_blob, strict=True)])


def test_embedding_prd_equals_the_blob_histogram_curve():
    eval_feats, ref_feats = blob_features([4, 2, 2, 0]), blob_features([2, 2, 2, 2])
    precision, recall = compute_prd_from_embedding(eval_feats, ref_feats, num_runs=3)
    expected_precision, expected_recall = compute_prd([0.5, 0.25, 0.25, 0.0], [0.25] * 4)
    np.testing.assert_allclose(precision, expected_precision, atol=1e-12)
    np.testing.assert_allclose(recall, expected_recall, atol=1e-12)

    precision_swapped, recall_swapped = compute_prd_from_embedding(ref_feats, eval_feats, num_runs=3)
    np.testing.assert_allclose(precision_swapped, recall[::-1], atol=1e-8)
    assert prd_ap_mmjsd(precision_swapped, recall_swapped) == pytest.approx(prd_ap_mmjsd(precision, recall), abs=1e-8)


def test_identical_feature_sets_reach_the_ceiling():
    feats = np.random.default_rng(2).normal(size=(400, 16))
    ap = prd_ap_mmjsd(*compute_prd_from_embedding(feats, feats.copy(), num_runs=2))
    assert ap == pytest.approx(grid_ceiling_trapezoid(1001), abs=1e-6)


def test_disjoint_clusters_score_zero():
    rng = np.random.default_rng(3)
    eval_feats = rng.normal(size=(300, 8))
    ref_feats = rng.normal(loc=50.0, size=(300, 8))
    precision, recall = compute_prd_from_embedding(eval_feats, ref_feats, num_runs=2)
    assert prd_ap_mmjsd(precision, recall) == 0.0


def test_runs_are_seeded_by_seed_plus_run_index():
    rng = np.random.default_rng(4)
    eval_feats, ref_feats = rng.normal(size=(300, 8)), rng.normal(loc=0.3, size=(300, 8))
    first = compute_prd_from_embedding(eval_feats, ref_feats, num_runs=2, seed=5)
    again = compute_prd_from_embedding(eval_feats, ref_feats, num_runs=2, seed=5)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    by_run = [compute_prd(*cluster_into_histograms(eval_feats, ref_feats, 20, 100, state)) for state in (5, 6)]
    np.testing.assert_allclose(first[0], (by_run[0][0] + by_run[1][0]) / 2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(first[1], (by_run[0][1] + by_run[1][1]) / 2, rtol=0, atol=1e-15)


def test_cluster_histograms_are_per_set_fractions():
    eval_feats, ref_feats = blob_features([4, 2, 2, 0]), blob_features([2, 2, 2, 2])
    eval_hist, ref_hist = cluster_into_histograms(eval_feats, ref_feats, 4, 100, 0)
    assert eval_hist.sum() == pytest.approx(1.0) and ref_hist.sum() == pytest.approx(1.0)
    assert sorted(eval_hist) == pytest.approx([0.0, 0.25, 0.25, 0.5])
    assert ref_hist == pytest.approx([0.25] * 4)


def test_unbalanced_sets_raise_unless_allowed():
    rng = np.random.default_rng(5)
    eval_feats, ref_feats = rng.normal(size=(100, 4)), rng.normal(size=(120, 4))
    with pytest.raises(UserError, match="equally many"):
        compute_prd_from_embedding(eval_feats, ref_feats, num_runs=1)
    precision, recall = compute_prd_from_embedding(eval_feats, ref_feats, num_runs=1, enforce_balance=False)
    assert precision.shape == recall.shape == (1001,)


def test_mismatched_feature_dimensions_raise():
    with pytest.raises(UserError, match="dimensions"):
        compute_prd_from_embedding(np.zeros((30, 4)), np.zeros((30, 5)), num_runs=1)


# --------------------------------------------------------------- summaries
def test_prd_ap_is_the_mean_of_both_curves():
    assert prd_ap_mmjsd([1.0, 0.5, 0.0], [0.0, 0.25, 0.25]) == pytest.approx(2.0 / 6)


def test_max_f_beta_pair_by_hand():
    precision, recall = [1.0, 0.8, 0.2], [0.1, 0.5, 0.9]
    # F_8 = 65 p r / (64 p + r): 6.5/64.1, 26/51.7, 11.7/13.7 -> the last is largest.
    # F_1/8 = (65/64) p r / (p/64 + r): the first, (65/64 * 0.1) / (1/64 + 0.1), is largest.
    f_8, f_one_eighth = max_f_beta_pair(precision, recall)
    assert f_8 == pytest.approx(11.7 / 13.7)
    assert f_one_eighth == pytest.approx((65 / 64 * 0.1) / (1 / 64 + 0.1))


@pytest.mark.parametrize(("precision", "recall", "beta"), [([1.5], [0.5], 8), ([0.5], [-0.1], 8), ([0.5], [0.5], 0)])
def test_max_f_beta_pair_rejects_invalid_input(precision, recall, beta):
    with pytest.raises(UserError):
        max_f_beta_pair(precision, recall, beta)
