"""Coherence evaluator (Table 2, Table 5 right; docs/metrics.md §5.2-5.3, docs/design.md §5).

Over the test split (or the first ``coherence.n_test`` rows of a seeded permutation), in
batches of ``evaluation.batch_size`` encoded once:

* every subset S generates every modality (:func:`~mmjsd.evaluation.generation.generate_means`:
  one z from q(z | X_S), posterior styles for S, prior styles otherwise, decoder means);
* the eval-mode coherence classifiers of ``results/classifiers/<dataset>/<m>/`` score
  each generated modality; all sources of a batch go through each classifier at once.

MST: ``values["S->m"]`` for m not in S is the accuracy of the predicted digit against the
conditioning tuple's label (:func:`~mmjsd.evaluation.coherence.conditional_accuracy`);
``values["random"]`` is the fraction of prior samples (one per evaluated row) whose
predicted digits agree across **all** modalities (MoPoE's definition, docs/design.md §5), and
``extra["random_mmjsd_formula"]`` the mmjsd code's formula.

CelebA: ``values["img->text"]`` and ``values["text->img"]`` are the mean over attributes of
the average precision of the generated modality's 40 attribute scores against the
conditioning sample's attributes, pooled over the evaluated rows (docs/design.md §5);
``extra["per_batch:S->m"]`` is the reference's per-batch mean. No random coherence:
the reference's CelebA version is meaningless (docs/reference-code.md §5.3).

Both: ``extra["S->m"]`` for m in S is the self-reconstruction coherence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mmjsd.classifiers.loading import load_classifier
from mmjsd.classifiers.networks import Classifier
from mmjsd.classifiers.predict import attribute_scores, predict_labels
from mmjsd.evaluation.average_precision import batch_mean_average_precision, mean_average_precision
from mmjsd.evaluation.coherence import conditional_accuracy, random_coherence_all_agree, random_coherence_mmjsd_formula
from mmjsd.evaluation.generation import RANDOM, Source, generation_key, map_generations
from mmjsd import registry
from mmjsd.evaluation.runs import (
    EncodedRows,
    EvaluationInputs,
    MetricResult,
    classifiers_directory,
    derived_seed,
    encode_rows,
    rows_protocol,
    select_rows,
    torch_generator,
)


@dataclass(frozen=True)
class Scoring:
    """How a dataset's generations are scored: classifier output per sample, and its score against the labels.

    ``per_batch`` (CelebA) is the reference's per-batch variant, logged in ``extra``.
    """

    classify: Callable[[Classifier, torch.Tensor], torch.Tensor]
    score: Callable[[np.ndarray, np.ndarray], float]
    random_coherence: bool
    per_batch: Callable[[np.ndarray, np.ndarray, int], float] | None = None


#: Scoring per label kind (DatasetSpec.labels): digits by accuracy (with random coherence), attributes by mean AP.
SCORINGS = {
    "classes": Scoring(predict_labels, conditional_accuracy, random_coherence=True),
    "attributes": Scoring(attribute_scores, mean_average_precision, random_coherence=False, per_batch=batch_mean_average_precision),
}


def load_coherence_classifiers(inputs: EvaluationInputs) -> dict[str, Classifier]:
    """The eval-mode coherence classifier of every modality, from ``<classifiers>/<m>/model.pt``."""
    dataset = inputs.run.dataset
    root = classifiers_directory(inputs.classifiers_dir, dataset, "the coherence metric")
    return {
        m: load_classifier(root / m, inputs.device, dataset=dataset, modality=m, role="coherence")
        for m in inputs.run.model.modalities
    }


def classify_generations(
    inputs: EvaluationInputs,
    encoded: EncodedRows,
    classifiers: dict[str, Classifier],
    scoring: Scoring,
    sources: list[Source],
    generator: torch.Generator,
) -> dict[tuple[Source, str], np.ndarray]:
    """Classifier outputs (digits or attribute scores) of every (source, modality) over the encoded rows."""
    model = inputs.run.model
    sets = [(source, m) for source in sources for m in model.modalities]

    def classify(m: str, means: torch.Tensor) -> torch.Tensor:
        return scoring.classify(classifiers[m], means)

    return map_generations(model, encoded, sets, classify, generator, inputs.job.batch_size, inputs.progress_title("coherence"))


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The coherence metric file's content; see the module docstring."""
    run, job = inputs.run, inputs.job
    model, scoring = run.model, SCORINGS[registry.dataset(run.dataset).labels]
    classifiers = load_coherence_classifiers(inputs)
    seeds = {
        "evaluation": job.seed,
        "test_rows": derived_seed(job.seed, "coherence/test_rows"),
        "latent_samples": derived_seed(job.seed, "coherence/latent_samples"),
    }
    split = inputs.test_split()
    rows = select_rows(len(split), job.settings.n_test, seeds["test_rows"], "evaluation.coherence.n_test")
    encoded = encode_rows(model, split, rows, job.batch_size)
    sources: list[Source] = list(model.subsets) + ([RANDOM] if scoring.random_coherence else [])
    generator = torch_generator(seeds["latent_samples"], inputs.device)
    outputs = classify_generations(inputs, encoded, classifiers, scoring, sources, generator)
    labels = encoded.labels.cpu().numpy()

    values: dict[str, float] = {}
    extra: dict[str, float] = {}
    for subset in model.subsets:
        for m in model.modalities:
            key = generation_key(subset, m)
            if m in subset:
                extra[key] = scoring.score(outputs[(subset, m)], labels)
                continue
            values[key] = scoring.score(outputs[(subset, m)], labels)
            if scoring.per_batch is not None:
                extra[f"per_batch:{key}"] = scoring.per_batch(outputs[(subset, m)], labels, job.batch_size)
    protocol = {
        **rows_protocol(rows, len(split)),
        "batch_size": job.batch_size,
        "classifier_mode": "eval",
        "generation": "decoder_means",
    }
    if scoring.random_coherence:
        random_predictions = {m: outputs[(RANDOM, m)] for m in model.modalities}
        values["random"] = random_coherence_all_agree(random_predictions)
        extra["random_mmjsd_formula"] = random_coherence_mmjsd_formula(random_predictions)
        protocol["random_coherence"] = "all_agree"
    if scoring.per_batch is not None:
        protocol["average_precision"] = "pooled_over_split"
    return MetricResult(metric_name="coherence", values=values, protocol=protocol, seeds=seeds, extra=extra)
