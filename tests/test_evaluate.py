"""The evaluation step: metric files of untrained runs on the tiny synthetic datasets of conftest.py.

Models have seeded random weights and are saved with ``mmjsd.train.write_outputs``;
classifiers are untrained (seeded) and saved with ``save_classifier``. The numbers mean
nothing; what is checked is the contract (docs/file-formats.md), determinism, which
data feed each value (PRD pairs, probe subsets, CelebA AP orientation: generation or
encodings are replaced so that only the right wiring reaches a known value), the
all-agree random coherence, the single-sample ELBO identity of the likelihood estimator,
the K-divisibility guard, the real-feature cache and the error messages.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Laplace, Normal

from helpers import save_untrained_run
from mmjsd import evaluate, prd_reference
from mmjsd.classifiers.loading import save_classifier
from mmjsd.classifiers.networks import build_classifier
from mmjsd.core import registry
from mmjsd.core.cli import main_guard
from mmjsd.core.config import load_config, metric_job_from_dict, metric_job_params
from mmjsd.core.departures import corrected, reference_exact
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file
from mmjsd.core.runtime import last_batch_rows
from mmjsd.data.readers import load_split
from mmjsd.evaluation import coherence_eval, features, generation
from mmjsd.evaluation.likelihood import importance_sampled_log_likelihood
from mmjsd.evaluation.likelihood_eval import evaluate as evaluate_likelihood
from mmjsd.evaluation.likelihood_eval import subset_log_weights
from mmjsd.evaluation.prd import prd_ap_mmjsd
from mmjsd.evaluation.prd_eval import prd_curves
from mmjsd.evaluation.runs import EvaluationInputs, Split, derived_seed, encode_rows, load_run, select_rows
from mmjsd.models.distributions import subset_key
from mmjsd.models.likelihoods import LAPLACE_SCALE
from mmjsd.reporting.metrics_io import load_metric_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
MST = "mnist_svhn_text"
MST_SUBSETS = ["mnist", "svhn", "text", "mnist+svhn", "mnist+text", "svhn+text", "mnist+svhn+text"]

PARAMS = {
    "seed": 0,
    "batch_size": 64,
    "latent_probe": {"n_train": 50, "draws": 2, "max_iter": 200},
    "coherence": {"n_test": None},
    "prd": {
        "n_samples": 64,
        "num_clusters": 5,
        "num_angles": 101,
        "num_runs": 2,
        "kmeans_batch_size": 100,
        "inception_weights": None,
    },
    "likelihood": {"num_importance_samples": 6, "n_test": 40, "batch_size": 16},
}

TOP_LEVEL_KEYS = {
    "metric", "metric_name", "dataset", "variant", "seed", "values", "std", "protocol", "extra",
    "alternatives", "versions", "seeds", "run", "device",
}  # fmt: skip

#: The evaluation departures each MST metric file reports flipped alone (docs/departures.md).
MST_ALTERNATIVES = {
    "latent_probe": {"probe_protocol"},
    "coherence": {"classifier_mode", "generated_image_range", "random_coherence_formula"},
    "prd": set(),
    "likelihood": {"importance_sampling_grouping", "mixture_proposal_density"},
}

MST_KEYS = {
    "latent_probe": set(MST_SUBSETS),
    "coherence": {"random"}
    | {f"{s}->{m}" for s in MST_SUBSETS for m in ("mnist", "svhn", "text") if m not in s.split("+")},
    "prd": {f"{s}->{m}" for s in ["random", *MST_SUBSETS] for m in ("mnist", "svhn") if m not in s.split("+")},
    "likelihood": {f"joint|{s}" for s in MST_SUBSETS},
}
CELEBA_KEYS = {
    "latent_probe": {"img", "text", "img+text"},
    "coherence": {"img->text", "text->img"},
    "prd": {"random->img", "text->img"},
    "likelihood": {"joint|img", "joint|text", "joint|img+text"},
}


def params_with(**overrides) -> dict:
    """PARAMS with ``section={key: value}`` entries replaced (``seed=1`` for top-level keys)."""
    params = copy.deepcopy(PARAMS)
    for key, value in overrides.items():
        if isinstance(value, dict):
            params[key].update(value)
        else:
            params[key] = value
    return params


def save_run(root: Path, dataset: str, variant: str) -> Path:
    """An untrained run of ``variant`` with the configured dimensions, at ``root/<dataset>/<variant>/seed0``.

    Its recorded training batch is 16, a batch the tiny training splits hold (the official probe
    protocol refits on the run's last training batch).
    """
    config = dataclasses.replace(load_config(REPO / "config.yaml").train_config(dataset, variant), batch_size=16)
    return save_untrained_run(root / dataset / variant / "seed0", dataset, variant, config, Path(f"{dataset}.h5"))


def save_classifiers(
    root: Path, dataset: str, modalities: tuple[str, ...], constant: dict[str, int] | None = None
) -> Path:
    """Untrained coherence classifiers of ``modalities`` and feature classifiers of the image modalities.

    With ``constant``, the coherence classifier of m predicts ``constant[m]`` for every input
    (zero head weights, a one-hot head bias).
    """
    torch.manual_seed(1)
    for m in modalities:
        classifier = build_classifier(dataset, m)
        if constant is not None:
            with torch.no_grad():
                classifier.head.weight.zero_()
                classifier.head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(constant[m]), 10).float())
        save_classifier(root / m, classifier, dataset, m, "coherence", 1)
    for m in registry.dataset(dataset).feature_modalities:
        save_classifier(root / f"{m}-features", build_classifier(dataset, m), dataset, m, "features", 2)
    return root


@pytest.fixture(scope="module")
def mst_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {variant: save_run(root, MST, variant) for variant in ("mmjsd-ms", "mvae-ms")}


@pytest.fixture(scope="module")
def mst_classifiers(tmp_path_factory) -> Path:
    return save_classifiers(tmp_path_factory.mktemp("classifiers"), MST, ("mnist", "svhn", "text"))


def cli_args(
    metric: str,
    run_dir: Path,
    data: Path,
    out: Path,
    params: dict = PARAMS,
    classifiers: Path | None = None,
    switches: dict | None = None,
) -> list[str]:
    dataset = run_dir.parents[1].name  # save_run's layout: <root>/<dataset>/<variant>/seed0
    job = metric_job_params(params, metric, dataset, switches or corrected())
    args = ["--metric", metric, "--run-dir", str(run_dir), "--data", str(data), "--params", json.dumps(job)]
    args += ["--out", str(out), "--device", "cpu", "--threads", "1", "--no-progress"]
    return args + (["--classifiers", str(classifiers)] if classifiers is not None else [])


def run_metric(
    metric: str,
    run_dir: Path,
    data: Path,
    out: Path,
    params: dict = PARAMS,
    classifiers: Path | None = None,
    switches: dict | None = None,
) -> dict:
    evaluate.main(cli_args(metric, run_dir, data, out, params, classifiers, switches))
    return json.loads(out.read_text())


def generate_the_conditioning_rows(monkeypatch, dataset: str, data: Path) -> None:
    """Replace generation by a perfect one: every source generates, for each encoded row, that row's own test data.

    ``generation.generate_means`` (what coherence and PRD decode through) returns each
    modality's real data of the rows the evaluator encoded, found as the test row with the
    nearest content mean of that modality (the row itself, or one with the same data: MST
    pairs repeat images). A metric that pairs generated m with the real m (or the labels)
    of the same rows then reaches its ceiling, and any other pairing falls short.
    """
    split = load_split(dataset, data, "test")
    every_row: dict = {}  # the whole split's encodings, computed on the first call

    def real_data_of_the_encoded_rows(model, encodings, sources, modalities, num_rows, generator):
        if not every_row:
            every_row.update(encode_rows(model, split, torch.arange(len(split)), 64).encodings)
        generated = {}
        for m in modalities:
            rows = torch.cdist(encodings[m].content_mu, every_row[m].content_mu).argmin(1)
            generated[m] = torch.cat([split.batch(rows)[0][m]] * len(sources))
        return generated

    monkeypatch.setattr(generation, "generate_means", real_data_of_the_encoded_rows)


# ------------------------------------------------------------------------ contract
@pytest.mark.parametrize("metric", ["latent_probe", "coherence", "prd", "likelihood"])
def test_metric_file_has_the_documented_keys_and_is_deterministic(metric, mst_runs, mst_h5, mst_classifiers, tmp_path):
    first = run_metric(metric, mst_runs["mmjsd-ms"], mst_h5, tmp_path / "a.json", classifiers=mst_classifiers)
    run_metric(metric, mst_runs["mmjsd-ms"], mst_h5, tmp_path / "b.json", classifiers=mst_classifiers)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()

    assert set(first) >= TOP_LEVEL_KEYS and first["metric"] == metric
    assert (first["dataset"], first["variant"], first["seed"]) == (MST, "mmjsd-ms", 0)
    assert set(first["values"]) == MST_KEYS[metric]
    assert {"torch", "numpy", "sklearn", "mmjsd"} <= set(first["versions"])
    assert first["seeds"]["evaluation"] == 0 and first["protocol"]["split"] == "test"
    assert set(first["alternatives"]) == MST_ALTERNATIVES[metric]
    assert all(set(alternative) == MST_KEYS[metric] for alternative in first["alternatives"].values())
    # every switch behind the numbers: the run's training departures and the job's evaluation departures
    assert first["protocol"]["departures"] == {
        "text_likelihood": "corrected",
        "dynamic_prior_epsilon": "corrected",
        **dict.fromkeys(MST_ALTERNATIVES[metric], "corrected"),
    }
    assert first["protocol"]["name"] == "corrected"  # the run's protocol, from its model.pt
    record = load_metric_file(tmp_path / "a.json")  # what the table step reads
    assert record.values == first["values"]
    values = np.array(list(first["values"].values()))
    assert np.all(np.isfinite(values))
    if metric == "likelihood":
        assert first["protocol"]["n_test"] == 40 and first["protocol"]["num_importance_samples"] == 6
        assert {f"{m}|{s}" for s in MST_SUBSETS for m in ("mnist", "svhn", "text")} <= set(first["extra"])
        assert set(first["std"]) == MST_KEYS[metric] and values.max() < 0
    elif metric == "prd":
        assert np.all((values >= 0) & (values <= 0.7205))
        assert first["extractor"]["name"] == "clf_penult_128" and first["metric_name"] == "prd_ap_mmjsd[clf_penult_128]"
        assert first["extractor"]["seed"] == 2 and len(first["extractor"]["sha256"]) == 64
        assert first["protocol"]["n_samples"] == 64 and first["protocol"]["classifier_mode"] == "eval"
        assert first["protocol"]["test_rows"] == "seeded_subset"
        assert {f"F_8:{key}" for key in MST_KEYS["prd"]} <= set(first["extra"])
    else:
        assert np.all((values >= 0) & (values <= 1))
    if metric == "coherence":
        assert first["protocol"]["classifier_mode"] == "eval" and first["protocol"]["n_test"] == 213
        self_reconstruction = {f"{s}->{m}" for s in MST_SUBSETS for m in s.split("+")}
        assert self_reconstruction == set(first["extra"])
    if metric == "latent_probe":
        assert set(first["std"]) == MST_KEYS[metric]
        assert first["protocol"]["n_train"] == 50 and first["protocol"]["training_pool"] == 100


def test_probe_on_a_training_split_smaller_than_n_train_fits_every_draw_on_all_of_it(mst_runs, mst_h5, tmp_path):
    """One n_train serves every dataset: a smaller training split is used whole, and the protocol says so."""
    train_rows = len(load_split(MST, mst_h5, "train"))
    params = params_with(latent_probe={"n_train": train_rows + 1000, "draws": 2})
    document = run_metric("latent_probe", mst_runs["mmjsd-ms"], mst_h5, tmp_path / "probe.json", params)
    assert document["protocol"]["n_train"] == document["protocol"]["training_pool"] == train_rows
    # both draws fit on the same rows, so they agree exactly
    assert all(spread == 0.0 for spread in document["std"].values())


def test_cli_help_describes_every_metric(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert all(metric in help_text for metric in ("latent_probe", "coherence", "prd", "likelihood", "--real-features"))


# -------------------------------------------------------------------- latent probe
@pytest.mark.parametrize("carrier", ["mnist", "svhn", "text"])
def test_latent_probe_of_each_subset_reads_that_subsets_posterior_means(
    carrier, monkeypatch, mst_runs, mst_h5, tmp_path
):
    """The value under "S" must come from S's posterior means: the keys name subsets, and a mismatch would not crash.

    The encoder outputs are replaced so that only ``carrier``'s content mean holds the digit
    (10 x its one-hot; the other modalities' are noise): the mixture mean of a subset with
    ``carrier`` predicts the digit, one without it does not. Over the three carriers the
    pattern of high scores names every subset, so any permutation of keys fails.
    """
    noise = torch.Generator().manual_seed(0)

    def label_in_one_modality(model, split, rows, batch_size):
        encoded = encode_rows(model, split, rows, batch_size)
        for m, encoding in encoded.encodings.items():
            shape = encoding.content_mu.shape
            if m == carrier:
                content_mu = 10.0 * torch.nn.functional.one_hot(encoded.labels, shape[1]).float()
            else:
                content_mu = torch.randn(shape, generator=noise)
            encoded.encodings[m] = dataclasses.replace(encoding, content_mu=content_mu)
        return encoded

    # imports scikit-learn only here
    monkeypatch.setattr("mmjsd.evaluation.probe_eval.encode_rows", label_in_one_modality)
    document = run_metric("latent_probe", mst_runs["mmjsd-ms"], mst_h5, tmp_path / "probe.json")
    assert set(document["values"]) == set(MST_SUBSETS)
    for key, accuracy in document["values"].items():
        if carrier in key.split("+"):
            assert accuracy > 0.9, key
        else:
            assert accuracy < 0.3, key


# ----------------------------------------------------------------------- coherence
@pytest.mark.parametrize(
    ("predictions", "all_agree", "mmjsd_formula"),
    [
        ({"mnist": 3, "svhn": 3, "text": 3}, 1.0, 1.0),
        ({"mnist": 3, "svhn": 3, "text": 5}, 0.0, 0.0),
        ({"mnist": 1, "svhn": 3, "text": 5}, 0.0, 1.0),
    ],
)
def test_random_coherence_counts_only_samples_where_all_modalities_agree(
    predictions, all_agree, mmjsd_formula, mst_runs, mst_h5, tmp_path
):
    classifiers = save_classifiers(tmp_path / "classifiers", MST, tuple(predictions), constant=predictions)
    document = run_metric("coherence", mst_runs["mmjsd-ms"], mst_h5, tmp_path / "c.json", classifiers=classifiers)
    assert document["values"]["random"] == all_agree
    assert document["alternatives"]["random_coherence_formula"]["random"] == mmjsd_formula
    official = run_metric(
        "coherence", mst_runs["mmjsd-ms"], mst_h5, tmp_path / "o.json", classifiers=classifiers,
        switches={**corrected(), "random_coherence_formula": "reference"},
    )  # fmt: skip
    assert official["values"]["random"] == mmjsd_formula and official["protocol"]["random_coherence"] == "mmjsd_formula"
    assert official["alternatives"]["random_coherence_formula"]["random"] == all_agree
    labels = load_split(MST, mst_h5, "test").labels.numpy()
    for key, value in document["values"].items():
        if key != "random":
            assert value == pytest.approx(np.mean(labels == predictions[key.split("->")[1]]))


def test_coherence_n_test_takes_a_seeded_subset(mst_runs, mst_h5, mst_classifiers, tmp_path):
    params = params_with(coherence={"n_test": 50})
    document = run_metric("coherence", mst_runs["mvae-ms"], mst_h5, tmp_path / "c.json", params, mst_classifiers)
    assert document["protocol"]["n_test"] == 50 and document["protocol"]["test_rows"] == "seeded_subset"


# ---------------------------------------------------------------------- likelihood
def single_sample_elbo(run_dir: Path, data: Path, params: dict) -> dict[str, float]:
    """Mean single-sample ELBO per subset (joint and marginals), computed here with torch.distributions.

    Replays the evaluator's documented draw order from the same generator: per batch and
    subset, z, then the posterior styles of the subset, then prior styles of every modality.
    """
    model = load_run(run_dir, torch.device("cpu")).model
    cfg = params["likelihood"]
    split = load_split(MST, data, "test")
    rows = select_rows(len(split), cfg["n_test"], derived_seed(params["seed"], "likelihood/test_rows"), "n_test")
    rows = rows[
        torch.randperm(
            len(rows), generator=torch.Generator().manual_seed(derived_seed(params["seed"], "likelihood/test_order"))
        )
    ]
    generator = torch.Generator().manual_seed(derived_seed(params["seed"], "likelihood/latent_samples"))
    totals: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for index in rows.split(cfg["batch_size"]):
            batch, _ = split.batch(index)
            encodings = model.encode(batch)
            for subset in model.subsets:
                posterior = model.subset_posterior(encodings, subset)  # MVAE: one Gaussian
                q = Normal(posterior.mu, torch.exp(0.5 * posterior.logvar))
                z = posterior.mu + q.stddev * torch.randn((1, *posterior.mu.shape), generator=generator)[0]
                log_weight_z = Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
                styles, style_terms = {}, {}
                for m in subset:
                    q_style = Normal(encodings[m].style_mu, torch.exp(0.5 * encodings[m].style_logvar))
                    styles[m] = (
                        q_style.mean + q_style.stddev * torch.randn((1, *q_style.mean.shape), generator=generator)[0]
                    )
                    style_terms[m] = Normal(0.0, 1.0).log_prob(styles[m]).sum(-1) - q_style.log_prob(styles[m]).sum(-1)
                prior_styles = {m: torch.randn(len(index), d, generator=generator) for m, d in model.style_dims.items()}
                styles = {**prior_styles, **styles}
                log_liks = {}
                for m in model.modalities:
                    params_m = model.decoders[m](z, styles[m])
                    if m == "text":
                        log_liks[m] = Categorical(logits=params_m).log_prob(batch[m].argmax(-1)).sum(-1)
                    else:
                        log_liks[m] = Laplace(params_m, LAPLACE_SCALE).log_prob(batch[m]).flatten(1).sum(1)
                    totals.setdefault(f"{m}|{subset_key(subset)}", []).append(
                        log_liks[m] + log_weight_z + style_terms.get(m, 0.0)
                    )
                joint = sum(log_liks.values()) + log_weight_z + sum(style_terms.values())
                totals.setdefault(f"joint|{subset_key(subset)}", []).append(joint)
    return {key: float(torch.cat(parts).double().mean()) for key, parts in totals.items()}


def test_one_importance_sample_gives_the_single_sample_elbo(mst_runs, mst_h5, tmp_path):
    params = params_with(likelihood={"num_importance_samples": 1, "n_test": 24, "batch_size": 8})
    document = run_metric("likelihood", mst_runs["mvae-ms"], mst_h5, tmp_path / "l.json", params)
    expected = single_sample_elbo(mst_runs["mvae-ms"], mst_h5, params)
    estimates = {**document["values"], **{k: v for k, v in document["extra"].items() if ":" not in k}}
    assert set(estimates) == set(expected)
    for key, value in expected.items():
        assert estimates[key] == pytest.approx(value, rel=1e-5), key


@pytest.mark.parametrize("subset", [("svhn", "text"), ("mnist", "svhn", "text")], ids=subset_key)
def test_mixture_proposal_estimates_match_an_independent_computation(mst_runs, mst_h5, subset):
    """mmJSD-MS, K = 12: the proposal density is the equal-weight mixture of the subset's unimodal
    encoder Gaussians, built here from the encoder outputs with torch.distributions (not from
    ``subset_posterior``'s parameters); decoding, style weights and the per-point log-mean-exp too.

    The draws replay the evaluator's documented order from one generator: z from the subset
    posterior (its stratified sampler is tested in test_distributions.py), the subset's
    posterior styles, then prior styles of every modality."""
    model = load_run(mst_runs["mmjsd-ms"], torch.device("cpu")).model
    batch, _ = load_split(MST, mst_h5, "test").batch(torch.arange(7))
    num_samples, points = 12, 7
    with torch.no_grad():
        encodings = model.encode(batch)
        weights = subset_log_weights(model, encodings, batch, subset, num_samples, torch.Generator().manual_seed(5))
        estimates = {name: importance_sampled_log_likelihood(w) for name, w in weights["corrected"].items()}

        generator = torch.Generator().manual_seed(5)
        z = model.subset_posterior(encodings, subset).sample(num_samples, generator)
        experts = [Normal(encodings[m].content_mu, torch.exp(0.5 * encodings[m].content_logvar)) for m in subset]
        log_q = torch.logsumexp(torch.stack([q.log_prob(z).sum(-1) for q in experts]), 0) - math.log(len(subset))
        log_weight_z = Normal(0.0, 1.0).log_prob(z).sum(-1) - log_q
        styles, style_terms = {}, {}
        for m in subset:
            q_style = Normal(encodings[m].style_mu, torch.exp(0.5 * encodings[m].style_logvar))
            styles[m] = q_style.mean + q_style.stddev * torch.randn(
                (num_samples, *q_style.mean.shape), generator=generator
            )
            style_terms[m] = Normal(0.0, 1.0).log_prob(styles[m]).sum(-1) - q_style.log_prob(styles[m]).sum(-1)
        prior_styles = {
            m: torch.randn(num_samples * points, d, generator=generator).reshape(num_samples, points, d)
            for m, d in model.style_dims.items()
        }
        styles = {**prior_styles, **styles}
        log_liks = {}
        for m in model.modalities:
            per_sample = []
            for k in range(num_samples):
                params_m = model.decoders[m](z[k], styles[m][k])
                if m == "text":
                    per_sample.append(Categorical(logits=params_m).log_prob(batch[m].argmax(-1)).sum(-1))
                else:
                    per_sample.append(Laplace(params_m, LAPLACE_SCALE).log_prob(batch[m]).flatten(1).sum(1))
            log_liks[m] = torch.stack(per_sample)

    def log_mean_exp(log_weights: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(log_weights.double(), 0) - math.log(num_samples)

    expected_weights = {m: log_liks[m] + log_weight_z + style_terms.get(m, 0.0) for m in model.modalities}
    expected_weights["joint"] = sum(log_liks.values()) + log_weight_z + sum(style_terms.values())
    assert set(estimates) == set(expected_weights)
    for name, weights in expected_weights.items():
        torch.testing.assert_close(estimates[name], log_mean_exp(weights), rtol=1e-5, atol=1e-2, msg=name)

    # The official proposal density (mixture_proposal_density reference): draw k came from expert k // (K / |S|),
    # the stratified blocks of the flat K·B draws, and is scored by that expert alone; nothing else in a weight changes.
    own_expert = [experts[k // (num_samples // len(subset))] for k in range(num_samples)]
    log_q_own = torch.stack([q.log_prob(z[k]).sum(-1) for k, q in enumerate(own_expert)])
    official = subset_log_weights(
        model, encodings, batch, subset, num_samples, torch.Generator().manual_seed(5), ("reference",)
    )
    for name, weights in expected_weights.items():
        torch.testing.assert_close(
            official["reference"][name], (weights + log_q - log_q_own).double(), rtol=1e-5, atol=1e-2, msg=name
        )
    assert not torch.allclose(log_q, log_q_own)


def test_importance_samples_must_split_evenly_over_mixture_components(mst_runs, mst_h5):
    job = metric_job_from_dict(
        metric_job_params(params_with(likelihood={"num_importance_samples": 4}), "likelihood", MST, corrected())
    )
    inputs = EvaluationInputs(run=load_run(mst_runs["mmjsd-ms"], torch.device("cpu")), data_path=mst_h5, job=job)
    with pytest.raises(UserError, match=r"num_importance_samples = 4 .* 3 components .*mnist\+svhn\+text"):
        evaluate_likelihood(inputs)


# ----------------------------------------------------------------------------- PRD
def test_prd_reads_cached_real_features_and_refuses_a_stale_file(mst_runs, mst_h5, mst_classifiers, tmp_path):
    reference = tmp_path / "real.npz"
    common = ["--dataset", MST, "--data", str(mst_h5), "--classifiers", str(mst_classifiers), "--device", "cpu"]
    prd_reference.main(
        common + ["--params", json.dumps(metric_job_params(PARAMS, "prd", MST, corrected())), "--out", str(reference)]
    )
    args = cli_args("prd", mst_runs["mvae-ms"], mst_h5, tmp_path / "cached.json", classifiers=mst_classifiers)
    evaluate.main(args + ["--real-features", str(reference)])
    run_metric("prd", mst_runs["mvae-ms"], mst_h5, tmp_path / "fresh.json", classifiers=mst_classifiers)
    assert (tmp_path / "cached.json").read_bytes() == (tmp_path / "fresh.json").read_bytes()

    stale = tmp_path / "stale.npz"
    prd_reference.main(
        common
        + [
            "--params",
            json.dumps(metric_job_params(params_with(prd={"n_samples": 32}), "prd", MST, corrected())),
            "--out",
            str(stale),
        ]
    )
    with pytest.raises(UserError, match=r"stale\.npz does not match .*n_rows"):
        evaluate.main(args + ["--real-features", str(stale)])


def identical_sets_prd_ceiling(num_angles: int) -> float:
    """prd_ap_mmjsd of identical feature sets on the grid of ``num_angles`` slopes (0.720415 at 1001).

    Identical histograms give precision min(lambda, 1) and recall min(1, 1/lambda) at every
    slope lambda = tan(theta), theta equally spaced over [1e-10, pi/2 - 1e-10]; the
    metric is the mean of both curves.
    """
    slopes = np.tan(np.linspace(1e-10, math.pi / 2 - 1e-10, num_angles))
    return float(np.mean([np.minimum(slopes, 1.0), np.minimum(1.0, 1.0 / slopes)]))


def test_prd_compares_generated_images_with_real_images_of_the_same_modality_and_rows(
    monkeypatch, mst_runs, mst_h5, mst_classifiers, tmp_path
):
    """Both MST feature extractors give 128-d features, so pairing generated MNIST with real SVHN (or real
    images of other rows) would run without error. With generation replaced by the conditioning rows' own
    images, every set equals its real set exactly, and only the right pairing reaches the ceiling."""
    generate_the_conditioning_rows(monkeypatch, MST, mst_h5)
    params = params_with(batch_size=16, prd={"num_runs": 1})  # 64 of the 213 test rows, in 4 batches
    document = run_metric("prd", mst_runs["mmjsd-ms"], mst_h5, tmp_path / "prd.json", params, mst_classifiers)
    assert document["protocol"]["test_rows"] == "seeded_subset"
    ceiling = identical_sets_prd_ceiling(params["prd"]["num_angles"])
    assert document["values"] == pytest.approx(dict.fromkeys(MST_KEYS["prd"], ceiling), abs=1e-9)


def fake_pytorch_fid(monkeypatch) -> None:
    """A stand-in ``pytorch_fid.inception`` with the real one's loading path: the constructor fetches the
    state dict through the module's ``load_state_dict_from_url``; the "network" averages each channel
    and maps 3 channels to 2048 features."""

    class InceptionV3(torch.nn.Module):
        def __init__(self, output_blocks, resize_input, normalize_input):
            super().__init__()
            assert list(output_blocks) == [3] and resize_input and normalize_input
            self.project = torch.nn.Linear(3, 2048)
            self.project.load_state_dict(module.load_state_dict_from_url("https://unreachable.invalid/weights.pth"))

        def forward(self, x):
            assert x.shape[1] == 3, "1-channel images must arrive as 3 channels"
            assert torch.equal(x, torch.round(x * 255) / 255), "pixels must be quantised to uint8 levels"
            return [self.project(x.mean((2, 3)))[:, :, None, None]]

    def download(*args, **kwargs):
        raise AssertionError("the weights must come from the configured file, not a download")

    module = types.ModuleType("pytorch_fid.inception")
    module.InceptionV3, module.load_state_dict_from_url = InceptionV3, download
    package = types.ModuleType("pytorch_fid")
    package.inception = module
    monkeypatch.setitem(sys.modules, "pytorch_fid", package)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", module)


def test_inception_features_load_the_weights_file_and_record_its_hash(monkeypatch, mst_runs, mst_h5, tmp_path):
    fake_pytorch_fid(monkeypatch)
    weights = tmp_path / "pt_inception.pth"
    torch.save(torch.nn.Linear(3, 2048).state_dict(), weights)
    params = params_with(prd={"inception_weights": str(weights), "n_samples": 32})
    digest = sha256_file(weights)
    with pytest.warns(UserWarning, match="not the FID weights"):
        document = run_metric("prd", mst_runs["mvae-ms"], mst_h5, tmp_path / "prd.json", params)
    # Other weights than the FID file: the digest is part of the extractor's and the metric's name.
    other = f"inception_pool3_2048_sha256-{digest[:12]}"
    assert document["metric_name"] == f"prd_ap_mmjsd[{other}]"
    assert document["extractor"]["sha256"] == digest
    assert document["protocol"]["extractor"] == other and "classifier_mode" not in document["protocol"]

    # The FID weights (recognised by their sha256 prefix) give the paper's extractor name, without a warning.
    monkeypatch.setattr(features, "INCEPTION_SHA256_PREFIX", digest[:8])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        document = run_metric("prd", mst_runs["mvae-ms"], mst_h5, tmp_path / "prd-fid.json", params)
    assert not [w for w in caught if "FID weights" in str(w.message)]
    assert document["metric_name"] == "prd_ap_mmjsd[inception_pool3_2048]"
    assert document["protocol"]["extractor"] == "inception_pool3_2048"


def test_inception_without_pytorch_fid_asks_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)  # import fails as if not installed
    weights = tmp_path / "weights.pth"
    torch.save({}, weights)
    with pytest.raises(UserError, match=r"pip install pytorch-fid"):
        features.inception_extractor(weights, MST, torch.device("cpu"), 8)


def test_inception_with_real_pytorch_fid_and_random_weights(tmp_path):
    """Only where the optional package is installed: pytorch-fid's own architecture, randomly initialised."""
    fid_inception = pytest.importorskip("pytorch_fid.inception")
    from unittest import mock

    import torchvision

    captured = {}
    with (
        mock.patch.object(fid_inception, "load_state_dict_from_url", return_value={}),
        mock.patch.object(
            torchvision.models.Inception3,
            "load_state_dict",
            lambda self, sd, *a, **k: captured.update(self.state_dict()),
        ),
    ):
        fid_inception.fid_inception_v3()
    weights = tmp_path / "random_inception.pth"
    torch.save(captured, weights)
    with pytest.warns(UserWarning, match="not the FID weights"):
        extractor = features.inception_extractor(weights, MST, torch.device("cpu"), 2)
    assert extractor("mnist", torch.rand(2, 1, 28, 28)).shape == (2, 2048)


# -------------------------------------------------------------------------- CelebA
@pytest.fixture(scope="module")
def celeba_inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("celeba")
    return save_run(root / "runs", "celeba", "mmjsd-ms"), save_classifiers(
        root / "classifiers", "celeba", ("img", "text")
    )


@pytest.mark.parametrize("metric", ["latent_probe", "coherence", "prd", "likelihood"])
def test_celeba_metrics_have_the_documented_keys(metric, celeba_inputs, celeba_h5, tmp_path):
    run_dir, classifiers = celeba_inputs
    params = params_with(
        latent_probe={"n_train": 20}, likelihood={"num_importance_samples": 2, "n_test": 4, "batch_size": 4}
    )
    document = run_metric(metric, run_dir, celeba_h5, tmp_path / "m.json", params, classifiers)
    assert set(document["values"]) == CELEBA_KEYS[metric]
    assert all(math.isfinite(v) for v in document["values"].values())
    if metric == "coherence":
        assert set(document["alternatives"]) == {
            "classifier_mode",
            "generated_image_range",
            "per_batch_average_precision",
        }
        assert set(document["alternatives"]["per_batch_average_precision"]) == CELEBA_KEYS[metric]
        assert all(0 <= v <= 1 for v in document["values"].values())
    if metric == "prd":
        assert document["extractor"]["name"] == "clf_penult_640" and document["protocol"]["n_samples"] == 12
        assert document["protocol"]["test_rows"] == "all"  # n_samples 64 covers the 12 test images


class AttributeLookup(torch.nn.Module):
    """A stand-in CelebA coherence classifier of ``modality``: logits +-20 of the true attributes of the test row
    whose data are nearest to each input when ``knows_attributes``, else all-zero logits (every score 0.5).
    Inputs of another modality fail an assertion, as the real classifier would fail on their shape."""

    def __init__(self, modality: str, split: Split, knows_attributes: bool):
        super().__init__()
        self.modality, self.split, self.knows_attributes = modality, split, knows_attributes
        self.device_anchor = torch.nn.Parameter(torch.zeros(()))  # predict.py reads the device from a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        data, attributes = self.split.batch(torch.arange(len(self.split)))
        assert x.shape[1:] == data[self.modality].shape[1:], (
            f"the {self.modality} classifier got inputs of shape {tuple(x.shape)}"
        )
        if not self.knows_attributes:
            return torch.zeros(len(x), attributes.shape[1])
        rows = torch.cdist(x.flatten(1), data[self.modality].flatten(1)).argmin(1)
        return 20.0 * (2.0 * attributes[rows] - 1.0)


@pytest.mark.parametrize("knowing", ["img", "text"])
def test_celeba_coherence_scores_the_generated_modality_against_the_conditioning_attributes(
    knowing, monkeypatch, celeba_inputs, celeba_h5, tmp_path
):
    """A value "S->m" scores generated m with m's classifier against the attributes of the rows S came from.

    Generation returns the conditioning rows' own data, and only the classifier of
    ``knowing`` (looked up by its directory name) reads the true attributes off its input; the
    other scores 0.5 everywhere, whose AP is each attribute's base rate. So "->knowing" is
    1 exactly and the other key the mean base rate: a swapped orientation or classifier, or
    labels of other rows, fails.
    """
    run_dir, _ = celeba_inputs
    split = load_split("celeba", celeba_h5, "test")
    classifiers = {m: AttributeLookup(m, split, knows_attributes=m == knowing) for m in ("img", "text")}
    monkeypatch.setattr(
        coherence_eval, "load_classifier", lambda directory, device, **kwargs: classifiers[Path(directory).name]
    )
    generate_the_conditioning_rows(monkeypatch, "celeba", celeba_h5)
    params = params_with(batch_size=5)  # the 12 test rows in 3 batches
    # classifiers: any directory
    document = run_metric("coherence", run_dir, celeba_h5, tmp_path / "c.json", params, classifiers=tmp_path)

    attributes = split.labels.numpy()
    present = attributes.any(axis=0)  # attributes without a positive have no AP
    base_rate = float(attributes[:, present].mean(axis=0).mean())
    other = {"img": "text", "text": "img"}[knowing]
    assert document["values"] == pytest.approx({f"{other}->{knowing}": 1.0, f"{knowing}->{other}": base_rate})
    assert document["extra"]["attribute_prevalence"] == pytest.approx(base_rate)  # the chance level the tables show

    # The official per-batch AP (batches of 5, 5 and 2 rows): per batch and attribute, a perfect ranking scores 1,
    # constant scores the batch's base rate, and an attribute without a positive in the batch 0; then the means.
    batches = [attributes[start : start + 5] for start in range(0, len(attributes), 5)]
    perfect = np.mean([[float(b[:, a].any()) for a in range(attributes.shape[1])] for b in batches])
    constant = np.mean([[b[:, a].mean() for a in range(attributes.shape[1])] for b in batches])
    expected = {f"{other}->{knowing}": perfect, f"{knowing}->{other}": constant}
    assert document["alternatives"]["per_batch_average_precision"] == pytest.approx(expected, abs=1e-12)
    official = run_metric(
        "coherence", run_dir, celeba_h5, tmp_path / "o.json", params, classifiers=tmp_path,
        switches={**corrected(), "per_batch_average_precision": "reference"},
    )  # fmt: skip
    assert (
        official["values"] == pytest.approx(expected, abs=1e-12)
        and official["protocol"]["average_precision"] == "mean_over_batches"
    )


# ------------------------------------------------------------ departures (docs/departures.md)
@pytest.mark.parametrize("metric", ["latent_probe", "coherence", "likelihood"])
def test_each_alternative_equals_the_job_with_that_switch_flipped(metric, mst_runs, mst_h5, mst_classifiers, tmp_path):
    """An alternative is the value of a job whose switch set differs in that departure only, bit for bit:
    the same encodings, draws and generations, and no dependence on which other settings the job computes."""
    variant = "mmjsd-ms"  # a mixture: the likelihood's proposal-density switch acts
    base = run_metric(metric, mst_runs[variant], mst_h5, tmp_path / "base.json", classifiers=mst_classifiers)
    assert set(base["alternatives"]) == MST_ALTERNATIVES[metric]
    for name, alternative in base["alternatives"].items():
        flipped = run_metric(
            metric, mst_runs[variant], mst_h5, tmp_path / f"{name}.json", classifiers=mst_classifiers,
            switches={**corrected(), name: "reference"},
        )  # fmt: skip
        assert flipped["protocol"]["departures"][name] == "reference"
        assert flipped["values"] == alternative, name
        assert flipped["alternatives"][name] == base["values"], name
        if name != "generated_image_range":  # untrained decoders barely leave [0, 1]: tested on its own below
            assert flipped["values"] != base["values"], f"{name} moves no number of an untrained {variant}"


def test_a_reference_exact_run_is_evaluated_with_reference_switches_only(mst_h5, tmp_path):
    """The metric file inherits the run's protocol; a corrected evaluation
    switch on a reference-exact run is refused."""
    config = dataclasses.replace(
        load_config(REPO / "config.yaml").train_config(MST, "mmvae", "reference-exact"), batch_size=16
    )
    assert set(config.departures.values()) == {"reference"}
    run_dir = save_untrained_run(
        tmp_path / "runs" / MST / "mmvae" / "seed0", MST, "mmvae", config, mst_h5, "reference-exact"
    )
    with pytest.raises(
        UserError, match="reference-exact job must run every departure at reference, but 'importance_sampling_grouping'"
    ):
        run_metric("likelihood", run_dir, mst_h5, tmp_path / "no.json")  # corrected evaluation switches
    assert not (tmp_path / "no.json").exists()
    document = run_metric("likelihood", run_dir, mst_h5, tmp_path / "l.json", switches=reference_exact())
    assert document["protocol"]["name"] == "reference-exact" and set(document["protocol"]["departures"].values()) == {
        "reference"
    }


class OutOfRangeDetector(torch.nn.Module):
    """A stand-in MST classifier: digit 1 for an input row with a value outside [0, 1], else digit 0."""

    def __init__(self):
        super().__init__()
        self.device_anchor = torch.nn.Parameter(torch.zeros(()))  # predict.py reads the device from a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outside = ((x < 0) | (x > 1)).flatten(1).any(1)
        return torch.nn.functional.one_hot(outside.long(), 10).float()


def test_generated_image_range_decides_whether_classifiers_see_unbounded_means(monkeypatch, mst_runs, mst_h5, tmp_path):
    """Generation gives every odd row of each batch a pixel of 1.5: the official classifiers saw it, ours see 1.0."""

    def odd_rows_out_of_range(model, encodings, sources, modalities, num_rows, generator):
        generated = {}
        for m in modalities:
            shape = {"mnist": (1, 28, 28), "svhn": (3, 32, 32), "text": (8, 71)}[m]
            one = torch.full((num_rows, *shape), 0.5)
            if m != "text":
                one[1::2, ..., 0] = 1.5
            generated[m] = torch.cat([one] * len(sources))
        return generated

    monkeypatch.setattr(generation, "generate_means", odd_rows_out_of_range)
    monkeypatch.setattr(coherence_eval, "load_classifier", lambda directory, device, **kwargs: OutOfRangeDetector())
    switches = {**corrected(), "generated_image_range": "reference"}
    document = run_metric(
        "coherence", mst_runs["mvae-ms"], mst_h5, tmp_path / "c.json", classifiers=tmp_path, switches=switches
    )
    labels = load_split(
        MST, mst_h5, "test"
    ).labels.numpy()  # coherence evaluates the whole split in order, batches of 64
    odd = (np.arange(len(labels)) % 64) % 2 == 1
    for key, value in document["values"].items():
        if key == "random":
            continue
        image = key.split("->")[1] != "text"
        expected = np.mean(labels == (odd if image else 0))
        assert value == pytest.approx(expected, abs=1e-12), key
        assert document["alternatives"]["generated_image_range"][key] == pytest.approx(
            np.mean(labels == 0), abs=1e-12
        ), key
    assert document["protocol"]["generated_data"] == "unbounded"


def test_train_mode_classification_is_dropout_and_batch_statistics_per_generated_batch():
    """The official classifiers ran in train mode: written out here for the SVHN classifier (dropout, then BatchNorm
    with the statistics of each batch of 6 rows), from the same global-RNG state."""
    torch.manual_seed(0)
    classifier = build_classifier(MST, "svhn").eval()
    before = copy.deepcopy(classifier.state_dict())
    data = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def logits(module, x, batch_size):
        return module(x)

    torch.manual_seed(7)
    got = coherence_eval.classify_in_train_mode(logits, copy.deepcopy(classifier), data, rows=6)

    def by_hand(x: torch.Tensor) -> torch.Tensor:
        h = x
        stages = list(classifier.body)[:-1]  # (conv, dropout, batch norm, relu) x 4, then flatten
        for conv, _, norm, _ in zip(*[iter(stages)] * 4, strict=True):
            h = conv(h)
            h = h * (torch.empty_like(h).bernoulli_(0.5) / 0.5)
            h = torch.nn.functional.batch_norm(h, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
            h = torch.relu(h)
        return classifier.head(h.flatten(1))

    torch.manual_seed(7)
    with torch.no_grad():
        expected = torch.cat([by_hand(part) for part in data.split(6)])
        assert not torch.allclose(got, classifier(data), atol=1e-3)  # eval mode gives other outputs
    torch.testing.assert_close(got, expected)
    assert all(torch.equal(value, before[key]) for key, value in classifier.state_dict().items())  # a copy ran
    with pytest.raises(UserError, match="at least 2 rows"):
        coherence_eval.classify_in_train_mode(logits, copy.deepcopy(classifier), data[:3], rows=1)


def test_dropout_streams_resume_per_key_and_leave_the_global_generator_alone():
    """A train-mode setting's dropout masks do not depend on which other settings draw in between."""
    cpu = torch.device("cpu")
    interleaved, alone = coherence_eval.DropoutStreams(3, cpu), coherence_eval.DropoutStreams(3, cpu)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    draws = []
    for key in ("a", "b", "a"):
        with interleaved.stream(key):
            draws.append(torch.rand(4))
    assert torch.equal(torch.get_rng_state(), before)
    for expected in (draws[0], draws[2]):
        with alone.stream("a"):
            assert torch.equal(torch.rand(4), expected)
    assert not torch.equal(draws[0], draws[1])


def test_official_probe_refits_on_the_last_training_batch_with_each_rows_drawn_component_mean(
    mst_runs, mst_h5, tmp_path
):
    """probe_protocol reference, recomputed here: the last training batch of the run (16 rows, final epoch's text
    offsets), mixture rows laid out by hand in blocks of floor(n / |S|) per expert, one lbfgs fit per subset."""
    from sklearn.linear_model import LogisticRegression

    switches = {**corrected(), "probe_protocol": "reference"}
    document = run_metric("latent_probe", mst_runs["mmjsd-ms"], mst_h5, tmp_path / "probe.json", switches=switches)
    assert document["protocol"]["training_rows"] == "last_training_batch" and document["protocol"]["n_train"] == 16
    run = load_run(mst_runs["mmjsd-ms"], torch.device("cpu"))
    train = load_split(MST, mst_h5, "train")
    train.redraw_text(0, run.epoch)
    train_data, train_labels = train.batch(last_batch_rows(len(train), 16, 0, run.epoch))
    test = load_split(MST, mst_h5, "test")
    test_data, test_labels = test.batch(torch.arange(len(test)))

    def layout(encodings, subset) -> np.ndarray:
        """Rows in blocks: expert k of S takes floor(n / |S|) consecutive rows, the last expert the rest."""
        n = len(encodings[subset[0]].content_mu)
        per = [n // len(subset)] * (len(subset) - 1) + [n - n // len(subset) * (len(subset) - 1)]
        starts = np.cumsum([0] + per[:-1])
        return np.concatenate(
            [encodings[m].content_mu[a : a + k].numpy() for m, a, k in zip(subset, starts, per, strict=True)]
        )

    with torch.no_grad():
        train_encodings = run.model.encode(train_data)
        test_encodings = [
            run.model.encode({m: x[a : a + 64] for m, x in test_data.items()}) for a in range(0, len(test), 64)
        ]
    for subset in [("mnist",), ("svhn", "text"), ("mnist", "svhn", "text")]:
        probe = LogisticRegression(solver="lbfgs", max_iter=200, random_state=0).fit(
            layout(train_encodings, subset), train_labels.numpy()
        )
        test_latents = np.concatenate([layout(e, subset) for e in test_encodings])
        accuracy = float(np.mean(probe.predict(test_latents) == test_labels.numpy()))
        assert document["values"][subset_key(subset)] == pytest.approx(accuracy, abs=1e-12), subset
        assert document["std"][subset_key(subset)] == 0.0


# --------------------------------------------------------------------------- errors
def test_missing_run_directory_names_the_model_file(mst_h5, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main_guard(evaluate.main, cli_args("likelihood", tmp_path / "absent", mst_h5, tmp_path / "out.json"))
    assert exit_info.value.code == 2
    assert f"{tmp_path / 'absent' / 'model.pt'} does not exist" in capsys.readouterr().err


def test_missing_classifier_names_the_classifier_file(mst_runs, mst_h5, tmp_path, capsys):
    classifiers = tmp_path / "classifiers"
    save_classifiers(classifiers, MST, ("mnist", "svhn"))  # no text classifier
    with pytest.raises(SystemExit):
        main_guard(
            evaluate.main,
            cli_args("coherence", mst_runs["mvae-ms"], mst_h5, tmp_path / "out.json", classifiers=classifiers),
        )
    assert f"{classifiers / 'text' / 'model.pt'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_coherence_without_classifier_directory_says_which_option_is_missing(mst_runs, mst_h5, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main_guard(evaluate.main, cli_args("coherence", mst_runs["mvae-ms"], mst_h5, tmp_path / "out.json"))
    assert "--classifiers results/classifiers/mnist_svhn_text" in capsys.readouterr().err


def test_prd_rows_are_the_whole_split_or_a_seeded_subset_without_repeats():
    assert features.prd_rows(50, 50, seed=0).tolist() == list(range(50))
    assert features.prd_rows(50, 10_240, seed=0).tolist() == list(range(50))  # capped at the split
    rows = features.prd_rows(1000, 64, seed=3)
    assert len(set(rows.tolist())) == 64 and rows.min() >= 0 and rows.max() < 1000
    assert rows.tolist() == features.prd_rows(1000, 64, seed=3).tolist()
    assert rows.tolist() != features.prd_rows(1000, 64, seed=4).tolist()
    with pytest.raises(UserError, match=re.escape("evaluation.prd.n_samples")):
        features.prd_rows(1000, 0, seed=0)


def test_prd_clusterings_in_parallel_processes_equal_the_sequential_ones():
    rng = np.random.default_rng(0)
    pairs = {
        (name, "mnist"): (rng.normal(size=(80, 6)), rng.normal(size=(80, 6)) + shift)
        for name, shift in (("a", 0.0), ("b", 1.0), ("c", 3.0))
    }
    settings = {"num_clusters": 4, "num_angles": 51, "num_runs": 2, "kmeans_batch_size": 100, "seed": 3}
    sequential = prd_curves(pairs, workers=1, **settings)
    parallel = prd_curves(pairs, workers=2, **settings)
    for key in pairs:
        np.testing.assert_array_equal(sequential[key][0], parallel[key][0])
        np.testing.assert_array_equal(sequential[key][1], parallel[key][1])
    assert prd_ap_mmjsd(*sequential[("a", "mnist")]) > prd_ap_mmjsd(*sequential[("c", "mnist")])
