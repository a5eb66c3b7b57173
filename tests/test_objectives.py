"""The four objectives on tiny random data: training steps, loss bookkeeping, and each divergence
against an independent computation (torch.distributions, closed forms written out here).

Configs are built in ``helpers.py``, not read from config.yaml, with the paper's values (docs/reference-code.md §4).
"""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from helpers import (
    MST_MODALITIES,
    assert_every_network_gets_gradient,
    celeba_config,
    encodings_and_style_samples,
    float64_forward,
    mst_config,
    negative_log_likelihood,
    normal,
    poe_logvar,
    poe_without_prior,
    product_of_normals,
    random_batch,
)
from mmjsd.core import registry
from mmjsd.core.departures import reference_exact, training_switches
from mmjsd.core.errors import UserError
from mmjsd.core.registry import parse_variant
from mmjsd.models import Encoding, build_model
from mmjsd.models.mmjsd import MMJSD
from mmjsd.models.mmvae import MMVAE
from mmjsd.models.mopoe import MoPoE
from mmjsd.models.mvae import MVAE
from mmjsd.models.networks import data_shapes
from mmjsd.models.posteriors import GaussianPosterior, MixturePosterior
from mmjsd.train import TrainingStep

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Every registered variant (the built-ins when the tests are collected; plugins have tests of their own).
MST_VARIANTS = list(registry.variant_names())
CELEBA_VARIANTS = [variant for variant in MST_VARIANTS if variant.endswith("-ms")]


def official_switches(variant: str, dataset: str = "mnist_svhn_text", **hparams) -> dict[str, str]:
    """Every training departure that acts on ``variant`` at ``reference`` (as
    config.yaml + the reference-exact switches give)."""
    objective, ms = parse_variant(variant)
    return training_switches(reference_exact(), dataset, objective, ms, hparams)


def hand_made_encodings(modalities, batch_size: int, dim: int, seed: int) -> dict[str, Encoding]:
    gen = torch.Generator().manual_seed(seed)
    return {
        m: Encoding(torch.randn(batch_size, dim, generator=gen), 0.7 * torch.randn(batch_size, dim, generator=gen))
        for m in modalities
    }


def standard_normal_like(mu: torch.Tensor) -> Normal:
    return Normal(torch.zeros_like(mu), torch.ones_like(mu))


def expected_term_names(variant: str, modalities) -> set[str]:
    names = {f"rec/{m}" for m in modalities} | {"kl/content"}
    if variant.endswith("-ms"):
        names |= {f"kl/style/{m}" for m in modalities}
    if variant.startswith("mvae"):
        names |= {f"rec_unimodal/{m}" for m in modalities} | {f"kl_unimodal/{m}" for m in modalities}
    return names


def assert_terms_add_up(model, loss, terms, variant) -> None:
    weights = model.term_weights()
    assert set(terms) == set(weights) == expected_term_names(variant, model.modalities)
    for name, value in terms.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    torch.testing.assert_close(sum(weights[k] * terms[k] for k in terms), loss, rtol=1e-6, atol=1e-3)


# ------------------------------------------------------------------ training steps
@pytest.mark.parametrize("variant", MST_VARIANTS)
def test_mst_training_step(variant):
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", variant, mst_config(variant.endswith("-ms")))
    loss, terms = model.forward_loss(random_batch("mnist_svhn_text", 16, torch.Generator().manual_seed(1)))
    assert torch.isfinite(loss)
    loss.backward()
    assert_every_network_gets_gradient(model)
    assert_terms_add_up(model, loss, terms, variant)


@pytest.fixture(scope="module")
def celeba_models():
    """CelebA models are large (70 M parameters): build each variant once per module."""
    cache = {}

    def get(variant: str):
        if variant not in cache:
            torch.manual_seed(0)
            cache[variant] = build_model("celeba", variant, celeba_config())
        return cache[variant]

    return get


@pytest.mark.parametrize("variant", CELEBA_VARIANTS)
def test_celeba_training_step(variant, celeba_models):
    model = celeba_models(variant)
    torch.manual_seed(0)
    loss, terms = model.forward_loss(random_batch("celeba", 4, torch.Generator().manual_seed(1)))
    assert torch.isfinite(loss)
    loss.backward()
    assert_every_network_gets_gradient(model)
    assert_terms_add_up(model, loss, terms, variant)


