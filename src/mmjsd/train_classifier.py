"""Step: train one evaluation classifier on the training split and test it.

    python -m mmjsd.train_classifier --dataset mnist_svhn_text --modality svhn --role coherence \\
        --params '<the modality's classifier settings (mmjsd.core.config.Config.classifier_config) as JSON>' \\
        --data results/datasets/mnist_svhn_text.h5 \\
        --out-dir results/classifiers/mnist_svhn_text/svhn

Role ``coherence`` trains the classifier that scores generation coherence (seed =
params.seed); role ``features`` trains a second copy of an image classifier (seed =
params.feature_seed) whose penultimate layer is the fallback PRD feature extractor, in
``results/classifiers/<dataset>/<modality>-features``. Only mnist, svhn and img have a
features role.

Training: Adam, cross-entropy on the 10 digit logits (MST) or BCE-with-logits on the 40
attribute logits (CelebA), shuffled mini-batches seeded by (seed, epoch), the last
incomplete batch dropped. MST images are the split's stored images (each once); MST text
is the pairs' text with the word offsets re-drawn every epoch. The test split is scored
in eval mode: accuracy (MST) or the mean over attributes of the AP pooled over the split
(CelebA). Writes ``model.pt`` and ``metrics.json`` (docs/file-formats.md) into --out-dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mmjsd.classifiers import ROLES
from mmjsd.classifiers.data import Examples, load_examples
from mmjsd.classifiers.loading import save_classifier
from mmjsd.classifiers.networks import Classifier, architecture_name, build_classifier
from mmjsd.classifiers.predict import attribute_scores, predict_labels
from mmjsd.core import registry
from mmjsd.core.cli import add_runtime_arguments, json_arg, main_guard
from mmjsd.core.config import ClassifierConfig, from_dict
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file, write_json
from mmjsd.core.runtime import epoch_order, library_versions, resolve_device, seed_everything, set_threads
from mmjsd.evaluation.average_precision import mean_average_precision

log = logging.getLogger("mmjsd.train_classifier")

#: Training loss on (logits, labels) per label kind (DatasetSpec.labels): one class, or independent bits.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "classes": F.cross_entropy,
    "attributes": F.binary_cross_entropy_with_logits,
}


def digit_accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of predicted digits equal to the labels."""
    return float((predicted == labels).double().mean())


