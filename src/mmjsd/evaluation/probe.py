"""Linear probe on latent representations (Table 1, Table 5 left; docs/metrics.md §5.4-5.5).

MoPoE protocol (docs/design.md §5): a logistic regression (lbfgs, ``random_state=0``; lbfgs is
multinomial for more than two classes, which the reference's ``multi_class='auto'``
selected) is fitted on ``n_train`` randomly drawn training rows of the subset posterior
means and scored on the whole test split. The draw is repeated ``draws`` times and the
mean and sample standard deviation over draws are reported.

Training rows are drawn **without replacement** (MoPoE uses ``np.random.randint``, i.e.
with replacement): duplicates only shrink the effective training set, so here every
draw fits on exactly ``n_train`` distinct rows, and different draws share no row when the
training rows suffice (:func:`draw_training_rows`). Accuracy and AP are computed once over the pooled
test split; with the reference's equal-size batches (``drop_last``) the batch-mean
accuracy is the same number.
"""

from __future__ import annotations

import numbers
from typing import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression

from mmjsd.errors import UserError
from mmjsd.evaluation.average_precision import mean_average_precision


def _check_split(latents, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``[N, D]`` latents with N matching labels (``[N]`` or ``[N, A]``), or a UserError naming the split."""
    latents = np.asarray(latents, dtype=np.float64)
    labels = np.asarray(labels)
    if latents.ndim != 2 or latents.shape[0] == 0 or labels.shape[:1] != latents.shape[:1]:
        raise UserError(
            f"{name} latents must be [N, D] with one label row per latent row, got {latents.shape} and {labels.shape}"
        )
    if not np.all(np.isfinite(latents)):
        raise UserError(f"{name} latents contain NaN or inf; check the encoder checkpoint")
    return latents, labels


def draw_training_rows(num_rows: int, n_train: int, draws: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``draws`` sets of ``n_train`` distinct row indices out of ``num_rows``, uniformly at random.

    The sets are disjoint whenever ``num_rows >= n_train · draws`` (consecutive pieces of one
    permutation), so the spread over draws is that of independent training sets; otherwise
    each set is drawn on its own, and sets overlap.
    """
    if not (isinstance(n_train, numbers.Integral) and 1 <= n_train <= num_rows):
        raise UserError(
            f"the probe draws n_train={n_train!r} training rows but {num_rows} exist; "
            "set evaluation.latent_probe.n_train between 1 and the training-set size"
        )
    if not (isinstance(draws, numbers.Integral) and draws >= 1):
        raise UserError(f"the probe needs draws >= 1, got {draws!r}; set evaluation.latent_probe.draws")
    n_train, draws = int(n_train), int(draws)
    if num_rows >= n_train * draws:
        order = rng.permutation(num_rows)
        return [order[d * n_train : (d + 1) * n_train] for d in range(draws)]
    return [rng.choice(num_rows, size=n_train, replace=False) for _ in range(draws)]


def fit_probe(latents: np.ndarray, labels: np.ndarray, max_iter: int) -> LogisticRegression:
    """LogisticRegression(solver='lbfgs', max_iter, random_state=0) fitted on the rows (docs/metrics.md §5.4)."""
    return LogisticRegression(solver="lbfgs", max_iter=max_iter, random_state=0).fit(latents, labels)


def _mean_std_over_draws(
    score_draw: Callable[[np.ndarray], float], num_rows: int, n_train: int, draws: int, seed: int
) -> tuple[float, float]:
    """Mean and sample std (0 for one draw) of ``score_draw(rows)`` over the seeded :func:`draw_training_rows`."""
    rows = draw_training_rows(num_rows, n_train, draws, np.random.default_rng(seed))
    scores = np.array([score_draw(r) for r in rows])
    return float(scores.mean()), (float(scores.std(ddof=1)) if draws > 1 else 0.0)


def probe_accuracy(
    train_latents,
    train_labels,
    test_latents,
    test_labels,
    n_train: int = 500,
    draws: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
) -> tuple[float, float]:
    """(mean, std) over draws of the test accuracy of a probe fitted on ``n_train`` random training rows.

    MoPoE ``eval_metrics/representation.py`` (docs/metrics.md §5.4). A draw whose rows hold a
    single class cannot be fitted and raises (increase ``n_train``).
    """
    train_latents, train_labels = _check_split(train_latents, train_labels, "training")
    test_latents, test_labels = _check_split(test_latents, test_labels, "test")

    def accuracy(rows: np.ndarray) -> float:
        if np.unique(train_labels[rows]).size < 2:
            raise UserError("the probe's training draw holds a single class; raise evaluation.latent_probe.n_train")
        probe = fit_probe(train_latents[rows], train_labels[rows], max_iter)
        return float(np.mean(probe.predict(test_latents) == test_labels))

    return _mean_std_over_draws(accuracy, len(train_latents), n_train, draws, seed)


def attribute_scores(
    train_latents: np.ndarray, train_attributes: np.ndarray, test_latents: np.ndarray, max_iter: int
) -> np.ndarray:
    """P(attribute present | latent) for every test row and attribute, ``[N_test, A]``; one probe per attribute.

    An attribute that is constant in the training rows (absent everywhere, or present
    everywhere) cannot be fitted; it scores every test row with that constant (0 or 1),
    which ranks nothing, so its AP is the test split's base rate.
    """
    columns = []
    for attribute in train_attributes.T:
        if np.unique(attribute).size < 2:
            columns.append(np.full(len(test_latents), float(attribute[0])))
        else:
            columns.append(fit_probe(train_latents, attribute, max_iter).predict_proba(test_latents)[:, 1])
    return np.stack(columns, axis=1)


def probe_mean_average_precision(
    train_latents,
    train_attributes,
    test_latents,
    test_attributes,
    n_train: int = 500,
    draws: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
) -> tuple[float, float]:
    """(mean, std) over draws of the mean AP over attributes of per-attribute probes (CelebA).

    docs/metrics.md §5.5: one LogisticRegression per attribute, scored with
    ``predict_proba[:, 1]`` (mmjsd; MoPoE's hard ``predict`` is not used), AP pooled over
    the whole test split per attribute, then the mean over attributes
    (:func:`~mmjsd.evaluation.average_precision.mean_average_precision`).
    """
    train_latents, train_attributes = _check_split(train_latents, train_attributes, "training")
    test_latents, test_attributes = _check_split(test_latents, test_attributes, "test")

    def mean_ap(rows: np.ndarray) -> float:
        scores = attribute_scores(train_latents[rows], train_attributes[rows], test_latents, max_iter)
        return mean_average_precision(scores, test_attributes)

    return _mean_std_over_draws(mean_ap, len(train_latents), n_train, draws, seed)