def test_bf16_autocast_keeps_latent_math_and_terms_in_float32():
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", "mmjsd-ms", mst_config(True))
    batch = random_batch("mnist_svhn_text", 8, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, terms = model.forward_loss(batch)
    assert torch.isfinite(loss)
    assert all(value.dtype == torch.float32 for value in terms.values())


@pytest.mark.parametrize("variant", ["mmjsd-ms", "mvae"])
def test_channels_last_step_matches_contiguous_step(variant):
    """Same function in another memory layout: loss and gradients agree to float32 rounding, not bit for bit.

    Gradients rather than updated weights are compared: Adam's first step moves every
    weight by ±lr whatever the gradient's size, so a rounding-level gradient flips it.
    """
    batch = random_batch("mnist_svhn_text", 16, torch.Generator().manual_seed(3))

    def one_step(channels_last: bool) -> tuple[dict[str, torch.Tensor], float]:
        torch.manual_seed(0)
        cfg = mst_config(variant.endswith("-ms"), channels_last=channels_last)
        step = TrainingStep(build_model("mnist_svhn_text", variant, cfg), cfg, torch.device("cpu"))
        loss, _ = step(batch)
        return dict(step.model.named_parameters()), loss.item()

    fast, fast_loss = one_step(True)
    plain, plain_loss = one_step(False)
    conv_weights = [name for name, p in fast.items() if p.dim() == 4]
    assert conv_weights and all(fast[n].is_contiguous(memory_format=torch.channels_last) for n in conv_weights)
    assert not any(plain[n].is_contiguous(memory_format=torch.channels_last) for n in conv_weights)
    assert fast_loss == pytest.approx(plain_loss, rel=1e-6)
    for name, p in fast.items():
        scale = plain[name].grad.abs().max().item()
        torch.testing.assert_close(p.grad, plain[name].grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_training_step_is_fused_adam_with_the_reference_settings():
    """Adam's first step in closed form: m = g, v = g² after bias correction, so w ← w − lr·g/(|g| + 1e-8)."""
    cfg = mst_config(False)
    torch.manual_seed(0)
    step = TrainingStep(build_model("mnist_svhn_text", "mmjsd", cfg), cfg, torch.device("cpu"))
    assert step.optimizer.param_groups[0]["fused"]
    before = {name: p.detach().clone() for name, p in step.model.named_parameters()}
    step(random_batch("mnist_svhn_text", 16, torch.Generator().manual_seed(4)))
    for name, p in step.model.named_parameters():
        expected = before[name] - cfg.lr * p.grad / (p.grad.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-7, msg=name)


def test_term_weights_follow_the_reference_loss():
    """L = sum w_m NLL_m + beta (beta_content D + beta_style sum_m s_m KL_style,m); MVAE adds unimodal ELBOs."""
    cfg = mst_config(True)
    weights = build_model("mnist_svhn_text", "mmjsd-ms", cfg).term_weights()
    assert weights == pytest.approx(
        {
            "rec/mnist": 3072 / 784,
            "rec/svhn": 1.0,
            "rec/text": 384.0,
            "kl/content": 2.5,
            "kl/style/mnist": 7.5,
            "kl/style/svhn": 7.5,
            "kl/style/text": 37.5,
        }
    )
    mvae = build_model("mnist_svhn_text", "mvae-ms", cfg).term_weights()
    assert mvae["kl/style/text"] == pytest.approx(75.0)  # in the joint ELBO and in ELBO_text
    assert all(mvae[f"rec_unimodal/{m}"] == 1.0 and mvae[f"kl_unimodal/{m}"] == 2.5 for m in MST_MODALITIES)
    # CelebA (mmjsd job_celeba.sh): w_img 1, w_text 64·64/256; beta 2.5, beta_style 2, style weights 1 and 5.
    celeba = build_model("celeba", "mmjsd-ms", celeba_config()).term_weights()
    assert celeba == pytest.approx(
        {"rec/img": 1.0, "rec/text": 16.0, "kl/content": 2.5, "kl/style/img": 5.0, "kl/style/text": 25.0}
    )


@pytest.mark.parametrize("official", [False, True], ids=["corrected", "reference"])
def test_celeba_mvae_reconstruction_weights_switch(official, celeba_models):
    """reference: every CelebA MVAE reconstruction term, joint and unimodal, weighs 0.5 (the official flag default)."""
    departures = official_switches("mvae-ms", "celeba") if official else {}
    model = (
        build_model("celeba", "mvae-ms", celeba_config(departures=departures)) if official else celeba_models("mvae-ms")
    )
    weights = model.term_weights()
    expected = {"rec/img": 0.5, "rec/text": 0.5} if official else {"rec/img": 1.0, "rec/text": 16.0}
    unimodal = 0.5 if official else 1.0
    assert {k: weights[k] for k in expected} == expected
    assert weights["rec_unimodal/img"] == weights["rec_unimodal/text"] == unimodal
    assert weights["kl_unimodal/img"] == weights["kl/content"] == 2.5  # the KL weights do not move
    torch.manual_seed(0)
    loss, terms = model.forward_loss(random_batch("celeba", 4, torch.Generator().manual_seed(1)))
    assert_terms_add_up(model, loss, terms, "mvae-ms")


def test_same_seed_gives_identical_training():
    def run() -> tuple[list[float], list[torch.Tensor]]:
        torch.manual_seed(7)
        model = build_model("mnist_svhn_text", "mmjsd-ms", mst_config(True))
        optimiser = torch.optim.Adam(model.parameters(), 1e-3)
        batch = random_batch("mnist_svhn_text", 8, torch.Generator().manual_seed(2))
        losses = []
        for _ in range(3):
            loss, _ = model.forward_loss(batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        return losses, [p.detach().clone() for p in model.parameters()]

    first_losses, first_params = run()
    second_losses, second_params = run()
    assert first_losses == second_losses
    assert all(torch.equal(a, b) for a, b in zip(first_params, second_params, strict=True))


@pytest.mark.parametrize("variant", ["mmjsd", "mopoe"])
def test_short_training_run_lowers_the_loss(variant):
    batches = [random_batch("mnist_svhn_text", 8, torch.Generator().manual_seed(seed)) for seed in (10, 11)]
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", variant, mst_config(False))
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)

    def mean_loss() -> float:
        torch.manual_seed(99)
        with torch.no_grad():
            return sum(model.forward_loss(b)[0].item() for b in batches) / len(batches)

    before = mean_loss()
    for step in range(200):
        loss, _ = model.forward_loss(batches[step % 2])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert mean_loss() < 0.5 * before


# ---------------------------------------------- divergences on real encoder output
@pytest.mark.parametrize("official", [False, True], ids=["corrected", "reference"])
@pytest.mark.parametrize("variant", ["mvae-ms", "mmvae-ms", "mmjsd-ms", "mopoe-ms"])
def test_logged_kl_terms_match_independent_formulas(variant, official):
    """forward_loss's 'kl/content', 'kl/style/<m>' and MVAE's 'kl_unimodal/<m>', recomputed independently.

    With the training departures at ``reference``: mmJSD's dynamic prior takes every expert's
    variance + 1e-8, and MVAE's unimodal KL is that of the raw q(z | x_m).
    """
    torch.manual_seed(0)
    departures = official_switches(variant) if official else {}
    cfg = mst_config(True, div_weights={"prior": 0.1, "mnist": 0.2, "svhn": 0.3, "text": 0.4}, departures=departures)
    model = build_model("mnist_svhn_text", variant, cfg).double()
    batch = {m: x.double() for m, x in random_batch("mnist_svhn_text", 8, torch.Generator().manual_seed(3)).items()}
    with torch.no_grad():  # log-variances near -10, where the official +1e-8 moves the dynamic prior by ~1e-4
        for m in MST_MODALITIES:
            model.encoders[m].content_logvar.bias.fill_(-10.0)
    _, terms = model.forward_loss(batch)
    with torch.no_grad():
        encodings = model.encode(batch)
    expected = independent_content_divergence(
        variant.removesuffix("-ms"), encodings, cfg.div_weights, 1e-8 if official else 0.0
    )
    torch.testing.assert_close(terms["kl/content"], expected.mean(), rtol=1e-9, atol=0.0)
    if variant == "mmjsd-ms":  # the two conventions differ measurably here
        other = independent_content_divergence("mmjsd", encodings, cfg.div_weights, 0.0 if official else 1e-8)
        assert abs(float(other.mean() / expected.mean()) - 1.0) > 1e-6
    for m in MST_MODALITIES:
        style = normal(encodings[m].style_mu, encodings[m].style_logvar)
        style_kl = kl_divergence(style, standard_normal_like(style.loc)).sum(-1).mean()
        torch.testing.assert_close(terms[f"kl/style/{m}"], style_kl)
        if variant.startswith("mvae"):
            unimodal = (
                normal(encodings[m].content_mu, encodings[m].content_logvar)
                if official
                else poe_with_prior(encodings, (m,))
            )
            torch.testing.assert_close(
                terms[f"kl_unimodal/{m}"],
                kl_divergence(unimodal, standard_normal_like(unimodal.loc)).sum(-1).mean(),
                rtol=1e-6,
                atol=0.0,
            )


def stratified_rows(components: list[Normal], counts: list[int]) -> Normal:
    """Row blocks of ``counts[k]`` rows taken from component k, in order (the reference's stratified draw)."""
    starts = [sum(counts[:k]) for k in range(len(counts))]
    loc = torch.cat([q.loc[start : start + n] for q, start, n in zip(components, starts, counts, strict=True)])
    scale = torch.cat([q.scale[start : start + n] for q, start, n in zip(components, starts, counts, strict=True)])
    return Normal(loc, scale)


@pytest.mark.parametrize("official", [False, True], ids=["corrected", "reference"])
@pytest.mark.parametrize("variant", MST_VARIANTS)
def test_reconstruction_terms_match_an_independent_computation(variant, official):
    """rec/<m> (and MVAE's rec_unimodal/<m>): which latent decodes which modality, with which style.

    Written out from docs/reference-code.md §3 with torch.distributions, in float64 at batch 256 so the
    stratified blocks are the reference's 85/85/86 (MMVAE, mmJSD) and 6 × 36 + 40 (MoPoE). The
    draws replay the objectives' order from the global RNG: each modality's style sample, then
    the joint z, then (MVAE) one z per unimodal posterior. With the training departures at
    ``reference`` the text NLL is torch's one-hot categorical with the log-softmax as its
    probabilities, and each MVAE unimodal pass draws a fresh style sample after its z.
    """
    cfg = mst_config(variant.endswith("-ms"), departures=official_switches(variant) if official else {})
    model, batch, _, terms = float64_forward(variant, cfg, 256)

    torch.manual_seed(5)
    with torch.no_grad():
        encodings, styles = encodings_and_style_samples(model, batch, variant.endswith("-ms"))
        unimodal = [normal(encodings[m].content_mu, encodings[m].content_logvar) for m in MST_MODALITIES]
        objective = variant.removesuffix("-ms")
        if objective in ("mmvae", "mmjsd"):
            joint = stratified_rows(unimodal, [85, 85, 86])
        elif objective == "mvae":
            joint = poe_with_prior(encodings, MST_MODALITIES)
        else:
            subsets = [(m,) for m in MST_MODALITIES] + [
                ("mnist", "svhn"),
                ("mnist", "text"),
                ("svhn", "text"),
                MST_MODALITIES,
            ]
            components = [
                poe_with_prior(encodings, S) if S == MST_MODALITIES else poe_without_prior(encodings, S)
                for S in subsets
            ]
            joint = stratified_rows(components, [36] * 6 + [40])
        z = joint.loc + joint.scale * torch.randn_like(joint.loc)

        def reconstruction(m: str, content: torch.Tensor, style: dict[str, torch.Tensor]) -> torch.Tensor:
            latent = torch.cat([style[m], content], -1) if style else content
            return negative_log_likelihood(m, model.decoders[m].body(latent), batch[m], official).mean()

        for m in MST_MODALITIES:
            torch.testing.assert_close(terms[f"rec/{m}"], reconstruction(m, z, styles), rtol=1e-9, atol=0.0)
        if objective == "mvae":
            for m in MST_MODALITIES:
                q = poe_with_prior(encodings, (m,))
                z_m = q.loc + q.scale * torch.randn_like(q.loc)
                unimodal_styles = styles
                if official and styles:  # a fresh style draw of m after its content draw
                    style = normal(encodings[m].style_mu, encodings[m].style_logvar)
                    unimodal_styles = {m: style.loc + style.scale * torch.randn_like(style.loc)}
                    assert not torch.allclose(unimodal_styles[m], styles[m])
                torch.testing.assert_close(
                    terms[f"rec_unimodal/{m}"], reconstruction(m, z_m, unimodal_styles), rtol=1e-9, atol=0.0
                )


def poe_with_prior(encodings, subset) -> Normal:
    zero = torch.zeros_like(encodings[subset[0]].content_mu)
    return product_of_normals(
        [zero] + [encodings[m].content_mu for m in subset],
        [poe_logvar(zero)] + [poe_logvar(encodings[m].content_logvar) for m in subset],
    )


def independent_content_divergence(
    objective: str, encodings, div_weights, dynamic_prior_eps: float = 0.0
) -> torch.Tensor:
    """D_content per row, written out from docs/reference-code.md §3.2-3.5 with torch.distributions.

    ``dynamic_prior_eps`` is added to every expert's variance inside mmJSD's
    dynamic prior only (the official code's 1e-8).
    """
    modalities = tuple(encodings)
    unimodal = {m: normal(encodings[m].content_mu, encodings[m].content_logvar) for m in modalities}
    prior = standard_normal_like(encodings[modalities[0]].content_mu)
    if objective == "mvae":
        return kl_divergence(poe_with_prior(encodings, modalities), prior).sum(-1)
    if objective == "mmvae":
        return sum(kl_divergence(q, prior).sum(-1) for q in unimodal.values()) / len(modalities)
    if objective == "mmjsd":
        total = sum(div_weights.values())
        pi = [div_weights["prior"] / total] + [div_weights[m] / total for m in modalities]
        experts = [prior] + list(unimodal.values())
        dynamic = product_of_normals(
            [q.loc for q in experts], [torch.log(q.scale**2 + dynamic_prior_eps) for q in experts], pi
        )
        return sum(p * kl_divergence(q, dynamic).sum(-1) for p, q in zip(pi, experts, strict=True))
    subsets = (
        [(m,) for m in modalities]
        + [tuple(m for m in modalities if m != left_out) for left_out in reversed(modalities)]
        + [modalities]
    )
    assert len(subsets) == 2 ** len(modalities) - 1
    kls = []
    for subset in subsets:
        q = poe_with_prior(encodings, subset) if subset == modalities else poe_without_prior(encodings, subset)
        kls.append(kl_divergence(q, prior).sum(-1))
    return sum(kls) / len(kls)


# ---------------------------------------- divergences and posteriors on hand-made encodings
def test_mmjsd_divergence_on_hand_made_encodings():
    cfg = mst_config(False, div_weights={"prior": 0.1, "mnist": 0.2, "svhn": 0.3, "text": 0.4})
    model = build_model("mnist_svhn_text", "mmjsd", cfg)
    encodings = hand_made_encodings(MST_MODALITIES, 6, 20, seed=0)
    expected = independent_content_divergence("mmjsd", encodings, cfg.div_weights)
    torch.testing.assert_close(model.content_divergence(encodings), expected)
    assert (expected > 0).all()


def test_mmjsd_divergence_is_zero_when_every_posterior_is_the_prior():
    model = build_model("mnist_svhn_text", "mmjsd", mst_config(False))
    zeros = torch.zeros(4, 20)
    encodings = {m: Encoding(zeros, zeros) for m in MST_MODALITIES}
    torch.testing.assert_close(model.content_divergence(encodings), torch.zeros(4))


def test_mopoe_divergence_is_the_mean_of_subset_kls():
    model = build_model("mnist_svhn_text", "mopoe", mst_config(False))
    encodings = hand_made_encodings(MST_MODALITIES, 6, 20, seed=1)
    expected = independent_content_divergence("mopoe", encodings, None)
    torch.testing.assert_close(model.content_divergence(encodings), expected, rtol=1e-5, atol=1e-5)


def test_mmvae_divergence_is_the_mean_of_unimodal_kls():
    model = build_model("mnist_svhn_text", "mmvae", mst_config(False))
    encodings = hand_made_encodings(MST_MODALITIES, 6, 20, seed=2)
    expected = independent_content_divergence("mmvae", encodings, None)
    torch.testing.assert_close(model.content_divergence(encodings), expected)


def test_mvae_divergence_is_the_kl_of_the_joint_product_with_prior():
    model = build_model("mnist_svhn_text", "mvae", mst_config(False))
    encodings = hand_made_encodings(MST_MODALITIES, 6, 20, seed=3)
    expected = independent_content_divergence("mvae", encodings, None)
    torch.testing.assert_close(model.content_divergence(encodings), expected, rtol=1e-5, atol=1e-5)


def test_mmjsd_subset_posteriors():
    cfg = mst_config(False, div_weights={"prior": 0.1, "mnist": 0.2, "svhn": 0.3, "text": 0.4})
    model = build_model("mnist_svhn_text", "mmjsd", cfg)
    encodings = hand_made_encodings(MST_MODALITIES, 5, 20, seed=4)
    pair = model.subset_posterior(encodings, ("text", "svhn"))
    assert isinstance(pair, MixturePosterior)
    assert pair.weights == pytest.approx((3 / 7, 4 / 7))
    assert torch.equal(pair.mus[0], encodings["svhn"].content_mu)
    assert torch.equal(pair.mus[1], encodings["text"].content_mu)
    single = model.subset_posterior(encodings, ("svhn",))
    assert isinstance(single, GaussianPosterior) and torch.equal(single.mu, encodings["svhn"].content_mu)


def test_mmvae_subset_posterior_is_uniform_mixture():
    cfg = mst_config(False, div_weights={"prior": 0.1, "mnist": 0.2, "svhn": 0.3, "text": 0.4})
    model = build_model("mnist_svhn_text", "mmvae", cfg)
    posterior = model.subset_posterior(hand_made_encodings(MST_MODALITIES, 5, 20, seed=5), MST_MODALITIES)
    assert posterior.weights == pytest.approx((1 / 3,) * 3)


def test_mopoe_and_mvae_subset_posteriors_place_the_prior_expert_as_documented():
    encodings = hand_made_encodings(MST_MODALITIES, 5, 20, seed=6)
    mopoe = build_model("mnist_svhn_text", "mopoe", mst_config(False))
    mvae = build_model("mnist_svhn_text", "mvae", mst_config(False))
    pair = ("mnist", "text")
    cases = [
        (mopoe.subset_posterior(encodings, pair), poe_without_prior(encodings, pair)),
        (mopoe.subset_posterior(encodings, MST_MODALITIES), poe_with_prior(encodings, MST_MODALITIES)),
        (mvae.subset_posterior(encodings, pair), poe_with_prior(encodings, pair)),
        (mvae.subset_posterior(encodings, ("svhn",)), poe_with_prior(encodings, ("svhn",))),
    ]
    for posterior, expected in cases:
        assert isinstance(posterior, GaussianPosterior)
        torch.testing.assert_close(posterior.mu, expected.loc, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(posterior.logvar, 2 * expected.scale.log(), rtol=1e-5, atol=1e-5)


def _component_of_each_row(posterior: MixturePosterior) -> list[int]:
    """Which component each row of one training draw came from (components are far apart, variances tiny)."""
    z = posterior.sample()[0]
    distances = ((z.unsqueeze(0) - posterior.mus) ** 2).sum(-1)  # [C, B]
    return distances.argmin(0).tolist()


def _separated_encodings(modalities, batch_size: int, dim: int) -> dict[str, Encoding]:
    return {
        m: Encoding(torch.full((batch_size, dim), 50.0 * (k + 1)), torch.full((batch_size, dim), -18.0))
        for k, m in enumerate(modalities)
    }


def test_mmjsd_and_mmvae_reconstruct_from_85_85_86_stratified_rows():
    encodings = _separated_encodings(MST_MODALITIES, 256, 20)
    for objective in ("mmjsd", "mmvae"):
        model = build_model("mnist_svhn_text", objective, mst_config(False))
        rows = _component_of_each_row(model.joint_posterior(encodings))
        assert rows == [0] * 85 + [1] * 85 + [2] * 86


def test_mmjsd_celeba_weights_give_128_128_rows(celeba_models):
    """pi = .3/.35/.35 with the prior zeroed gives 1/2 each: 128/128 rows of 256."""
    model = celeba_models("mmjsd-ms")
    rows = _component_of_each_row(model.joint_posterior(_separated_encodings(("img", "text"), 256, 32)))
    assert rows == [0] * 128 + [1] * 128


def test_mopoe_reconstructs_from_36x6_plus_40_stratified_rows():
    model = build_model("mnist_svhn_text", "mopoe", mst_config(False))
    joint = model.joint_posterior(hand_made_encodings(MST_MODALITIES, 256, 20, seed=7))
    assert isinstance(joint, MixturePosterior) and joint.mus.shape == (7, 256, 20)
    counts = torch.bincount(joint.component_index(1)[0], minlength=7)
    assert counts.tolist() == [36] * 6 + [40]


# -------------------------------------------------------------- evaluation API
def test_evaluation_api_on_a_partial_batch():
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", "mmjsd-ms", mst_config(True))
    batch = random_batch("mnist_svhn_text", 6, torch.Generator().manual_seed(4))
    with torch.no_grad():
        encodings = model.encode({"svhn": batch["svhn"], "text": batch["text"]})
        assert set(encodings) == {"svhn", "text"}
        posterior = model.subset_posterior(encodings, ("svhn", "text"))
        gen = torch.Generator().manual_seed(0)
        z = posterior.sample(2, generator=gen).reshape(12, 16)
        styles = model.prior_styles(12, generator=gen)
        assert {m: s.shape for m, s in styles.items()} == dict.fromkeys(MST_MODALITIES, (12, 4))
        decoded = model.decode(z, styles)
        assert {m: tuple(d.shape[1:]) for m, d in decoded.items()} == data_shapes("mnist_svhn_text")
        repeated = {m: x.repeat(2, *[1] * (x.dim() - 1)) for m, x in batch.items()}
        log_liks = model.log_likelihoods(decoded, repeated)
        assert all(v.shape == (12,) and torch.isfinite(v).all() for v in log_liks.values())
        generated = model.generate_means(decoded)
        assert generated["mnist"].min() >= 0 and generated["svhn"].max() <= 1
        assert torch.equal(generated["text"].sum(-1), torch.ones(12, 8))
        with pytest.raises(KeyError, match="style"):
            model.decode(z, {})


def test_evaluation_sampling_uses_the_generator_not_the_global_rng():
    model = build_model("mnist_svhn_text", "mopoe-ms", mst_config(True))
    encodings = {
        m: Encoding(torch.zeros(3, 16), torch.zeros(3, 16), torch.zeros(3, 4), torch.zeros(3, 4))
        for m in MST_MODALITIES
    }
    torch.manual_seed(5)
    state = torch.get_rng_state()
    first = model.posterior_styles(encodings, torch.Generator().manual_seed(1))
    second = model.posterior_styles(encodings, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(first[m], second[m]) for m in MST_MODALITIES)
    posteriors = model.style_posteriors(encodings)
    assert set(posteriors) == set(MST_MODALITIES) and posteriors["text"].sample(12).shape == (12, 3, 4)


def test_subsets_follow_the_documented_order():
    model = build_model("mnist_svhn_text", "mopoe", mst_config(False))
    assert model.subsets == [
        ("mnist",),
        ("svhn",),
        ("text",),
        ("mnist", "svhn"),
        ("mnist", "text"),
        ("svhn", "text"),
        MST_MODALITIES,
    ]


def test_bad_inputs_are_refused():
    model = build_model("mnist_svhn_text", "mmvae", mst_config(False))
    batch = random_batch("mnist_svhn_text", 2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="lacks"):
        model.forward_loss({"mnist": batch["mnist"]})
    with pytest.raises(ValueError, match="not modalities"):
        model.encode({"img_mnist": batch["mnist"]})
    with pytest.raises(ValueError, match="subset"):
        model.subset_posterior(model.encode(batch), ("mnist", "mnist"))


def test_build_model_classes_and_config_checks():
    classes = {"mvae": MVAE, "mmvae": MMVAE, "mmjsd": MMJSD, "mopoe": MoPoE}
    assert list(registry.OBJECTIVES.names()) == list(classes)  # the paper's row order
    for spec in registry.OBJECTIVES:
        model = build_model("mnist_svhn_text", spec.name, mst_config(False))
        assert type(model) is classes[spec.name] and model.objective == spec.name and model.modalities == MST_MODALITIES
        assert f"{type(model).__module__}:{type(model).__name__}" == spec.model
    with pytest.raises(UserError, match="style_dim"):
        build_model("mnist_svhn_text", "mmjsd-ms", mst_config(False))
    with pytest.raises(UserError, match="style_dim"):
        build_model("mnist_svhn_text", "mmjsd", mst_config(True))
    with pytest.raises(UserError, match="unknown variant"):
        build_model("mnist_svhn_text", "jsd", mst_config(False))
    with pytest.raises(UserError, match="unknown dataset"):
        build_model("polymnist", "mmjsd", mst_config(False))
