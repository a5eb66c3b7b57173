"""Per-modality networks (docs/reference-code.md §2.1, §2.3) and output likelihoods (§2.5, docs/design.md §4)."""

from __future__ import annotations

import math

import pytest
import torch

from mmjsd.core import registry
from mmjsd.models.likelihoods import (
    LAPLACE_SCALE,
    CategoricalText,
    LaplaceImage,
    categorical_log_likelihood,
    dataset_likelihoods,
    laplace_log_likelihood,
)
from mmjsd.models.networks import celeba, data_shapes, dataset_networks, mst


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- parameter counts
MST_ENCODER_COUNTS = {"mnist": 330_040, "svhn": 236_360, "text": 145_704}
MST_DECODER_COUNTS = {"mnist": 322_784, "svhn": 233_763, "text": 143_175}


def test_mst_parameter_counts_match_reference_without_style():
    encoders, decoders = mst.build_networks(20, {"mnist": 0, "svhn": 0, "text": 0})
    assert {m: _count(e) for m, e in encoders.items()} == MST_ENCODER_COUNTS
    assert {m: _count(d) for m, d in decoders.items()} == MST_DECODER_COUNTS
    assert sum(map(_count, encoders.values())) + sum(map(_count, decoders.values())) == 1_411_826


def test_mst_parameter_total_is_the_same_with_style_16_plus_4():
    encoders, decoders = mst.build_networks(16, {"mnist": 4, "svhn": 4, "text": 4})
    assert sum(map(_count, encoders.values())) + sum(map(_count, decoders.values())) == 1_411_826


#: Measured here (class 32, style 32); docs/reference-code.md §2.3 gives 21.56 M, 21.91 M, 13.25 M, 13.60 M.
CELEBA_COUNTS = {
    ("encoder", "img"): 21_559_040,
    ("decoder", "img"): 21_912_323,
    ("encoder", "text"): 13_250_816,
    ("decoder", "text"): 13_604_039,
}
CELEBA_REFERENCE_MILLIONS = {
    ("encoder", "img"): 21.56,
    ("decoder", "img"): 21.91,
    ("encoder", "text"): 13.25,
    ("decoder", "text"): 13.60,
}


@pytest.fixture(scope="module")
def celeba_networks():
    torch.manual_seed(0)
    encoders, decoders = celeba.build_networks(32, {"img": 32, "text": 32})
    return {("encoder", m): e for m, e in encoders.items()} | {("decoder", m): d for m, d in decoders.items()}


def test_celeba_parameter_counts_pinned_and_match_reference_to_0_01_million(celeba_networks):
    counts = {key: _count(net) for key, net in celeba_networks.items()}
    assert counts == CELEBA_COUNTS
    for key, millions in CELEBA_REFERENCE_MILLIONS.items():
        assert abs(counts[key] / 1e6 - millions) < 0.01, key


# ---------------------------------------------------------------------- shapes
@pytest.mark.parametrize("style_dim", [0, 4])
def test_mst_shapes_and_style_heads(style_dim):
    torch.manual_seed(0)
    styles = dict.fromkeys(mst.DATA_SHAPES, style_dim)
    encoders, decoders = mst.build_networks(16, styles)
    for m, shape in mst.DATA_SHAPES.items():
        encoding = encoders[m](torch.rand(5, *shape))
        assert encoding.content_mu.shape == encoding.content_logvar.shape == (5, 16)
        if style_dim:
            assert encoding.style_mu.shape == encoding.style_logvar.shape == (5, style_dim)
        else:
            assert encoding.style_mu is None and encoding.style_logvar is None
        style = torch.randn(5, style_dim) if style_dim else None
        assert decoders[m](torch.randn(5, 16), style).shape == (5, *shape)


def test_celeba_shapes(celeba_networks):
    torch.manual_seed(0)
    for m, shape in celeba.DATA_SHAPES.items():
        encoding = celeba_networks[("encoder", m)](torch.rand(2, *shape))
        assert encoding.content_mu.shape == encoding.style_mu.shape == (2, 32)
        assert celeba_networks[("decoder", m)](torch.randn(2, 32), torch.randn(2, 32)).shape == (2, *shape)


def test_data_shapes_follow_the_file_formats():
    assert {name: data_shapes(name) for name in registry.DATASETS.names()} == {
        "mnist_svhn_text": {"mnist": (1, 28, 28), "svhn": (3, 32, 32), "text": (8, 71)},
        "celeba": {"img": (3, 64, 64), "text": (256, 71)},
    }
    assert (
        dataset_networks("mnist_svhn_text") is mst.build_networks
        and dataset_networks("celeba") is celeba.build_networks
    )


