"""What every metric evaluator shares: the trained run, the encoded split, seeds and the result record.

* :func:`load_run` rebuilds a run's model from ``model.pt`` (docs/file-formats.md, written
  by :func:`mmjsd.train.write_outputs`) in ``eval()`` mode.
* :func:`encode_rows` encodes chosen rows of a split **once** (docs/metrics.md §4.5, §6 item 8):
  every modality's content and style Gaussians, concatenated over batches, stay on the
  model's device, and every subset posterior of every metric is built from them
  analytically (``model.subset_posterior``), never by encoding again.
* :func:`derived_seed` turns the evaluation seed into one independent seed per purpose
  (test subset, latent draws, probe pool, ...), each recorded in the metric file, so the
  same run, parameters and seed give the same metric file on the CPU.
* :class:`MetricResult` is what an evaluator returns; :mod:`mmjsd.evaluate` writes it.
* :func:`switch_settings` lists the switch sets a metric job reports: its own (``values``)
  and each of its evaluation departures flipped alone (``alternatives``, docs/departures.md).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mmjsd.core.config import MetricJob, TrainConfig, from_dict
from mmjsd.core.departures import flipped, metric_departures
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file
from mmjsd.core.runtime import library_versions
from mmjsd.data.readers import CelebASplit, MSTSplit, load_split
from mmjsd.models import Encoding, Encodings, MultimodalVAE, build_model

Split = MSTSplit | CelebASplit

#: The split every metric is scored on (CelebA: the validation partition, docs/design.md §3).
TEST_SPLIT = "test"


# ------------------------------------------------------------------------------ the run
@dataclass
class LoadedRun:
    """A trained run: its model in ``eval()`` mode and the identity recorded in its ``model.pt``."""

    model: MultimodalVAE
    dataset: str
    variant: str
    seed: int
    epoch: int
    model_sha256: str
    #: corrected or reference-exact (docs/departures.md), as the training step recorded it.
    protocol: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_run(run_dir: str | Path, device: torch.device) -> LoadedRun:
    """The model of ``run_dir/model.pt`` on ``device``, in eval mode; a missing or foreign file raises UserError."""
    run_dir = Path(run_dir)
    path = run_dir / "model.pt"
    if not path.is_file():
        raise UserError(f"model file {path} does not exist; train the run first (snakemake runs mmjsd.train)")
    try:
        record = torch.load(path, map_location=device, weights_only=True)
        keys_present = all(
            key in record for key in ("state_dict", "dataset", "variant", "seed", "protocol", "train_config")
        )
    except Exception as err:  # a truncated or foreign file is a user-fixable problem, whatever torch raises
        raise UserError(f"model file {path} is unreadable ({err}); delete it and retrain") from err
    if not keys_present:
        raise UserError(
            f"model file {path} lacks "
            "state_dict/dataset/variant/seed/protocol/train_config (see docs/file-formats.md); "
            "delete it and retrain"
        )
    train_config = from_dict(TrainConfig, record["train_config"], f"{path}:train_config")
    model = build_model(record["dataset"], record["variant"], train_config)
    model.load_state_dict(record["state_dict"])
    return LoadedRun(
        model=model.to(device).eval(),
        dataset=record["dataset"],
        variant=record["variant"],
        seed=int(record["seed"]),
        epoch=int(record.get("epoch", 0)),
        model_sha256=sha256_file(path),
        protocol=record["protocol"],
    )


# ------------------------------------------------------------------------------- seeds
def derived_seed(seed: int, purpose: str) -> int:
    """An independent 31-bit seed for ``purpose`` derived from the evaluation seed (numpy SeedSequence spawn keys)."""
    sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(purpose.encode("ascii")),))
    return int(sequence.generate_state(1)[0] >> 1)


def torch_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for every latent draw of one metric (posterior samples, prior samples, styles)."""
    return torch.Generator(device=device).manual_seed(seed)


