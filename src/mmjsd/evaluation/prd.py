"""Precision and recall for distributions (PRD; Sajjadi et al., NeurIPS 2018).

Implemented from the description in docs/metrics.md §1 (not from the official code):

1. cluster the union of evaluated and reference features with MiniBatchKMeans and turn
   each set's cluster labels into a histogram (§1.2-1.3);
2. for each histogram pair, trace the PRD curve over an equiangular grid of slopes
   (Sajjadi et al. 2018, Thm. 2; docs/metrics.md §1.4);
3. average the curves over independent clusterings (§1.5).

Summaries: mmJSD's "average precision" :func:`prd_ap_mmjsd` (§1.7) and the official
F_8 / F_1/8 pair :func:`max_f_beta_pair` (§1.6).

Argument order: ``eval`` is the evaluated (generated) set Q and ``ref`` the reference
(real) set P, so precision is PRD(Q, P)'s alpha. The reference code passes them swapped;
that swaps precision with recall on a reversed grid and leaves :func:`prd_ap_mmjsd`
unchanged (§1.6).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from mmjsd.core.errors import UserError

#: Valid range of the angle-grid size, both ends included (docs/metrics.md §1.4).
MIN_NUM_ANGLES = 3
MAX_NUM_ANGLES = 1_000_000

#: Curve values above this mean the inputs were not probability vectors (§1.4).
CURVE_TOLERANCE = 1.001

#: Candidate initialisations per clustering (``n_init`` of MiniBatchKMeans, §1.2).
KMEANS_N_INIT = 10

#: Added to the F_beta denominator, as in the official summary (§1.6).
F_BETA_EPSILON = 1e-10


def slope_grid(num_angles: int, epsilon: float) -> np.ndarray:
    """Slopes lambda = tan(theta) for ``num_angles`` angles equally spaced over [eps, pi/2 - eps].

    Sajjadi et al. 2018, §3 (PRD curves are evaluated on an equiangular grid of slopes);
    docs/metrics.md §1.4. Both ends are included, so the grid is symmetric:
    theta_j + theta_{n-1-j} = pi/2.
    """
    if not (isinstance(epsilon, numbers.Real) and 0.0 < epsilon < 0.1):
        raise UserError(f"PRD epsilon must lie in (0, 0.1), got {epsilon!r}; use the default 1e-10")
    if not (
        isinstance(num_angles, numbers.Integral)
        and not isinstance(num_angles, bool)
        and MIN_NUM_ANGLES <= num_angles <= MAX_NUM_ANGLES
    ):
        raise UserError(
            f"PRD num_angles must be an integer in [{MIN_NUM_ANGLES}, {MAX_NUM_ANGLES}], got {num_angles!r}; "
            "set evaluation.prd.num_angles (the paper uses 1001)"
        )
    angles = np.linspace(epsilon, math.pi / 2 - epsilon, num=int(num_angles))
    return np.tan(angles)


def _as_histogram(values, name: str) -> np.ndarray:
    """A 1-D float64 array of finite, non-negative bin masses, or a UserError naming ``name``."""
    hist = np.asarray(values, dtype=np.float64)
    if hist.ndim != 1 or hist.size == 0:
        raise UserError(f"PRD {name} must be a non-empty 1-D histogram, got shape {hist.shape}")
    if not np.all(np.isfinite(hist)) or np.any(hist < 0):
        raise UserError(f"PRD {name} must hold finite non-negative masses; check the features it came from")
    return hist


def compute_prd(eval_dist, ref_dist, num_angles: int = 1001, epsilon: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve of one pair of histograms over the equiangular slope grid.

    Sajjadi et al. 2018, Thm. 2: for each slope lambda,
    precision alpha(lambda) = sum_i min(lambda * ref_i, eval_i) and
    recall beta(lambda) = alpha(lambda) / lambda = sum_i min(ref_i, eval_i / lambda).
    Values above 1.001 mean the inputs were not normalised and raise; the rest is clipped
    to [0, 1] (docs/metrics.md §1.4). Returns two arrays of length ``num_angles``.
    """
    eval_hist = _as_histogram(eval_dist, "eval_dist")
    ref_hist = _as_histogram(ref_dist, "ref_dist")
    if eval_hist.shape != ref_hist.shape:
        raise UserError(f"PRD histograms differ in length: eval {eval_hist.size}, ref {ref_hist.size} bins")
    slopes = slope_grid(num_angles, epsilon)
    precision = np.minimum(slopes[:, None] * ref_hist[None, :], eval_hist[None, :]).sum(axis=1)
    recall = precision / slopes
    if precision.max() > CURVE_TOLERANCE or recall.max() > CURVE_TOLERANCE:
        raise UserError(
            "PRD precision/recall exceeded 1: the histograms must each sum to 1 "
            f"(eval sums to {eval_hist.sum():.6g}, ref to {ref_hist.sum():.6g})"
        )
    return np.clip(precision, 0.0, 1.0), np.clip(recall, 0.0, 1.0)


