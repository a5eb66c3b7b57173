"""Linear probe on latent representations (Table 1, Table 5 left; docs/metrics.md §5.4-5.5).

A logistic regression (lbfgs, ``random_state=0``; lbfgs is multinomial for more than two
classes, which the reference's ``multi_class='auto'`` selected) is fitted on latents of
training rows and predicts the test rows: digits (:func:`predicted_digits`, MST) or one
probability per attribute (:func:`attribute_scores`, CelebA, one probe per attribute).
Scores of the predictions are computed by the caller (accuracy; pooled or per-batch AP).

MoPoE protocol (docs/design.md §5, :func:`draw_predictions`): ``n_train`` randomly drawn training
rows, repeated ``draws`` times; the mean and sample standard deviation over draws are
reported (:func:`mean_and_std`). Training rows are drawn **without replacement** (MoPoE uses
``np.random.randint``, i.e. with replacement): duplicates only shrink the effective
training set, so here every draw fits on exactly ``n_train`` distinct rows, and different
draws share no row when the training rows suffice (:func:`draw_training_rows`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression

from mmjsd.core.errors import UserError


def _check_latents(latents, name: str) -> np.ndarray:
    """``[N, D]`` finite float64 latents with N > 0, or a UserError naming the split."""
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or latents.shape[0] == 0:
        raise UserError(f"{name} latents must be a non-empty [N, D] array, got shape {latents.shape}")
    if not np.all(np.isfinite(latents)):
        raise UserError(f"{name} latents contain NaN or inf; check the encoder checkpoint")
    return latents


def _check_split(latents, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``[N, D]`` latents with N matching labels (``[N]`` or ``[N, A]``), or a UserError naming the split."""
    latents = _check_latents(latents, name)
    labels = np.asarray(labels)
    if labels.shape[:1] != latents.shape[:1]:
        raise UserError(
            f"{name} latents must have one label row per latent row, got {latents.shape} and {labels.shape}"
        )
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


def predicted_digits(
    train_latents: np.ndarray, train_labels: np.ndarray, test_latents: np.ndarray, max_iter: int
) -> np.ndarray:
    """Digits ``[N_test]`` predicted by one probe fitted on the training rows; a single-class training set raises."""
    if np.unique(train_labels).size < 2:
        raise UserError("the probe's training rows hold a single class; raise evaluation.latent_probe.n_train")
    return fit_probe(train_latents, train_labels, max_iter).predict(test_latents)


def attribute_scores(
    train_latents: np.ndarray, train_attributes: np.ndarray, test_latents: np.ndarray, max_iter: int
) -> np.ndarray:
    """P(attribute present | latent) for every test row and attribute, ``[N_test, A]``; one probe per attribute.

    Scored with ``predict_proba[:, 1]`` as mmjsd (MoPoE's hard ``predict`` is not used). An
    attribute that is constant in the training rows (absent everywhere, or present
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


#: ``predict(train_latents, train_labels, test_latents, max_iter)``:
#: :func:`predicted_digits` or :func:`attribute_scores`.
Predict = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def single_fit_predictions(predict: Predict, train_latents, train_labels, test_latents, max_iter: int) -> np.ndarray:
    """``predict`` of one probe fitted on all the given training rows (after checking both splits)."""
    train_latents, train_labels = _check_split(train_latents, train_labels, "training")
    test_latents = _check_latents(test_latents, "test")
    return predict(train_latents, train_labels, test_latents, max_iter)


def draw_predictions(
    predict: Predict,
    train_latents,
    train_labels,
    test_latents,
    n_train: int,
    draws: int,
    seed: int,
    max_iter: int,
) -> list[np.ndarray]:
    """Test predictions of ``draws`` probes, each fitted on a seeded set of ``n_train`` training rows (MoPoE protocol).

    MoPoE ``eval_metrics/representation.py`` (docs/metrics.md §5.4); the sets come from
    :func:`draw_training_rows` with ``np.random.default_rng(seed)``.
    """
    train_latents, train_labels = _check_split(train_latents, train_labels, "training")
    test_latents = _check_latents(test_latents, "test")
    rows = draw_training_rows(len(train_latents), n_train, draws, np.random.default_rng(seed))
    return [predict(train_latents[r], train_labels[r], test_latents, max_iter) for r in rows]


def mean_and_std(scores: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single score) of per-draw scores."""
    values = np.asarray(scores, dtype=np.float64)
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else 0.0)
