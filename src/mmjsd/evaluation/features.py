"""PRD feature extractors and the real-image feature file (docs/metrics.md §2, §6; docs/design.md §5).

Two extractors, chosen by ``evaluation.prd.inception_weights``:

* **Inception-v3 pool3, 2048-d** (the paper's; name ``inception_pool3_2048``) when a
  weights file is given: pytorch-fid's ``InceptionV3`` architecture with the state dict
  read from that path, never downloaded. Its sha256 is recorded; unless it starts with
  ``6726825d`` (the file pytorch-fid ships, ``pt_inception-2015-12-05-6726825d.pth``) the
  job warns and the name carries the digest (``inception_pool3_2048_sha256-<12 hex>``), so
  those values are never set beside the paper's. Preprocessing as mmJSD's PNG path
  without the PNG (docs/metrics.md §2.1, §2.3): pixels quantised to uint8 levels, 1-channel
  images repeated to 3 channels; the network resizes bilinearly to 299×299 and maps
  [0, 1] to [−1, 1] itself (``resize_input``/``normalize_input``).
* **Classifier features** otherwise (name ``clf_penult_<dim>``): the penultimate layer of
  the separately seeded feature classifier ``results/classifiers/<dataset>/<m>-features/``
  of each image modality, in eval mode (docs/metrics.md §2.4). Its numbers must never be set
  beside the paper's Table 3.

Every image, real or generated, is quantised to the 256 uint8 levels before extraction
(real pixels already are; generated ones are as they would be written to PNG).

Real-image features depend only on the dataset, the sampled test rows and the extractor,
so :mod:`mmjsd.prd_reference` computes them once per dataset into a ``.npz`` file
(:func:`save_real_features`); :func:`load_real_features` checks that the file belongs to the
same data, rows and extractor before the PRD evaluator uses it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from mmjsd.classifiers.loading import MODEL_FILE, load_classifier
from mmjsd.classifiers.predict import penultimate_features
from mmjsd.core import registry
from mmjsd.core.errors import UserError
from mmjsd.core.io import atomic_path, sha256_file
from mmjsd.evaluation.runs import Split, classifiers_directory, derived_seed, select_rows
from mmjsd.reporting.metrics_io import INCEPTION_EXTRACTOR

#: Leading hex digits of the sha256 of pytorch-fid's FID Inception weights.
INCEPTION_SHA256_PREFIX = "6726825d"

#: Pool3 is pytorch-fid's output block 3 (the final average pool).
POOL3_BLOCK = 3

#: Bumped when preprocessing changes, so cached real features are recomputed.
PREPROCESSING_VERSION = "uint8-quantised/v1"

REAL_FEATURES_FORMAT = "mmjsd.prd_real_features"


def quantise(images: torch.Tensor) -> torch.Tensor:
    """clamp to [0, 1], then round to the 256 uint8 levels: what ``save_image``
    + PNG + /255 gives (docs/metrics.md §2.3)."""
    return torch.floor(images.clamp(0.0, 1.0) * 255.0 + 0.5) / 255.0


@dataclass
class FeatureExtractor:
    """Features ``[N, d]`` (float32, CPU) of quantised images of each image modality.

    ``identity`` is the ``extractor`` block of PRD metric files: name, sha256 (the weights
    file; for classifier features a digest of every modality's ``model.pt`` hash), seed,
    and per-modality details.
    """

    name: str
    identity: dict[str, Any]
    embed: dict[str, Callable[[torch.Tensor], torch.Tensor]]
    batch_size: int

    def __call__(self, modality: str, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            features = [self.embed[modality](quantise(chunk)).float().cpu() for chunk in images.split(self.batch_size)]
        return torch.cat(features)


# ------------------------------------------------------------------- classifier features
def classifier_extractor(
    classifiers_dir: Path, dataset: str, device: torch.device, batch_size: int
) -> FeatureExtractor:
    """Penultimate layer of ``<classifiers_dir>/<m>-features`` for every image modality (eval mode)."""
    embed, details = {}, {}
    for m in registry.dataset(dataset).feature_modalities:
        directory = Path(classifiers_dir) / f"{m}-features"
        classifier = load_classifier(directory, device, dataset=dataset, modality=m, role="features")
        embed[m] = functools.partial(penultimate_features, classifier)
        details[m] = {
            "sha256": sha256_file(directory / MODEL_FILE),
            "seed": classifier.record["seed"],
            "dim": classifier.feature_dim,
        }
    dims = sorted({d["dim"] for d in details.values()})
    seeds = sorted({d["seed"] for d in details.values()})
    name = "clf_penult_" + "_".join(map(str, dims))
    digest = hashlib.sha256("".join(f"{m}:{d['sha256']}\n" for m, d in details.items()).encode()).hexdigest()
    identity = {"name": name, "sha256": digest, "seed": seeds[0] if len(seeds) == 1 else seeds, "classifiers": details}
    return FeatureExtractor(name, identity, embed, batch_size)


# -------------------------------------------------------------------- Inception features
def build_inception(weights: Path, device: torch.device) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (pool3 only) with the state dict of ``weights``, in eval mode.

    pytorch-fid builds the FID network and fetches its weights through
    ``pytorch_fid.inception.load_state_dict_from_url``; that call is answered with the
    file's state dict, so nothing is downloaded (docs/metrics.md §2.3, loading option b).
    """
    try:
        from pytorch_fid import inception as fid_inception
    except ImportError as err:
        raise UserError(
            f"evaluation.prd.inception_weights is set ({weights}) but pytorch-fid, a dependency of this "
            "project, is not installed: run `pip install pytorch-fid`, or set inception_weights to null to use "
            "the classifier features"
        ) from err
    try:
        state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file is a user-fixable problem, whatever torch raises
        raise UserError(
            f"Inception weights file {weights} is unreadable ({err}); check evaluation.prd.inception_weights"
        ) from err
    requested = []

    def from_file(*args, **kwargs):
        requested.append(args)
        return state_dict

    with mock.patch.object(fid_inception, "load_state_dict_from_url", from_file):
        network = fid_inception.InceptionV3([POOL3_BLOCK], resize_input=True, normalize_input=True)
    if not requested:
        raise UserError(
            "this pytorch-fid version does not load its weights through load_state_dict_from_url, so the file "
            f"{weights} could not be used; install pytorch-fid 0.3"
        )
    return network.to(device).eval()


def inception_extractor(weights: str | Path, dataset: str, device: torch.device, batch_size: int) -> FeatureExtractor:
    """Inception-v3 pool3 features of every image modality of ``dataset``; see the module docstring."""
    weights = Path(weights)
    if not weights.is_file():
        raise UserError(f"Inception weights file {weights} does not exist; check evaluation.prd.inception_weights")
    network = build_inception(weights, device)
    digest = sha256_file(weights)
    name = inception_extractor_name(digest)
    if name != INCEPTION_EXTRACTOR:
        message = (
            f"Inception weights {weights} have sha256 {digest[:16]}..., not the FID weights "
            f"pt_inception-2015-12-05-{INCEPTION_SHA256_PREFIX}.pth; the features are named {name} and "
            "PRD values will not be set beside the paper's"
        )
        warnings.warn(message, stacklevel=2)

    def embed(images: torch.Tensor) -> torch.Tensor:
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        return network(rgb.to(device))[0].flatten(1)

    identity = {"name": name, "sha256": digest, "seed": None}
    return FeatureExtractor(
        name, identity, dict.fromkeys(registry.dataset(dataset).feature_modalities, embed), batch_size
    )


def inception_extractor_name(weights_sha256: str) -> str:
    """``inception_pool3_2048`` for the FID weights; other weights get their digest in the name.

    The name is part of the metric's name, so the tables never average PRD values from two
    weights files and set only the FID weights' values beside the paper's Table 3.
    """
    if weights_sha256.startswith(INCEPTION_SHA256_PREFIX):
        return INCEPTION_EXTRACTOR
    return f"{INCEPTION_EXTRACTOR}_sha256-{weights_sha256[:12]}"


def build_extractor(
    inception_weights: str | None, classifiers_dir: Path | None, dataset: str, device: torch.device, batch_size: int
) -> FeatureExtractor:
    """Inception when ``evaluation.prd.inception_weights`` is set, else the
    feature classifiers of ``classifiers_dir``."""
    if inception_weights is not None:
        return inception_extractor(inception_weights, dataset, device, batch_size)
    purpose = "PRD with classifier features (evaluation.prd.inception_weights is null)"
    return classifier_extractor(classifiers_directory(classifiers_dir, dataset, purpose), dataset, device, batch_size)


# ------------------------------------------------------------------- real-image features
def prd_rows_seed(seed: int) -> int:
    """The seed of the PRD row draw, derived from the evaluation seed."""
    return derived_seed(seed, "prd/test_rows")


def prd_rows(num_rows: int, n_samples: int, seed: int) -> np.ndarray:
    """The test rows PRD uses (:func:`~mmjsd.evaluation.runs.select_rows` with :func:`prd_rows_seed`): the whole
    split in order when ``n_samples`` covers it, else the first ``n_samples`` of a seeded permutation.

    The same rows condition the generated sets and give the real images (docs/design.md §5).
    """
    return select_rows(num_rows, n_samples, prd_rows_seed(seed), "evaluation.prd.n_samples").numpy()


def real_features_key(dataset: str, data_sha256: str, rows: np.ndarray, extractor: FeatureExtractor) -> dict[str, Any]:
    """What a real-feature file must match: dataset file, split, rows, extractor (name and hash), preprocessing."""
    return {
        "format": REAL_FEATURES_FORMAT,
        "dataset": dataset,
        "split": "test",
        "data_sha256": data_sha256,
        "n_rows": len(rows),
        "rows_sha256": hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest(),
        "extractor": extractor.name,
        "extractor_sha256": extractor.identity["sha256"],
        "preprocessing": PREPROCESSING_VERSION,
    }


def compute_real_features(
    extractor: FeatureExtractor, split: Split, rows: np.ndarray, batch_size: int
) -> dict[str, np.ndarray]:
    """Features of the real test images of every image modality at ``rows``, ``{m: [N, d]}`` float32."""
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in extractor.embed}
    for index in torch.from_numpy(rows).split(batch_size):
        batch, _ = split.batch(index)
        for m in parts:
            parts[m].append(extractor(m, batch[m]))
    return {m: torch.cat(p).numpy() for m, p in parts.items()}


