"""Builders the test modules share: small datasets, training configs, model math written out independently,
results trees as the workflow lays them out, and a copy of the project for the workflow tests.

Test modules import these from here (``from helpers import ...``), never from one another; fixtures built on
them live in ``conftest.py``. ``tests/test_layout.py`` checks that no test module imports another.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import torch
from torch.distributions import Normal

from mmjsd import build_dataset
from mmjsd.bench.__main__ import main as bench_main
from mmjsd.core.config import TrainConfig
from mmjsd.models import build_model
from mmjsd.models.networks import data_shapes
from mmjsd.tables import specs
from mmjsd.train import RunSpec, write_outputs

ROOT = Path(__file__).resolve().parents[1]
#: The paper configuration with the demo preset over it, as the benchmark tests read it.
DEMO_CONFIG = [str(ROOT / "config.yaml"), str(ROOT / "workflow" / "presets" / "demo.yaml")]

MST = "mnist_svhn_text"
MST_MODALITIES = ("mnist", "svhn", "text")

# ------------------------------------------------------------------ datasets and runs
MST_PARAMS = {"seed": 0, "pairs_per_image": 3, "max_per_class": 10000, "text_length": 8}
CELEBA_PARAMS = {"seed": 0, "text_length": 256, "train_partitions": [0], "test_partitions": [1]}


def build(dataset: str, manifests: dict[str, Path], params: dict, output: Path, workers: int = 1) -> Path:
    names = ("mnist", "svhn") if dataset == "mnist_svhn_text" else ("celeba",)
    build_dataset.build(dataset, [manifests[n] for n in names], params, output, workers)
    return output


def save_untrained_run(
    run_dir: Path, dataset: str, variant: str, cfg: TrainConfig, data: Path, protocol: str = "corrected"
) -> Path:
    """An untrained model (seed 0) written to ``run_dir`` as ``mmjsd.train`` writes a
    finished run of ``data`` under ``protocol``."""
    torch.manual_seed(0)
    model = build_model(dataset, variant, cfg)
    spec = RunSpec(dataset, variant, 0, cfg, data, "0" * 64, protocol)
    write_outputs(run_dir, spec, model, [{"epoch": 1, "loss": 0.0}], torch.device("cpu"), 0.0)
    return run_dir


def copy_project(dest: Path) -> Path:
    """Copy the working tree (tracked and untracked-not-ignored files) to ``dest``, without results/ and .snakemake/."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        listed = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):
        listed = None
    if listed is None:  # not a git checkout: copy everything but outputs and environments
        shutil.copytree(
            ROOT,
            dest,
            dirs_exist_ok=True,
            symlinks=True,
            ignore=shutil.ignore_patterns(
                "results", ".snakemake", ".git", ".venv", ".slurm", "__pycache__", ".pytest_cache"
            ),
        )
        return dest
    for rel in filter(None, listed):
        if rel.startswith(("results/", ".snakemake/")):
            continue
        src = ROOT / rel
        if not src.exists():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    return dest


def train_cli_args(config: TrainConfig, data: Path, out_dir: Path, checkpoint: Path) -> list[str]:
    """Arguments of ``python -m mmjsd.train`` for mmjsd seed 0 on the MST file ``data``, as the train rule
    passes them (corrected protocol, CPU, one thread: the same arithmetic as the rule)."""
    return [
        *("--dataset", "mnist_svhn_text", "--variant", "mmjsd", "--seed", "0", "--protocol", "corrected"),
        *("--hparams", json.dumps(dataclasses.asdict(config)), "--data", str(data)),
        *("--out-dir", str(out_dir), "--checkpoint", str(checkpoint)),
        *("--device", "cpu", "--threads", "1", "--no-progress"),
    ]


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV file."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def run_bench(benchmark: str, data: Path, csv_path: Path, *options: str) -> tuple[list[str], list[dict]]:
    """``python -m mmjsd.bench <benchmark>`` on ``data`` with the demo config and ``options``: its CSV's header
    and rows."""
    bench_main([benchmark, "--data", str(data), "--config", *DEMO_CONFIG, *options, "--csv", str(csv_path)])
    return read_csv(csv_path)


# ------------------------------------------------------------------ training configs and model math
#: Training settings both datasets' test configs share: one epoch at the paper's lr, batch size and beta, no speed
#: switch that changes the arithmetic, and no departure switched (the corrected computation).
COMMON_TRAINING = {
    "epochs": 1,
    "lr": 5.0e-4,
    "batch_size": 256,
    "beta": 2.5,
    "beta_content": 1.0,
    "log_every": 50,
    "amp_bf16": False,
    "compile": False,
    "channels_last": True,
    "grad_clip_norm": None,
    "objective": {},
    "departures": {},
}


