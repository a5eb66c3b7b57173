"""Coherence evaluator (Table 2, Table 5 right; docs/metrics.md §5.2-5.3, docs/design.md §5).

Over the test split (or the first ``coherence.n_test`` rows of a seeded permutation), in
batches of ``evaluation.batch_size`` encoded once:

* every subset S generates every modality (:func:`~mmjsd.evaluation.generation.generate_means`:
  one z from q(z | X_S), posterior styles for S, prior styles otherwise, decoder means);
* the coherence classifiers of ``results/classifiers/<dataset>/<m>/`` score each generated
  modality; all sources of a batch go through each classifier at once.

MST: ``values["S->m"]`` for m not in S is the accuracy of the predicted digit against the
conditioning tuple's label (:func:`~mmjsd.evaluation.coherence.conditional_accuracy`);
``values["random"]`` is the fraction of prior samples (one per evaluated row) whose
predicted digits agree across **all** modalities (MoPoE's definition, docs/design.md §5).

CelebA: ``values["img->text"]`` and ``values["text->img"]`` are the mean over attributes of
the average precision of the generated modality's 40 attribute scores against the
conditioning sample's attributes, pooled over the evaluated rows (docs/design.md §5). No random
coherence: the reference's CelebA version is meaningless (docs/reference-code.md §5.3).

Both: ``extra["S->m"]`` for m in S is the self-reconstruction coherence.

Departures (docs/departures.md), each also reported flipped alone in ``alternatives``, from
the same generations:

* ``classifier_mode``: ``corrected`` classifies in eval mode; ``reference`` in train mode, as
  the official code never calls ``eval()``: dropout active and BatchNorm normalising by the
  statistics of each generated batch of one source (``evaluation.batch_size`` rows, 256 in
  the official loop), on a copy, so the running statistics of the eval-mode classifier stay
  untouched. Dropout masks come from one seeded stream per image-range setting
  (:class:`DropoutStreams`, seeded from ``seeds["classifier_dropout"]``), so a number does not
  depend on which other settings the job also computes;
* ``generated_image_range``: ``corrected`` clamps generated data to [0, 1] before the
  classifiers (a no-op for text), ``reference`` passes the unbounded Laplace mean;
* ``random_coherence_formula`` (MST): ``reference`` is the mmjsd formula (coherent when
  (M == S) equals (M == T));
* ``per_batch_average_precision`` (CelebA): ``reference`` is the AP per batch of
  ``evaluation.batch_size`` rows, averaged over batches, then over attributes.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mmjsd.classifiers.loading import load_classifier
from mmjsd.classifiers.networks import Classifier
from mmjsd.classifiers.predict import attribute_scores, predict_labels
from mmjsd.core import registry
from mmjsd.core.departures import REFERENCE
from mmjsd.core.errors import UserError
from mmjsd.evaluation.average_precision import (
    batch_mean_average_precision,
    chance_mean_average_precision,
    mean_average_precision,
)
from mmjsd.evaluation.coherence import conditional_accuracy, random_coherence_all_agree, random_coherence_mmjsd_formula
from mmjsd.evaluation.generation import RANDOM, Source, generation_key, map_generations
from mmjsd.evaluation.runs import (
    EncodedRows,
    EvaluationInputs,
    MetricResult,
    classifiers_directory,
    derived_seed,
    encode_rows,
    rows_protocol,
    select_rows,
    switch_settings,
    torch_generator,
    values_and_alternatives,
)


@dataclass(frozen=True)
class Scoring:
    """How a dataset's generations are scored: classifier output per sample, and its score against the labels.

    ``score`` pools the evaluated rows; ``per_batch`` (CelebA) is the official per-batch
    mean, used when the ``per_batch_average_precision`` departure is at ``reference``.
    """

    classify: Callable[..., torch.Tensor]
    score: Callable[[np.ndarray, np.ndarray], float]
    random_coherence: bool
    per_batch: Callable[[np.ndarray, np.ndarray, int], float] | None = None


#: Scoring per label kind (DatasetSpec.labels): digits by accuracy (with random coherence), attributes by mean AP.
SCORINGS = {
    "classes": Scoring(predict_labels, conditional_accuracy, random_coherence=True),
    "attributes": Scoring(
        attribute_scores, mean_average_precision, random_coherence=False, per_batch=batch_mean_average_precision
    ),
}


@dataclass(frozen=True)
class Classification:
    """How generated data reach the classifiers: in train mode or not, clamped to [0, 1] or not (two departures)."""

    train_mode: bool
    clamp: bool

    @classmethod
    def under(cls, switches: dict[str, str]) -> Classification:
        return cls(
            train_mode=switches["classifier_mode"] == REFERENCE, clamp=switches["generated_image_range"] != REFERENCE
        )


class DropoutStreams:
    """One global-RNG stream per key for train-mode dropout, each seeded from
    ``seed`` and the key and resumed where it stopped.

    Dropout draws from torch's global generator; :meth:`stream` switches it (CPU and the
    device's CUDA generator) to the key's own state and restores the caller's afterwards.
    """

    def __init__(self, seed: int, device: torch.device):
        self.seed, self.device = seed, device
        self.states: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @contextlib.contextmanager
    def stream(self, key: str) -> Iterator[None]:
        cuda = self.device.type == "cuda"
        if key not in self.states:
            seed = derived_seed(self.seed, key)
            self.states[key] = (
                torch.Generator().manual_seed(seed).get_state(),
                torch.Generator(device=self.device).manual_seed(seed).get_state() if cuda else None,
            )
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            cpu_state, cuda_state = self.states[key]
            torch.set_rng_state(cpu_state)
            if cuda:
                torch.cuda.set_rng_state(cuda_state, self.device)
            yield
            self.states[key] = (torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if cuda else None)


def classify_in_train_mode(
    classify: Callable[..., torch.Tensor], classifier: Classifier, data: torch.Tensor, rows: int
) -> torch.Tensor:
    """``classify`` of a train-mode ``classifier`` on each block of ``rows`` consecutive rows of ``data`` on its own.

    A block is one generated batch of one source, the batch the official code's train-mode
    classifiers normalised with their BatchNorm statistics. The classifier's running
    statistics change: pass a copy.
    """
    if rows < 2:
        raise UserError(
            "a train-mode classifier (classifier_mode: reference) needs batches of at least 2 rows for BatchNorm; "
            "choose evaluation.coherence.n_test so that no test batch holds a single row"
        )
    return torch.cat([classify(classifier.train(), part, batch_size=rows) for part in data.split(rows)])


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
    classifications: list[Classification],
    generator: torch.Generator,
    dropout: DropoutStreams,
) -> dict[tuple[Source, str], np.ndarray]:
    """Classifier outputs of every (source, modality) over the encoded rows, ``[N, len(classifications), ...]``.

    Every generated batch is classified once per entry of ``classifications``; in train mode
    each source's rows of the batch form their own classifier batch (BatchNorm statistics),
    with dropout from ``dropout``'s stream of that image-range setting.
    """
    model = inputs.run.model
    sets = [(source, m) for source in sources for m in model.modalities]
    train_copies = (
        {m: copy.deepcopy(c) for m, c in classifiers.items()} if any(c.train_mode for c in classifications) else {}
    )

    def classify_one(m: str, means: torch.Tensor, how: Classification) -> torch.Tensor:
        data = means.clamp(0.0, 1.0) if how.clamp else means
        if not how.train_mode:
            return scoring.classify(classifiers[m], data)
        rows = len(means) // len(sources)  # every source generates every modality, source-major
        with dropout.stream(f"coherence/classifier_dropout/{'clamped' if how.clamp else 'unbounded'}"):
            return classify_in_train_mode(scoring.classify, train_copies[m], data, rows)

    def classify(m: str, means: torch.Tensor) -> torch.Tensor:
        return torch.stack([classify_one(m, means, how) for how in classifications], dim=1)

    return map_generations(
        model, encoded, sets, classify, generator, inputs.job.batch_size, inputs.progress_title("coherence")
    )


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The coherence metric file's content; see the module docstring."""
    run, job = inputs.run, inputs.job
    model, scoring = run.model, SCORINGS[registry.dataset(run.dataset).labels]
    classifiers = load_coherence_classifiers(inputs)
    seeds = {
        "evaluation": job.seed,
        "test_rows": derived_seed(job.seed, "coherence/test_rows"),
        "latent_samples": derived_seed(job.seed, "coherence/latent_samples"),
        "classifier_dropout": derived_seed(job.seed, "coherence/classifier_dropout"),
    }
    split = inputs.test_split()
    rows = select_rows(len(split), job.settings.n_test, seeds["test_rows"], "evaluation.coherence.n_test")
    encoded = encode_rows(model, split, rows, job.batch_size)
    sources: list[Source] = list(model.subsets) + ([RANDOM] if scoring.random_coherence else [])
    classifications = list(dict.fromkeys(Classification.under(s) for s in switch_settings(job.departures).values()))
    generator = torch_generator(seeds["latent_samples"], inputs.device)
    dropout = DropoutStreams(seeds["classifier_dropout"], inputs.device)
    outputs = classify_generations(inputs, encoded, classifiers, scoring, sources, classifications, generator, dropout)
    labels = encoded.labels.cpu().numpy()

    def scored(subset: Source, m: str, switches: dict[str, str]) -> float:
        predictions = outputs[(subset, m)][:, classifications.index(Classification.under(switches))]
        if switches.get("per_batch_average_precision") == REFERENCE:
            return scoring.per_batch(predictions, labels, job.batch_size)
        return scoring.score(predictions, labels)

    def values_under(switches: dict[str, str]) -> dict[str, float]:
        values = {
            generation_key(s, m): scored(s, m, switches) for s in model.subsets for m in model.modalities if m not in s
        }
        if scoring.random_coherence:
            how = classifications.index(Classification.under(switches))
            random_predictions = {m: outputs[(RANDOM, m)][:, how] for m in model.modalities}
            formula = (
                random_coherence_mmjsd_formula
                if switches["random_coherence_formula"] == REFERENCE
                else random_coherence_all_agree
            )
            values["random"] = formula(random_predictions)
        return values

    values, alternatives = values_and_alternatives(job.departures, values_under)
    extra = {generation_key(s, m): scored(s, m, job.departures) for s in model.subsets for m in s}
    own = Classification.under(job.departures)
    protocol = {
        **rows_protocol(rows, len(split)),
        "batch_size": job.batch_size,
        "classifier_mode": "train" if own.train_mode else "eval",
        "generation": "decoder_means",
        "generated_data": "clamped_to_unit_interval" if own.clamp else "unbounded",
    }
    if scoring.random_coherence:
        protocol["random_coherence"] = (
            "mmjsd_formula" if job.departures["random_coherence_formula"] == REFERENCE else "all_agree"
        )
    if scoring.per_batch is not None:
        per_batch = job.departures["per_batch_average_precision"] == REFERENCE
        protocol["average_precision"] = "mean_over_batches" if per_batch else "pooled_over_split"
        extra["attribute_prevalence"] = chance_mean_average_precision(labels)
    return MetricResult(
        metric_name="coherence", values=values, protocol=protocol, seeds=seeds, extra=extra, alternatives=alternatives
    )
