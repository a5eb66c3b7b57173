"""MVTCAE, the example plugin objective (examples/plugins/mvtcae): its loss against an independent computation.

The loss is written out here from the equation in the model's docstring with
torch.distributions (products of Gaussians in closed form, KLs by ``kl_divergence``,
Laplace and categorical log-likelihoods), in float64, replaying the draws of the global
RNG: each modality's style sample, then the joint z.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.distributions import Normal, kl_divergence

from helpers import (
    MST_MODALITIES,
    assert_every_network_gets_gradient,
    encodings_and_style_samples,
    float64_forward,
    mst_config,
    negative_log_likelihood,
    normal,
    poe_without_prior,
    random_batch,
)
from mmjsd.core import registry
from mmjsd.core.config import config_from_dict, deep_merge, load_config
from mmjsd.core.errors import UserError
from mmjsd.models import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "examples" / "plugins" / "mvtcae"
ALPHA = 0.75


@pytest.fixture(scope="module", autouse=True)
def mvtcae_plugin():
    """The plugin loaded as the config would load it; the registry is restored afterwards."""
    sys.path.insert(0, str(PLUGIN_DIR))
    with registry.restored_registries():
        registry.load_plugins(["mmjsd_mvtcae.plugin"])
        yield
    sys.path.remove(str(PLUGIN_DIR))


def mvtcae_config(ms: bool, alpha: float = ALPHA):
    return mst_config(ms, objective={"alpha": alpha})


@pytest.mark.parametrize("variant", ["mvtcae", "mvtcae-ms"])
def test_loss_matches_an_independent_computation(variant):
    ms = variant.endswith("-ms")
    cfg = mvtcae_config(ms)
    model, batch, loss, terms = float64_forward(variant, cfg, 16)

    torch.manual_seed(5)
    with torch.no_grad():
        encodings, styles = encodings_and_style_samples(model, batch, ms)
        experts = {m: normal(encodings[m].content_mu, encodings[m].content_logvar) for m in MST_MODALITIES}
        joint = poe_without_prior(encodings, MST_MODALITIES)  # the authors' poe: each variance + 1e-8
        z = joint.loc + joint.scale * torch.randn_like(joint.loc)
        prior = Normal(torch.zeros_like(joint.loc), torch.ones_like(joint.loc))

        def nll(m: str) -> torch.Tensor:
            latent = torch.cat([styles[m], z], -1) if ms else z
            return negative_log_likelihood(m, model.decoders[m].body(latent), batch[m]).mean()

        count = len(MST_MODALITIES)
        vib = kl_divergence(joint, prior).sum(-1).mean()
        cvib = {m: kl_divergence(joint, experts[m]).sum(-1).mean() for m in MST_MODALITIES}
        expected = (count - ALPHA) / count * sum(cfg.rec_weights[m] * nll(m) for m in MST_MODALITIES)
        expected = expected + cfg.beta * cfg.beta_content * ((1 - ALPHA) * vib + ALPHA / count * sum(cvib.values()))
        if ms:
            for m in MST_MODALITIES:
                style = normal(encodings[m].style_mu, encodings[m].style_logvar)
                style_kl = (
                    kl_divergence(style, Normal(torch.zeros_like(style.loc), torch.ones_like(style.loc))).sum(-1).mean()
                )
                torch.testing.assert_close(terms[f"kl/style/{m}"], style_kl, rtol=1e-9, atol=0.0)
                expected = expected + cfg.beta * cfg.beta_style * cfg.style_weights[m] * style_kl

    torch.testing.assert_close(terms["kl/content"], vib, rtol=1e-9, atol=0.0)
    for m in MST_MODALITIES:
        torch.testing.assert_close(terms[f"kl/cvib/{m}"], cvib[m], rtol=1e-9, atol=0.0)
        torch.testing.assert_close(terms[f"rec/{m}"], nll(m), rtol=1e-9, atol=0.0)
    torch.testing.assert_close(loss, expected, rtol=1e-9, atol=0.0)
    assert cvib["text"] > 0 and vib > 0


def test_alpha_zero_is_a_vae_on_the_product_and_alpha_one_drops_the_prior_term():
    """The two ends of alpha: (1 - alpha) KL to the prior only, or (1/M) sum of
    the conditional KLs with rec weight (M-1)/M."""
    vae = build_model("mnist_svhn_text", "mvtcae", mvtcae_config(False, alpha=0.0)).term_weights()
    assert vae["kl/content"] == pytest.approx(2.5) and all(vae[f"kl/cvib/{m}"] == 0.0 for m in MST_MODALITIES)
    assert vae["rec/svhn"] == pytest.approx(1.0)
    conditional = build_model("mnist_svhn_text", "mvtcae", mvtcae_config(False, alpha=1.0)).term_weights()
    assert conditional["kl/content"] == 0.0 and conditional["kl/cvib/text"] == pytest.approx(2.5 / 3)
    assert conditional["rec/text"] == pytest.approx(384.0 * 2 / 3)


def test_training_step_reaches_every_network_and_terms_add_up():
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", "mvtcae-ms", mvtcae_config(True))
    loss, terms = model.forward_loss(random_batch("mnist_svhn_text", 8, torch.Generator().manual_seed(2)))
    loss.backward()
    assert_every_network_gets_gradient(model)
    weights = model.term_weights()
    assert set(terms) == set(weights)
    torch.testing.assert_close(sum(weights[k] * terms[k] for k in terms), loss, rtol=1e-6, atol=1e-3)


def test_subset_posteriors_are_products_without_the_prior():
    model = build_model("mnist_svhn_text", "mvtcae", mvtcae_config(False)).double()
    gen = torch.Generator().manual_seed(3)
    encodings = {m: model.encoders[m](x.double()) for m, x in random_batch("mnist_svhn_text", 4, gen).items()}
    for subset in (("svhn", "text"), MST_MODALITIES, ("mnist",)):
        expected = poe_without_prior(encodings, subset)
        posterior = model.subset_posterior(encodings, subset)
        torch.testing.assert_close(posterior.mu, expected.loc)
        torch.testing.assert_close(torch.exp(0.5 * posterior.logvar), expected.scale)


def test_settings_are_checked_at_config_time(monkeypatch):
    monkeypatch.chdir(ROOT)  # the overlay's plugin_paths start at the working directory
    files = [ROOT / "config.yaml", ROOT / "workflow" / "presets" / "ci.yaml", PLUGIN_DIR / "config.yaml"]
    cfg = load_config(*files)
    assert cfg.train_config("mnist_svhn_text", "mvtcae").objective == {"alpha": 0.75}
    assert cfg.train_config("celeba", "mvtcae-ms").objective == {"alpha": pytest.approx(2 / 3)}
    raw = {}
    for path in files:
        raw = deep_merge(raw, yaml.safe_load(path.read_text()))
    del raw["training"]["mnist_svhn_text"]["objectives"]["mvtcae"]
    with pytest.raises(
        UserError, match=re.escape("config key 'training.mnist_svhn_text.objectives.mvtcae' is missing")
    ):
        config_from_dict(raw)
    raw["training"]["mnist_svhn_text"]["objectives"]["mvtcae"] = {"alpha": 1.5}
    with pytest.raises(UserError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        config_from_dict(raw)
