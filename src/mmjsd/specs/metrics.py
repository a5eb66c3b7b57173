"""The four metrics of the mmJSD paper (docs/metrics.md): each one's evaluator, settings block and inputs."""

from __future__ import annotations

from mmjsd.config import CoherenceConfig, LikelihoodConfig, PRDConfig, ProbeConfig
from mmjsd.registry import MetricSpec, register_metric


def without_inception_weights(settings: PRDConfig) -> bool:
    """PRD reads the feature classifiers unless Inception weights give the features."""
    return settings.inception_weights is None


register_metric(
    MetricSpec(
        name="latent_probe",
        label="Linear classification of the latent representations",
        evaluator="mmjsd.evaluation.probe_eval:evaluate",
        settings=ProbeConfig,
        description="Logistic-regression probe on each subset's posterior means (Table 1, Table 5 left).",
        precision=2,
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