def attribute_mean_ap(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """AP per attribute pooled over the split, mean over attributes (docs/design.md §5)."""
    return mean_average_precision(scores.double().cpu().numpy(), labels.cpu().numpy())


@dataclasses.dataclass(frozen=True)
class Scoring:
    """How a dataset's classifiers are scored on the test split: metrics key,
    batched prediction, score of all predictions."""

    key: str
    predict: Callable[[Classifier, torch.Tensor], torch.Tensor]
    score: Callable[[torch.Tensor, torch.Tensor], float]


#: Test scoring per label kind (DatasetSpec.labels).
SCORINGS = {
    "classes": Scoring("test_accuracy", predict_labels, digit_accuracy),
    "attributes": Scoring("test_mean_ap", attribute_scores, attribute_mean_ap),
}


@dataclasses.dataclass(frozen=True)
class ClassifierRun:
    """Everything that defines one classifier training run."""

    dataset: str
    modality: str
    role: str
    params: ClassifierConfig
    data_path: Path

    @property
    def seed(self) -> int:
        """params.seed for the coherence classifier, params.feature_seed for the PRD feature copy."""
        return self.params.seed if self.role == "coherence" else self.params.feature_seed

    def check(self) -> None:
        """UserError for a modality the dataset lacks or a features role on a non-image modality."""
        spec = registry.dataset(self.dataset)
        if self.modality not in spec.modalities:
            raise UserError(
                f"dataset '{self.dataset}' has no modality '{self.modality}'; use one of {', '.join(spec.modalities)}"
            )
        if self.role == "features" and self.modality not in spec.feature_modalities:
            raise UserError(
                f"role 'features' exists only for image modalities ({', '.join(spec.feature_modalities)}): "
                f"PRD is computed on images, so no feature classifier is trained for '{self.modality}'"
            )


def train_epoch(
    run: ClassifierRun,
    classifier: Classifier,
    optimizer: torch.optim.Optimizer,
    examples: Examples,
    epoch: int,
    progress: bool,
) -> float:
    """One pass over the shuffled training examples (drop-last); returns the mean loss."""
    classifier.train()
    examples.start_epoch(run.seed, epoch)
    batch_size = run.params.batch_size
    steps = len(examples) // batch_size
    order = epoch_order(len(examples), run.seed, epoch, examples.labels.device)
    loss_fn = LOSSES[registry.dataset(run.dataset).labels]
    loss_sum = torch.zeros((), device=examples.labels.device)  # summed on the device: no host sync per step
    desc = f"{run.modality} {run.role} epoch {epoch}/{run.params.epochs}"
    for step in tqdm(range(steps), desc=desc, disable=not progress, mininterval=5.0, unit="step"):
        inputs, labels = examples.batch(order[step * batch_size : (step + 1) * batch_size])
        loss = loss_fn(classifier(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
    mean_loss = float(loss_sum) / steps
    if not np.isfinite(mean_loss):
        raise UserError(f"non-finite classifier loss in epoch {epoch}; lower classifiers.{run.dataset}.lr")
    return mean_loss


def score_on_test_split(dataset: str, classifier: Classifier, examples: Examples, batch_size: int) -> float:
    """The test score (accuracy or mean AP) of the classifier in eval mode, over every test example."""
    classifier.eval()
    scoring = SCORINGS[registry.dataset(dataset).labels]
    chunks = torch.arange(len(examples)).split(batch_size)
    predictions, labels = [], []
    for index in chunks:  # converting one chunk at a time bounds memory (CelebA images are 48 KiB each as float)
        inputs, chunk_labels = examples.batch(index)
        predictions.append(scoring.predict(classifier, inputs))
        labels.append(chunk_labels)
    return scoring.score(torch.cat(predictions), torch.cat(labels))


def train_classifier(run: ClassifierRun, out_dir: Path, device: torch.device, progress: bool = True) -> dict:
    """Train, test and write ``model.pt`` and ``metrics.json`` into ``out_dir``; returns the metrics."""
    run.check()
    started = time.perf_counter()
    train_examples = load_examples(run.dataset, run.modality, run.data_path, "train").to(device)
    test_examples = load_examples(run.dataset, run.modality, run.data_path, "test").to(device)
    if len(train_examples) < run.params.batch_size:
        raise UserError(
            f"the training split has {len(train_examples)} {run.modality} examples, fewer than one batch "
            f"(classifiers.{run.dataset}.batch_size = {run.params.batch_size})"
        )
    seed_everything(run.seed)
    classifier = build_classifier(run.dataset, run.modality).to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=run.params.lr)
    train_losses, epoch_times = [], []
    for epoch in range(1, run.params.epochs + 1):
        epoch_start = time.perf_counter()
        train_losses.append(train_epoch(run, classifier, optimizer, train_examples, epoch, progress))
        epoch_times.append(round(time.perf_counter() - epoch_start, 3))
        log.info(
            "%s/%s %s epoch %d: train loss %.4f (%.1f s)",
            run.dataset,
            run.modality,
            run.role,
            epoch,
            train_losses[-1],
            epoch_times[-1],
        )
    score_key = SCORINGS[registry.dataset(run.dataset).labels].key
    score = score_on_test_split(run.dataset, classifier, test_examples, run.params.batch_size)
    log.info(
        "%s/%s %s: %s %.4f on %d test examples",
        run.dataset,
        run.modality,
        run.role,
        score_key,
        score,
        len(test_examples),
    )
    metrics = {
        "dataset": run.dataset,
        "modality": run.modality,
        "role": run.role,
        "seed": run.seed,
        score_key: score,
        "epochs": run.params.epochs,
        "n_train": len(train_examples),
        "n_test": len(test_examples),
        "architecture": architecture_name(run.dataset, run.modality),
        "num_parameters": sum(p.numel() for p in classifier.parameters()),
        "classifier_mode": "eval",
        "params": dataclasses.asdict(run.params),
        "train_loss": train_losses,
        "epoch_time_s": epoch_times,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "device": str(device),
        "data": {"path": str(run.data_path), "sha256": sha256_file(run.data_path)},
        "versions": library_versions(),
    }
    save_classifier(out_dir, classifier, run.dataset, run.modality, run.role, run.seed)
    write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.train_classifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, choices=registry.DATASETS.names())
    parser.add_argument(
        "--modality",
        required=True,
        help="a modality of the dataset: mnist, svhn or text (mnist_svhn_text); img or text (celeba)",
    )
    parser.add_argument(
        "--role", required=True, choices=ROLES, help="coherence classifier, or the separately seeded PRD feature copy"
    )
    parser.add_argument(
        "--params",
        required=True,
        type=json_arg,
        help=(
            "the settings of this modality's classifiers (classifiers.<dataset> with its override for the modality; "
            "mmjsd.core.config.Config.classifier_config) as JSON"
        ),
    )
    parser.add_argument("--data", required=True, type=Path, help="HDF5 dataset built by mmjsd.build_dataset")
    parser.add_argument("--out-dir", required=True, type=Path, help="directory for model.pt and metrics.json")
    add_runtime_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    params = from_dict(ClassifierConfig, args.params, f"classifiers.{args.dataset}")
    run = ClassifierRun(args.dataset, args.modality, args.role, params, args.data)
    train_classifier(run, args.out_dir, resolve_device(args.device), progress=not args.no_progress)


if __name__ == "__main__":
    main_guard(main)