def save_real_features(path: Path, key: dict[str, Any], features: dict[str, np.ndarray]) -> None:
    """Write the ``.npz`` atomically: ``meta`` (the key as JSON) and ``features_<m>`` per image modality."""
    arrays = {f"features_{m}": f for m, f in features.items()}
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(key, sort_keys=True)), **arrays)


def load_real_features(path: Path, key: dict[str, Any]) -> dict[str, np.ndarray]:
    """The features of a file written by :func:`save_real_features`; a file for other data, rows or extractor raises."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"real-feature file {path} does not exist; compute it with python -m mmjsd.prd_reference")
    try:
        with np.load(path) as archive:
            stored = json.loads(str(archive["meta"]))
            features = {
                name.removeprefix("features_"): archive[name] for name in archive.files if name.startswith("features_")
            }
    except Exception as err:  # a truncated or foreign file is a user-fixable problem, whatever numpy raises
        raise UserError(
            f"real-feature file {path} is unreadable ({err}); delete it and rerun mmjsd.prd_reference"
        ) from err
    differing = [name for name in key if stored.get(name) != key[name]]
    if differing:
        details = "; ".join(f"{name}: file {stored.get(name)!r}, needed {key[name]!r}" for name in differing)
        raise UserError(
            f"real-feature file {path} does not match this evaluation ({details}); rerun python -m mmjsd.prd_reference "
            "with the same --data, --classifiers and --params"
        )
    return features