def mst_config(ms: bool, **overrides) -> TrainConfig:
    """MNIST-SVHN-Text at the paper's values, with (``ms``: 16 shared + 4 style per modality) or without subspaces."""
    return TrainConfig(
        **{
            **COMMON_TRAINING,
            "shared_dim": 16 if ms else 20,
            "style_dim": dict.fromkeys(MST_MODALITIES, 4 if ms else 0),
            "beta_style": 3.0,
            "style_weights": {"mnist": 1.0, "svhn": 1.0, "text": 5.0},
            "rec_weights": {"mnist": 3072 / 784, "svhn": 1.0, "text": 384.0},
            "div_weights": {"prior": 0.25, "mnist": 0.25, "svhn": 0.25, "text": 0.25},
            "redraw_text": True,
            **overrides,
        }
    )


def celeba_config(**overrides) -> TrainConfig:
    """CelebA at the paper's values, with subspaces (32 shared + 32 style per modality)."""
    return TrainConfig(
        **{
            **COMMON_TRAINING,
            "shared_dim": 32,
            "style_dim": {"img": 32, "text": 32},
            "beta_style": 2.0,
            "style_weights": {"img": 1.0, "text": 5.0},
            "rec_weights": {"img": 1.0, "text": 16.0},
            "div_weights": {"prior": 0.3, "img": 0.35, "text": 0.35},
            "redraw_text": False,
            **overrides,
        }
    )


def random_batch(dataset: str, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Pixels uniform in [0, 1], text one-hot over random characters."""
    batch = {}
    for m, shape in data_shapes(dataset).items():
        if m == "text":
            characters = torch.randint(0, shape[1], (batch_size, shape[0]), generator=generator)
            batch[m] = torch.nn.functional.one_hot(characters, shape[1]).float()
        else:
            batch[m] = torch.rand(batch_size, *shape, generator=generator)
    return batch


def normal(mu: torch.Tensor, logvar: torch.Tensor) -> Normal:
    return Normal(mu, torch.exp(0.5 * logvar))


def product_of_normals(
    mus: list[torch.Tensor], logvars: list[torch.Tensor], alphas: list[float] | None = None
) -> Normal:
    """Closed form of the (alpha-weighted) product of diagonal Gaussians: precisions add."""
    alphas = alphas or [1.0] * len(mus)
    precision = sum(a / torch.exp(lv) for a, lv in zip(alphas, logvars, strict=True))
    mean = sum(a * mu / torch.exp(lv) for a, mu, lv in zip(alphas, mus, logvars, strict=True)) / precision
    return Normal(mean, precision.rsqrt())


#: Every product of experts of both codes adds this to each expert's variance (docs/reference-code.md §3.1).
POE_VARIANCE_EPS = 1e-8


def poe_logvar(logvar: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.exp(logvar) + POE_VARIANCE_EPS)


def poe_without_prior(encodings, subset) -> Normal:
    return product_of_normals(
        [encodings[m].content_mu for m in subset], [poe_logvar(encodings[m].content_logvar) for m in subset]
    )


def float64_forward(variant: str, cfg: TrainConfig, batch_size: int) -> tuple:
    """``(model, batch, loss, terms)`` of an MNIST-SVHN-Text model in float64: weights from seed 0, a random batch
    (generator seed 1), the loss after seeding the global RNG with 5. Seed it with 5 again to replay the draws."""
    torch.manual_seed(0)
    model = build_model(MST, variant, cfg).double()
    batch = {m: x.double() for m, x in random_batch(MST, batch_size, torch.Generator().manual_seed(1)).items()}
    torch.manual_seed(5)
    loss, terms = model.forward_loss(batch)
    return model, batch, loss, terms


def encodings_and_style_samples(
    model, batch: dict[str, torch.Tensor], ms: bool
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Each modality's encoding and, with modality-specific subspaces, one style sample per modality in modality
    order: the objectives' first draws from the global RNG, replayed."""
    encodings = {m: model.encoders[m](batch[m]) for m in model.modalities}
    styles = {}
    if ms:
        for m in model.modalities:
            style = normal(encodings[m].style_mu, encodings[m].style_logvar)
            styles[m] = style.loc + style.scale * torch.randn_like(style.loc)
    return encodings, styles


def negative_log_likelihood(
    modality: str, params: torch.Tensor, target: torch.Tensor, official: bool = False
) -> torch.Tensor:
    """Per row: Laplace(loc, 0.75) for images, a categorical over logits for text
    (docs/reference-code.md §2.5, docs/design.md §4).

    ``official``: the text categorical of the official code, OneHotCategorical(probs=log_softmax(output)).
    """
    if modality == "text" and official:
        return -torch.distributions.OneHotCategorical(probs=torch.log_softmax(params, -1)).log_prob(target).sum(1)
    if modality == "text":
        return -(target * torch.log_softmax(params, -1)).sum((1, 2))
    return -torch.distributions.Laplace(params, 0.75).log_prob(target).flatten(1).sum(1)


def assert_every_network_gets_gradient(model) -> None:
    for m in model.modalities:
        encoder = model.encoders[m]
        heads = ["body", "content_mu", "content_logvar"]
        if model.style_dims[m] > 0:
            heads += ["style_mu", "style_logvar"]
        for head in heads:
            grads = [p.grad for p in getattr(encoder, head).parameters()]
            assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), f"{m} encoder {head}"
        grads = [p.grad for p in model.decoders[m].parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), f"{m} decoder"