def cluster_into_histograms(
    eval_feats, ref_feats, num_clusters: int, kmeans_batch_size: int, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the union of both feature sets once; return each set's cluster histogram.

    docs/metrics.md §1.2-1.3: the float64 union (eval rows first) goes through
    ``MiniBatchKMeans(num_clusters, n_init=10, batch_size=kmeans_batch_size)``; each
    histogram is the fraction of that set's rows per cluster (``np.histogram`` with
    ``density=True`` on unit-width bins is exactly this).
    """
    eval_arr = np.asarray(eval_feats, dtype=np.float64)
    ref_arr = np.asarray(ref_feats, dtype=np.float64)
    union = np.concatenate([eval_arr, ref_arr], axis=0)
    kmeans = MiniBatchKMeans(
        n_clusters=num_clusters, n_init=KMEANS_N_INIT, batch_size=kmeans_batch_size, random_state=random_state
    )
    labels = kmeans.fit(union).labels_
    eval_labels, ref_labels = labels[: len(eval_arr)], labels[len(eval_arr) :]
    eval_hist = np.bincount(eval_labels, minlength=num_clusters) / len(eval_labels)
    ref_hist = np.bincount(ref_labels, minlength=num_clusters) / len(ref_labels)
    return eval_hist, ref_hist


def _check_embeddings(eval_feats: np.ndarray, ref_feats: np.ndarray, num_clusters: int, enforce_balance: bool) -> None:
    """Shape checks of docs/metrics.md §1.1, raised as UserError with what to change."""
    for name, feats in (("eval", eval_feats), ("ref", ref_feats)):
        if feats.ndim != 2 or feats.shape[0] == 0:
            raise UserError(f"PRD {name} features must be a non-empty [N, d] matrix, got shape {feats.shape}")
        if not np.all(np.isfinite(feats)):
            raise UserError(f"PRD {name} features contain NaN or inf; check the feature extractor")
    if eval_feats.shape[1] != ref_feats.shape[1]:
        raise UserError(f"PRD feature dimensions differ: eval {eval_feats.shape[1]}, ref {ref_feats.shape[1]}")
    if enforce_balance and eval_feats.shape[0] != ref_feats.shape[0]:
        raise UserError(
            f"PRD needs equally many eval and ref rows (got {eval_feats.shape[0]} and {ref_feats.shape[0]}): "
            "k-means on an unbalanced union is biased; pass equal counts (evaluation.prd.n_samples)"
        )
    num_rows = eval_feats.shape[0] + ref_feats.shape[0]
    if not (isinstance(num_clusters, numbers.Integral) and 1 <= num_clusters <= num_rows):
        raise UserError(
            f"PRD num_clusters must be an integer between 1 and the number of rows, got {num_clusters!r}; "
            "set evaluation.prd.num_clusters (the paper uses 20)"
        )


def compute_prd_from_embedding(
    eval_feats,
    ref_feats,
    num_clusters: int = 20,
    num_angles: int = 1001,
    num_runs: int = 10,
    enforce_balance: bool = True,
    kmeans_batch_size: int = 100,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve of two feature sets, averaged over ``num_runs`` independent clusterings.

    Sajjadi et al. 2018, §3 (averaging over several clusterings); docs/metrics.md §1.5: the
    precision arrays and the recall arrays are averaged per angle (the histograms are
    not). Run r clusters with ``random_state = seed + r``, so results are reproducible.
    The defaults are the paper's: 20 clusters, 1001 angles, 10 runs, batch size 100
    (the scikit-learn 0.20 default the authors ran with).
    """
    eval_arr = np.asarray(eval_feats, dtype=np.float64)
    ref_arr = np.asarray(ref_feats, dtype=np.float64)
    _check_embeddings(eval_arr, ref_arr, num_clusters, enforce_balance)
    if not (isinstance(num_runs, numbers.Integral) and num_runs >= 1):
        raise UserError(f"PRD num_runs must be a positive integer, got {num_runs!r}; set evaluation.prd.num_runs")
    if not (isinstance(kmeans_batch_size, numbers.Integral) and kmeans_batch_size >= 1):
        raise UserError(
            f"PRD kmeans_batch_size must be a positive integer, got {kmeans_batch_size!r}; "
            "set evaluation.prd.kmeans_batch_size (100 reproduces the paper's scikit-learn 0.20)"
        )
    curves = []
    for run in range(num_runs):
        eval_hist, ref_hist = cluster_into_histograms(eval_arr, ref_arr, num_clusters, kmeans_batch_size, seed + run)
        curves.append(compute_prd(eval_hist, ref_hist, num_angles))
    precisions, recalls = zip(*curves, strict=True)
    return np.mean(precisions, axis=0), np.mean(recalls, axis=0)


