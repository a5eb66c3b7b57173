"""Mean average precision over binary attributes (CelebA; docs/metrics.md §5.5, docs/design.md §5).

Used by the CelebA latent probe and by CelebA conditional coherence. Average precision of
one attribute is sum_n (R_n - R_{n-1}) P_n over score thresholds (scikit-learn
``average_precision_score``; Manning et al. 2008, §8.4). The headline pools the whole split
per attribute, then averages over attributes; :func:`batch_mean_average_precision` is the
reference code's per-batch mean, for side logs only.

Attributes without positives have no defined AP: the pooled per-attribute AP is NaN for
them and the mean skips them (the caller can log which ones, from
:func:`average_precision_per_attribute`). In the per-batch variant a batch without
positives scores 0.0, as MoPoE does and current scikit-learn returns.
"""

from __future__ import annotations

import numbers

import numpy as np

from mmjsd.core.errors import UserError


def _check_scores_and_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """``[N, A]`` float scores and ``[N, A]`` 0/1 labels of equal shape, or a UserError."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape or scores.shape[0] == 0:
        raise UserError(
            f"average precision needs scores and labels of the same [N, attributes] shape, got "
            f"{scores.shape} and {labels.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise UserError("average precision scores contain NaN or inf; check the classifier outputs")
    if not np.all((labels == 0) | (labels == 1)):
        raise UserError("attribute labels must be 0/1 (1 = present); convert -1/1 labels first")
    return scores, labels.astype(np.int64)


def _column_average_precision(scores: np.ndarray, labels: np.ndarray, no_positive_value: float) -> float:
    """AP of one attribute column; ``no_positive_value`` when the column holds no positive."""
    if not labels.any():
        return no_positive_value
    # imported here: only CelebA jobs score APs, and scikit-learn takes ~1 s to import in every other job
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


def average_precision_per_attribute(scores, labels) -> np.ndarray:
    """AP of every attribute pooled over all N rows, shape ``[A]``; NaN for an attribute without positives."""
    scores, labels = _check_scores_and_labels(scores, labels)
    return np.array([_column_average_precision(scores[:, a], labels[:, a], np.nan) for a in range(scores.shape[1])])


def mean_average_precision(scores, labels) -> float:
    """Headline CelebA metric: per-attribute AP pooled over the split, mean over attributes with positives.

    docs/design.md §5 ("pooled over the whole test split per attribute, then the mean over the
    40 attributes"). Raises when no attribute has a positive row.
    """
    per_attribute = average_precision_per_attribute(scores, labels)
    if np.all(np.isnan(per_attribute)):
        raise UserError("no attribute has a positive label in this split, so average precision is undefined")
    return float(np.nanmean(per_attribute))


def chance_mean_average_precision(labels) -> float:
    """The mean AP of scores that ignore the data: per attribute its prevalence, mean over attributes with positives.

    A ranking independent of the labels has an expected average precision equal to the
    fraction of positive rows (up to O(log N / N)), so this is the chance level of
    :func:`mean_average_precision` on these labels (and, nearly, of the per-batch variant).
    Metric files record it as ``extra["attribute_prevalence"]``; the tables show it as the
    chance row of CelebA's columns (docs/metrics.md §5.5).
    """
    labels = np.asarray(labels)
    prevalence = labels.mean(axis=0)
    present = prevalence > 0
    if not present.any():
        raise UserError("no attribute has a positive label in this split, so average precision is undefined")
    return float(prevalence[present].mean())


def batch_mean_average_precision(scores, labels, batch_size: int) -> float:
    """The reference's variant: AP per attribute per batch, mean over batches, then over attributes.

    docs/metrics.md §5.5 (mmjsd ``ap_mean``). Rows are taken in order as consecutive batches
    of ``batch_size`` (the last one may be shorter); a batch without positives for an
    attribute scores 0.0 there, which biases rare attributes down. Side logs only.
    """
    scores, labels = _check_scores_and_labels(scores, labels)
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}; set evaluation.batch_size")
    starts = range(0, scores.shape[0], batch_size)
    per_batch = [
        [
            _column_average_precision(scores[s : s + batch_size, a], labels[s : s + batch_size, a], 0.0)
            for a in range(scores.shape[1])
        ]
        for s in starts
    ]
    return float(np.mean(per_batch))
