"""The four metrics of the mmJSD paper (docs/metrics.md): each one's
evaluator, settings block, inputs and chance level."""

from __future__ import annotations

from mmjsd.core.config import CoherenceConfig, LikelihoodConfig, PRDConfig, ProbeConfig
from mmjsd.core.departures import REFERENCE
from mmjsd.core.registry import ChanceQuery, MetricSpec, register_metric


def without_inception_weights(settings: PRDConfig) -> bool:
    """PRD reads the feature classifiers unless Inception weights give the features."""
    return settings.inception_weights is None


def label_chance(query: ChanceQuery) -> float | None:
    """Score of a prediction that ignores its input: 1/C for C classes, the attribute prevalence for a mean AP.

    A uniformly random guess among C classes is right with probability 1/C whatever the class
    frequencies; an AP of scores independent of the labels equals the prevalence
    (docs/metrics.md §5.5), which the CelebA metric files record.
    """
    if query.dataset.labels == "classes":
        return 1.0 / query.dataset.num_labels
    return query.attribute_prevalence


def coherence_chance(query: ChanceQuery) -> float | None:
    """Conditional coherence: :func:`label_chance`. Random coherence
    (docs/metrics.md §5.3) of M uniform, independent predictions:

    * all M agree (corrected): C · C^-M = C^(1-M), 1/100 for three modalities and ten digits;
    * the mmjsd formula (M == S) == (M == T) (``random_coherence_formula: reference``, three
      modalities only): both hold with 1/C², neither with (1 - 1/C)², so 0.82 for ten digits.
    """
    if query.key != "random":
        return label_chance(query)
    classes, modalities = query.dataset.num_labels, len(query.dataset.modalities)
    if query.departures.get("random_coherence_formula") == REFERENCE:
        return 1.0 / classes**2 + (1.0 - 1.0 / classes) ** 2 if modalities == 3 else None
    return float(classes) ** (1 - modalities)


register_metric(
    MetricSpec(
        name="latent_probe",
        label="Linear classification of the latent representations",
        evaluator="mmjsd.evaluation.probe_eval:evaluate",
        settings=ProbeConfig,
        description="Logistic-regression probe on each subset's posterior means (Table 1, Table 5 left).",
        precision=2,
        chance=label_chance,
        caption="Chance of the probe: 1/C for C classes; for a mean AP, the attribute prevalence of the test rows.",
    )
)
register_metric(
    MetricSpec(
        name="coherence",
        label="Coherence of conditional and random generation",
        evaluator="mmjsd.evaluation.coherence_eval:evaluate",
        settings=CoherenceConfig,
        description="Generated modalities scored by the coherence classifiers (Table 2, Table 5 right).",
        coherence_classifiers=True,
        precision=2,
        chance=coherence_chance,
        caption=(
            "Chance of coherence: 1/C for C classes; random coherence of M modalities C^(1-M) when all must agree, "
            "1/C^2 + (1 - 1/C)^2 under the mmjsd formula (random_coherence_formula: reference); for a mean AP, the "
            "attribute prevalence of the test rows."
        ),
    )
)
register_metric(
    MetricSpec(
        name="prd",
        label="Quality of generated images (PRD average precision)",
        evaluator="mmjsd.evaluation.prd_eval:evaluate",
        settings=PRDConfig,
        description="Precision and recall for distributions of generated vs real images (Table 3).",
        feature_classifiers=without_inception_weights,
        real_features=True,
        precision=3,
        caption=(
            "PRD average precision has no chance level; identical distributions score 0.7204 on the 1001-angle grid, "
            "never 1 (docs/metrics.md §1.7)."
        ),
    )
)
register_metric(
    MetricSpec(
        name="likelihood",
        label="Test log-likelihood (nats)",
        evaluator="mmjsd.evaluation.likelihood_eval:evaluate",
        settings=LikelihoodConfig,
        description="Importance-sampled test log-likelihoods with each subset's posterior as proposal (Table 4).",
        precision=0,
    )
)