# ------------------------------------------------------------------ results trees
CLF_EXTRACTOR = "clf_penult_128"

#: Variant -> offset added to every value, so the best row is known: mmjsd-ms > mmjsd > mopoe > mvae.
VARIANT_OFFSETS = {"mvae": 0.0, "mmjsd": 0.10, "mopoe": 0.05, "mmjsd-ms": 0.20}

#: The one cell whose per-seed values the aggregation tests check by hand.
PROBE_MMJSD_MNIST = {0: 0.91, 1: 0.95, 2: 0.96}
#: The mean attribute prevalence the CelebA metric files record (the chance level of a mean AP).
CELEBA_PREVALENCE = 0.213


def write_json(path: Path, document: dict) -> Path:
    """Write ``document`` as JSON, creating parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def run_dir(root: Path, dataset: str, variant: str, seed: int, protocol: str = "corrected") -> Path:
    """``root/runs/<protocol>/<dataset>/<variant>/seed<k>``, as the workflow lays runs out."""
    return root / "runs" / protocol / dataset / variant / f"seed{seed}"


def write_metric_file(
    root: Path,
    dataset: str,
    variant: str,
    seed: int,
    metric: str,
    values: dict,
    protocol: dict,
    extractor=None,
    protocol_name: str = "corrected",
    alternatives: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """One ``runs/<protocol>/<dataset>/<variant>/seed<k>/metrics/<metric>.json`` as the evaluation writes it."""
    document = {
        "metric": metric,
        "metric_name": f"prd_ap_mmjsd[{extractor}]" if extractor else metric,
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "values": values,
        "protocol": {**protocol, "name": protocol_name},
        "extra": extra or {},
        "alternatives": alternatives or {},
        "versions": {"mmjsd": "0.1.0"},
        "seeds": {"evaluation": 0},
    }
    if extractor:
        document["extractor"] = {"name": extractor, "sha256": "0" * 64, "seed": 200}
    return write_json(run_dir(root, dataset, variant, seed, protocol_name) / "metrics" / f"{metric}.json", document)


def spec_values(spec: specs.TableSpec, metric: str, offset: float, seed: int) -> dict[str, float]:
    """Deterministic values for every key of ``metric`` in ``spec``: offset + 0.01 seed + 0.001 column."""
    scale = 100.0 if metric == "likelihood" else 1.0
    base = -1900.0 if metric == "likelihood" else 0.5
    return {
        column.key: base + scale * (offset + 0.01 * seed + 0.001 * index)
        for index, column in enumerate(spec.columns)
        if column.metric == metric
    }


PROTOCOLS = {
    "latent_probe": {"n_train": 500, "draws": 5, "split": "test"},
    "coherence": {"classifier_mode": "eval", "n_test": 2000, "split": "test"},
    "prd": {"n_samples": 1000, "num_clusters": 20, "split": "test"},
    "likelihood": {"num_importance_samples": 12, "n_test": 500, "split": "test"},
}


def no_shift(metric: str, seed: int) -> float:
    return 0.0


def write_demo_results(
    root: Path,
    extractor: str = CLF_EXTRACTOR,
    protocol_name: str = "corrected",
    shift: Callable[[str, int], float] = no_shift,
) -> Path:
    """A results tree of ``protocol_name``'s runs with known gaps; returns ``root``.

    MNIST-SVHN-Text: mvae, mmjsd, mopoe, mmjsd-ms with seeds 0-2, except: mopoe has no
    seed 2 at all, mmjsd-ms has no PRD file for seed 1, and mvae's seed-0 likelihood file
    lacks ``joint|text``. mmjsd's latent probe on ``mnist`` is :data:`PROBE_MMJSD_MNIST`.
    CelebA: mvae-ms and mmjsd-ms with seeds 0-1. Plus classifier metrics, run configs and
    training logs. ``shift(metric, seed)`` is added to every value of that metric and seed.
    """
    for variant, offset in VARIANT_OFFSETS.items():
        for seed in (0, 1, 2):
            if variant == "mopoe" and seed == 2:
                continue
            write_run_config(root, MST, variant, seed, protocol_name)
            for spec in specs.TABLES[:4]:
                metric = spec.metrics[0]
                if variant == "mmjsd-ms" and seed == 1 and metric == "prd":
                    continue
                values = spec_values(spec, metric, offset, seed)
                if variant == "mmjsd" and metric == "latent_probe":
                    values["mnist"] = PROBE_MMJSD_MNIST[seed]
                if variant == "mvae" and seed == 0 and metric == "likelihood":
                    del values["joint|text"]
                values = {key: value + shift(metric, seed) for key, value in values.items()}
                write_metric_file(
                    root,
                    MST,
                    variant,
                    seed,
                    metric,
                    values,
                    PROTOCOLS[metric],
                    extractor if metric == "prd" else None,
                    protocol_name,
                )
    celeba = specs.TABLES_BY_NAME["table5_celeba"]
    for variant in ("mvae-ms", "mmjsd-ms"):
        for seed in (0, 1):
            write_run_config(root, "celeba", variant, seed, protocol_name)
            offset = 0.1 if variant == "mmjsd-ms" else 0.0
            for metric in celeba.metrics:
                values = {
                    key: value + shift(metric, seed) for key, value in spec_values(celeba, metric, offset, seed).items()
                }
                extra = {"attribute_prevalence": CELEBA_PREVALENCE}
                write_metric_file(
                    root, "celeba", variant, seed, metric, values, PROTOCOLS[metric], None, protocol_name, extra=extra
                )
    write_classifier_metrics(root)
    return root


def write_run_config(root: Path, dataset: str, variant: str, seed: int, protocol_name: str = "corrected") -> Path:
    """A run's as-run ``config.json`` with the hyper-parameters nested as the trainer may write them."""
    document = {
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "protocol": protocol_name,
        "device": "cpu",
        "train_config": {
            "epochs": 3,
            "lr": 0.0005,
            "batch_size": 64,
            "beta": 2.5,
            "shared_dim": 20,
            "beta_style": 30.0 if variant.endswith("-ms") else 3.0,
        },
        "wall_time_s": 12.5,
    }
    return write_json(run_dir(root, dataset, variant, seed, protocol_name) / "config.json", document)