def prd_ap_mmjsd(precision, recall) -> float:
    """mmJSD's PRD "average precision": the mean of the stacked precision and recall curves.

    docs/metrics.md §1.7 (mmjsd ``calculate_prd``: ``np.mean`` of the returned tuple), i.e.
    (mean_theta alpha + mean_theta beta) / 2. Symmetric in the argument order of the PRD;
    0 for disjoint supports, at most 1/2 + ln(2)/pi (0.7204 on the 1001-angle grid).
    """
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if precision.shape != recall.shape:
        raise UserError(f"precision and recall curves differ in shape: {precision.shape} vs {recall.shape}")
    return float(np.mean(np.stack([precision, recall])))


def f_beta_score(precision, recall, beta: float) -> np.ndarray:
    """F_beta = (1 + beta^2) p r / (beta^2 p + r + 1e-10), pointwise (Sajjadi et al. 2018, §4)."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall + F_BETA_EPSILON)


def max_f_beta_pair(precision, recall, beta: float = 8) -> tuple[float, float]:
    """(max F_beta, max F_1/beta) over a PRD curve: recall-like and precision-like summaries.

    Sajjadi et al. 2018, §4 (F_8 and F_1/8); docs/metrics.md §1.6. Inputs must lie in
    [0, 1] and beta must be positive.
    """
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if precision.shape != recall.shape:
        raise UserError(f"precision and recall curves differ in shape: {precision.shape} vs {recall.shape}")
    for name, curve in (("precision", precision), ("recall", recall)):
        if np.any(curve < 0) or np.any(curve > 1) or not np.all(np.isfinite(curve)):
            raise UserError(f"{name} values must lie in [0, 1]; pass a curve from compute_prd")
    if not beta > 0:
        raise UserError(f"F_beta needs beta > 0, got {beta!r}")
    return float(f_beta_score(precision, recall, beta).max()), float(f_beta_score(precision, recall, 1 / beta).max())