def test_decoder_input_is_style_then_content():
    """Zeroing the first style_dim input columns of the first layer removes the style's influence."""
    torch.manual_seed(0)
    _, decoders = mst.build_networks(16, {"mnist": 4, "svhn": 4, "text": 4})
    decoder = decoders["svhn"]
    first_linear = decoder.body[0]
    assert first_linear.in_features == 20
    with torch.no_grad():
        first_linear.weight[:, :4] = 0.0
    content = torch.randn(3, 16)
    torch.testing.assert_close(decoder(content, torch.randn(3, 4)), decoder(content, torch.randn(3, 4)))


def test_mnist_decoder_location_is_in_unit_interval_and_svhn_is_unbounded():
    torch.manual_seed(0)
    _, decoders = mst.build_networks(20, {"mnist": 0, "svhn": 0, "text": 0})
    z = 30 * torch.randn(64, 20)
    mnist_loc = decoders["mnist"](z)
    assert mnist_loc.min() >= 0 and mnist_loc.max() <= 1
    svhn_loc = decoders["svhn"](z)
    assert svhn_loc.min() < 0 or svhn_loc.max() > 1


# -------------------------------------------------------------------- likelihoods
def test_laplace_log_likelihood_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    x, loc = torch.rand(4, 3, 5, 5, generator=gen), torch.randn(4, 3, 5, 5, generator=gen)
    expected = torch.distributions.Laplace(loc, LAPLACE_SCALE).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(laplace_log_likelihood(x, loc), expected)
    torch.testing.assert_close(LaplaceImage().log_likelihood(loc, x), expected)
    assert LAPLACE_SCALE == 0.75
    # A perfect location scores -log(1.5) per element.
    assert laplace_log_likelihood(x, x)[0].item() == pytest.approx(-75 * math.log(1.5), rel=1e-6)


def test_categorical_log_likelihood_is_log_softmax_at_the_target():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 8, 71, generator=gen)
    targets = torch.randint(0, 71, (4, 8), generator=gen)
    one_hot = torch.nn.functional.one_hot(targets, 71).float()
    expected = torch.distributions.Categorical(logits=logits).log_prob(targets).sum(1)
    torch.testing.assert_close(categorical_log_likelihood(one_hot, logits), expected)
    torch.testing.assert_close(CategoricalText().log_likelihood(logits, one_hot), expected)
    # Training raises the target's softmax probability (proper logits, not the reference's inverted convention).
    boosted = logits + 5.0 * one_hot
    assert (categorical_log_likelihood(one_hot, boosted) > expected).all()


def test_generated_text_is_one_hot_argmax_of_softmax():
    logits = torch.randn(3, 8, 71, generator=torch.Generator().manual_seed(0))
    generated = CategoricalText().generate(logits)
    assert generated.shape == (3, 8, 71)
    assert torch.equal(generated.sum(-1), torch.ones(3, 8))
    assert torch.equal(generated.argmax(-1), torch.softmax(logits, -1).argmax(-1))


def test_generated_images_are_the_unbounded_location():
    """The Laplace mean, as the reference's ``.mean``; consumers clamp (coherence by its switch, PRD by quantising)."""
    loc = torch.tensor([[-0.5, 0.25, 1.5]])
    assert torch.equal(LaplaceImage().generate(loc), loc)


def test_reference_text_likelihood_is_torch_one_hot_categorical_with_log_softmax_as_probs():
    """The official parametrisation, checked against torch.distributions as the official code calls it."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 8, 71, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 71, (4, 8), generator=gen)
    one_hot = torch.nn.functional.one_hot(targets, 71).double()
    official = torch.distributions.OneHotCategorical(probs=torch.log_softmax(logits, -1))
    torch.testing.assert_close(
        CategoricalText(official=True).log_likelihood(logits, one_hot),
        official.log_prob(one_hot).sum(1),
        rtol=1e-12,
        atol=0,
    )
    generated = CategoricalText(official=True).generate(logits)
    torch.testing.assert_close(generated, official.mean, rtol=1e-12, atol=0)
    # the inverted convention: the most likely generated character is the softmax's least likely one
    assert torch.equal(generated.argmax(-1), torch.softmax(logits, -1).argmin(-1))
    # and it differs from the corrected likelihood
    assert not torch.allclose(CategoricalText().log_likelihood(logits, one_hot), official.log_prob(one_hot).sum(1))


def test_likelihoods_follow_the_text_likelihood_switch():
    for dataset, images in (("mnist_svhn_text", ("mnist", "svhn")), ("celeba", ("img",))):
        for official in (False, True):
            likelihoods = dataset_likelihoods(
                dataset, lambda departure, official=official: official and departure == "text_likelihood"
            )
            assert set(likelihoods) == set(images) | {"text"}
            assert isinstance(likelihoods["text"], CategoricalText) and likelihoods["text"].official is official
            assert all(isinstance(likelihoods[m], LaplaceImage) for m in images)
