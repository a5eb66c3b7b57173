"""MMVAE (Shi et al. 2019) as the mmJSD/MoPoE authors re-implemented it (docs/reference-code.md §3.3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmjsd.models.base import Encodings, MultimodalVAE
from mmjsd.models.distributions import constant_tensor, weighted_kl_standard_normal
from mmjsd.models.posteriors import Posterior


class MMVAE(MultimodalVAE):
    """Mixture-of-experts posterior with uniform weights over the unimodal posteriors.

    q(z | X_S) = (1/|S|) sum_{m in S} q(z | x_m).

    Loss = sum_m w_m NLL_m(z) + beta·(D_content + style terms), with
    D_content = (1/M) sum_m KL(q(z | x_m) || N(0, I)) and z one stratified draw per row from
    the mixture: contiguous row blocks (85/85/86 of 256) each take one component, and that
    z reconstructs every modality.

    Departures from Shi et al.'s objective (a K-sample IWAE/DReG bound in which every
    component reconstructs every modality for every data point, and the KL of the mixture):

    * this is the authors' simplified MoE-ELBO that both papers' tables compare against:
      one sample per row from one component instead of the expectation over all
      components, no importance weighting;
    * D_content is the average of the unimodal KLs, a Jensen upper bound on the mixture's
      KL, which is never evaluated;
    * beta (2.5) and the rec weights w_m are the reference's hyper-parameters. The
      ``div_weights`` are not used: mmjsd's "moe" renormalises them with the prior zeroed,
      which gives uniform weights in every shipped configuration, and MoPoE's is uniform.

    Departure from the official code in this objective (docs/departures.md): only ``text_likelihood``, shared by
    every objective (:mod:`mmjsd.models.likelihoods`).
    """

    objective = "mmvae"

    def subset_posterior(self, encodings: Encodings, subset: Sequence[str]) -> Posterior:
        """Uniform mixture of q(z | x_m), m in S (docs/reference-code.md §3.7)."""
        return self.unimodal_mixture(encodings, subset, dict.fromkeys(self.modalities, 1.0))

    def content_divergence(self, encodings: Encodings, joint: Posterior | None = None) -> torch.Tensor:
        """(1/M) sum_m KL(q(z | x_m) || N(0, I)) per row."""
        mus, logvars = self.stacked_experts(encodings, self.modalities)
        uniform = constant_tensor((1.0 / len(self.modalities),) * len(self.modalities), mus.device, mus.dtype)
        return weighted_kl_standard_normal(mus, logvars, uniform)
