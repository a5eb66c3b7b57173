"""Classifier model files: writing ``model.pt`` and loading it back for evaluation.

``model.pt`` holds ``{"state_dict", "dataset", "modality", "role", "seed", "architecture"}``
(docs/file-formats.md). :func:`load_classifier` rebuilds the architecture, checks the file
against what the caller expects and returns the module in ``eval()`` mode (docs/design.md §5:
classifiers are evaluated with dropout off and BatchNorm running statistics).
"""

from __future__ import annotations

from pathlib import Path

import torch

from mmjsd.classifiers.networks import Classifier, architecture_name, build_classifier
from mmjsd.core.errors import UserError
from mmjsd.core.io import atomic_path

MODEL_FILE = "model.pt"


def save_classifier(out_dir: Path, classifier: Classifier, dataset: str, modality: str, role: str, seed: int) -> Path:
    """Write ``out_dir/model.pt`` atomically; returns its path."""
    path = Path(out_dir) / MODEL_FILE
    record = {
        "state_dict": classifier.state_dict(),
        "dataset": dataset,
        "modality": modality,
        "role": role,
        "seed": seed,
        "architecture": architecture_name(dataset, modality),
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(record, tmp)
    return path


def _check_expected(path: Path, record: dict, expected: dict[str, str | None]) -> None:
    """UserError when the file was trained for another dataset, modality or role than the caller wants."""
    for key, wanted in expected.items():
        if wanted is not None and record.get(key) != wanted:
            raise UserError(
                f"classifier {path} was trained for {key} '{record.get(key)}', but {key} '{wanted}' is needed; "
                "check the classifier directory passed to this step"
            )


def load_classifier(
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    *,
    dataset: str | None = None,
    modality: str | None = None,
    role: str | None = None,
) -> Classifier:
    """The classifier stored in ``out_dir/model.pt``, on ``device`` and in ``eval()`` mode.

    ``dataset``, ``modality`` and ``role``, when given, must match the file's; a missing,
    unreadable or mismatched file raises :class:`UserError`. The stored metadata is
    available on the module as ``classifier.record`` (everything except the weights).
    """
    path = Path(out_dir) / MODEL_FILE
    if not path.is_file():
        raise UserError(
            f"classifier file {path} does not exist; train it first (snakemake runs mmjsd.train_classifier)"
        )
    try:
        record = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file is a user-fixable problem, whatever torch raises
        raise UserError(f"classifier file {path} is unreadable ({err}); delete it and retrain") from err
    _check_expected(path, record, {"dataset": dataset, "modality": modality, "role": role})
    name = record.get("architecture")
    dataset, modality = str(record.get("dataset")), str(record.get("modality"))
    if name != architecture_name(dataset, modality):
        raise UserError(
            f"classifier file {path} holds architecture {name!r}, which this code does not build; retrain it"
        )
    classifier = build_classifier(dataset, modality)
    classifier.load_state_dict(record["state_dict"])
    classifier.record = {key: value for key, value in record.items() if key != "state_dict"}
    return classifier.to(device).eval()