def select_rows(num_rows: int, n_test: int | None, seed: int, key: str) -> torch.Tensor:
    """Rows of a split to evaluate: all of them in order, or the first ``n_test`` of a seeded permutation.

    ``n_test`` larger than the split is capped (the metric file records the count used);
    ``key`` names the config key in the error for a non-positive value.
    """
    if n_test is None or n_test >= num_rows:
        return torch.arange(num_rows)
    if n_test < 1:
        raise UserError(f"{key} must be a positive integer or null (the whole split), got {n_test}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_rows, generator=generator)[:n_test]


def rows_kind(rows: torch.Tensor | np.ndarray, split_size: int) -> str:
    """The protocol's ``test_rows``: ``all`` when :func:`select_rows` kept the whole split, else ``seeded_subset``."""
    return "all" if len(rows) == split_size else "seeded_subset"


def rows_protocol(rows: torch.Tensor, split_size: int) -> dict[str, Any]:
    """Protocol entries of the evaluated test rows: split, count, and whether they are the whole split."""
    return {"split": TEST_SPLIT, "n_test": len(rows), "test_rows": rows_kind(rows, split_size)}


# ------------------------------------------------------------------------ encoded rows
#: Fields of an :class:`~mmjsd.models.Encoding` (content and style mean and log-variance; styles may be None).
ENCODING_FIELDS = tuple(f.name for f in dataclasses.fields(Encoding))


def slice_encodings(encodings: Encodings, part: slice) -> Encodings:
    """Rows ``part`` of every modality's encoding (views, no copies)."""
    return {
        m: Encoding(
            **{name: None if getattr(enc, name) is None else getattr(enc, name)[part] for name in ENCODING_FIELDS}
        )
        for m, enc in encodings.items()
    }


def concat_encodings(parts: list[Encodings]) -> Encodings:
    """Batch encodings joined row-wise, per modality and field."""
    joined = {}
    for m, first in parts[0].items():
        fields = {name: [getattr(p[m], name) for p in parts] for name in ENCODING_FIELDS}
        joined[m] = Encoding(
            **{name: None if getattr(first, name) is None else torch.cat(ts) for name, ts in fields.items()}
        )
    return joined


@dataclass
class EncodedBatch:
    """One batch of encoded rows: split row indices, labels and encodings (on the model's device)."""

    rows: torch.Tensor
    labels: torch.Tensor
    encodings: Encodings


@dataclass
class EncodedRows:
    """Rows of a split, encoded once; the split itself stays available for the data (likelihood targets).

    ``rows`` index the split (CPU int64); ``labels`` and ``encodings`` are on the model's
    device, in the order of ``rows``.
    """

    split: Split
    rows: torch.Tensor
    labels: torch.Tensor
    encodings: Encodings

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, batch_size: int, progress: str | None = None) -> Iterator[EncodedBatch]:
        """Consecutive batches of ``batch_size`` rows (the last may be shorter); a
        progress bar titled ``progress`` if given."""
        starts = range(0, len(self), batch_size)
        for start in tqdm(starts, desc=progress, disable=progress is None, mininterval=5.0, unit="batch"):
            part = slice(start, start + batch_size)
            yield EncodedBatch(self.rows[part], self.labels[part], slice_encodings(self.encodings, part))

    def data(self, rows: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        """The float batch of split rows ``rows`` on ``device`` (gathered where the split lives)."""
        batch, _ = self.split.batch(rows)
        return {m: x.to(device) for m, x in batch.items()}


def load_data_split(dataset: str, path: str | Path, split: str, device: torch.device | None = None) -> Split:
    """A split of the dataset file, moved to ``device`` when given (device-resident data for the test split)."""
    loaded = load_split(dataset, path, split)
    return loaded.to(device) if device is not None else loaded


def encode_rows(model: MultimodalVAE, split: Split, rows: torch.Tensor, batch_size: int) -> EncodedRows:
    """Encode ``rows`` of ``split`` in batches of ``batch_size`` under inference mode; see :class:`EncodedRows`."""
    device = next(model.parameters()).device
    parts: list[Encodings] = []
    labels = []
    with torch.inference_mode():
        for index in rows.split(batch_size):
            batch, batch_labels = split.batch(index)
            parts.append(model.encode({m: x.to(device) for m, x in batch.items()}))
            labels.append(batch_labels.to(device))
    return EncodedRows(split, rows, torch.cat(labels), concat_encodings(parts))


# ---------------------------------------------------------------------------- results
def evaluation_versions() -> dict[str, str]:
    """Library versions that move numbers: mmjsd, torch, numpy, python and scikit-learn."""
    return {**library_versions(), "sklearn": version("scikit-learn")}  # metadata: importing sklearn costs ~1 s per job


@dataclass
class MetricResult:
    """What an evaluator returns; the fields are those of a metric file (docs/file-formats.md).

    ``alternatives`` maps each evaluation departure of the job to ``values`` recomputed with
    that switch flipped alone (from the same encodings, draws and generations);
    ``document_extra`` holds further top-level fields (PRD: ``extractor``).
    """

    metric_name: str
    values: dict[str, float]
    protocol: dict[str, Any]
    seeds: dict[str, int]
    std: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    alternatives: dict[str, dict[str, float]] = field(default_factory=dict)
    document_extra: dict[str, Any] = field(default_factory=dict)


def switch_settings(switches: dict[str, str]) -> dict[str | None, dict[str, str]]:
    """The switch sets one metric job scores: ``None`` → the job's own, each
    departure name → that switch flipped alone."""
    settings: dict[str | None, dict[str, str]] = {None: dict(switches)}
    for name, value in switches.items():
        settings[name] = {**switches, name: flipped(value)}
    return settings


def values_and_alternatives(
    switches: dict[str, str], values_under: Callable[[dict[str, str]], dict[str, float]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``values_under(s)`` for the job's switch set and, per departure, for that switch flipped alone."""
    scored = {name: values_under(setting) for name, setting in switch_settings(switches).items()}
    values = scored.pop(None)
    return values, scored


@dataclass
class EvaluationInputs:
    """Everything a metric evaluator reads: the run, the dataset file, classifiers, settings and device.

    ``job`` holds the evaluation seed, batch size and the metric's own settings block.

    ``classifiers_dir`` is ``results/classifiers/<dataset>`` (coherence and PRD need it);
    ``real_features`` is the cached real-image feature file of :mod:`mmjsd.prd_reference`
    (PRD only; computed in memory when absent).
    """

    run: LoadedRun
    data_path: Path
    job: MetricJob
    classifiers_dir: Path | None = None
    real_features: Path | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        expected = metric_departures(self.run.dataset, self.job.metric)
        if sorted(self.job.departures) != sorted(expected):
            raise UserError(
                f"the {self.job.metric} job's departures {sorted(self.job.departures)} are not those acting on "
                f"{self.run.dataset} ({sorted(expected)}); build the params with mmjsd.core.config.metric_job_params"
            )

    @property
    def device(self) -> torch.device:
        return self.run.device

    def test_split(self) -> Split:
        """The test split of the dataset file, on the run's device."""
        return load_data_split(self.run.dataset, self.data_path, TEST_SPLIT, self.device)

    def progress_title(self, metric: str) -> str | None:
        """The progress-bar title for ``metric``'s batches, or None when progress bars are off."""
        return f"{metric} {self.run.variant} seed {self.run.seed}" if self.progress else None


def classifiers_directory(classifiers_dir: Path | None, dataset: str, purpose: str) -> Path:
    """``results/classifiers/<dataset>`` as given on the command line, or a UserError saying ``purpose`` needs it."""
    if classifiers_dir is None:
        raise UserError(f"{purpose} needs --classifiers results/classifiers/{dataset}")
    if not Path(classifiers_dir).is_dir():
        raise UserError(f"classifier directory {classifiers_dir} does not exist; train the classifiers first")
    return Path(classifiers_dir)