CLASSIFIER_SCORES = {
    (MST, "mnist"): ("test_accuracy", 0.987),
    (MST, "svhn"): ("test_accuracy", 0.912),
    (MST, "text"): ("test_accuracy", 1.0),
    ("celeba", "img"): ("test_mean_ap", 0.654),
    ("celeba", "text"): ("test_mean_ap", 0.701),
}


def write_classifier_metrics(root: Path) -> None:
    """``classifiers/<dataset>/<modality>/metrics.json`` for every entry of :data:`CLASSIFIER_SCORES`."""
    for (dataset, modality), (score_key, score) in CLASSIFIER_SCORES.items():
        document = {
            "dataset": dataset,
            "modality": modality,
            "role": "coherence",
            "seed": 100,
            score_key: score,
            "epochs": 2,
            "n_train": 1000,
            "n_test": 500,
        }
        write_json(root / "classifiers" / dataset / modality / "metrics.json", document)


def write_train_log(root: Path, dataset: str, variant: str, seed: int, epochs: int = 5) -> Path:
    """A ``train_log.csv`` of a corrected run with a decreasing loss and two terms."""
    path = run_dir(root, dataset, variant, seed) / "train_log.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,steps,loss,rec/mnist,kl/content,wall_time_s"]
    for epoch in range(1, epochs + 1):
        rec, kl = 100.0 / epoch + seed, 10.0 + epoch
        lines.append(f"{epoch},{epoch * 10},{rec + kl},{rec},{kl},{epoch * 1.5}")
    path.write_text("\n".join(lines) + "\n")
    return path


def reference_shift(metric: str, seed: int) -> float:
    """What the reference-exact files subtract: a clear effect on the probe, seed noise on coherence."""
    return {"latent_probe": -(0.02 + 0.001 * seed), "coherence": -0.01 * (seed - 1)}.get(metric, -0.5)
