"""MoPoE-VAE (Sutter et al. 2021) as the MoPoE repository implements it (docs/reference-code.md §3.5)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmjsd.models.base import Encodings, MultimodalVAE
from mmjsd.models.distributions import weighted_kl_standard_normal
from mmjsd.models.posteriors import GaussianPosterior, MixturePosterior, Posterior


class MoPoE(MultimodalVAE):
    """Mixture over all 2^M - 1 non-empty subsets of the products of their experts.

    q_s = PoE(q(z | x_m) for m in s), plus the N(0, I) expert only when s is the full set;
    every expert's variance + 1e-8. Subsets in the documented order (by size, then
    modality order; MST: mnist, svhn, text, mnist+svhn, mnist+text, svhn+text, all).

    * training posterior: the uniform mixture (1/(2^M - 1)) sum_s q_s, one stratified draw
      per row (MST: 36 rows for each of the first 6 subsets, 40 for the full set) that
      reconstructs every modality;
    * D_content = (1/(2^M - 1)) sum_s KL(q_s || N(0, I));
    * q(z | X_S) for evaluation is the subset's own q_S (the reference's
      ``inference()['subsets'][S]``), not the mixture over the subsets of S.

    Departures from the paper's objective (E_{q(z|X)}[log p(X | z)] - KL(q(z|X) || p(z))
    with q(z|X) the mixture of subset PoEs):

    * one stratified sample per row (one subset per row) replaces the expectation over
      the mixture;
    * D_content is the average of the subset KLs, the Jensen upper bound on the mixture's
      KL, which is never computed;
    * the prior expert joins the product only for the full set, as the code does;
    * beta (2.5) and the rec weights w_m are the reference's hyper-parameters; the
      ``div_weights`` are ignored (uniform subset weights), as in the MoPoE repository.

    Departure from the official code in this objective (docs/departures.md): only ``text_likelihood``, shared by
    every objective (:mod:`mmjsd.models.likelihoods`).
    """

    objective = "mopoe"

    def subset_posterior(self, encodings: Encodings, subset: Sequence[str]) -> GaussianPosterior:
        """PoE of the experts in S, with N(0, I) only when S is every modality (docs/reference-code.md §3.7)."""
        subset = self.canonical_subset(subset)
        return self.product_posterior(encodings, subset, with_prior=subset == self.modalities)

    def subset_mixture_components(self, encodings: Encodings) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances of every subset's q_s, stacked to [2^M - 1, B, D] in subset order."""
        posteriors = [self.subset_posterior(encodings, s) for s in self.subsets]
        return torch.stack([p.mu for p in posteriors]), torch.stack([p.logvar for p in posteriors])

    def joint_posterior(self, encodings: Encodings) -> MixturePosterior:
        """The uniform mixture of all subset posteriors, sampled by stratified selection."""
        mus, logvars = self.subset_mixture_components(encodings)
        return MixturePosterior(mus, logvars, (1.0 / len(self.subsets),) * len(self.subsets))

    def content_divergence(self, encodings: Encodings, joint: Posterior | None = None) -> torch.Tensor:
        """(1/(2^M - 1)) sum_s KL(q_s || N(0, I)) per row: the KLs of the joint mixture's components."""
        joint = joint if joint is not None else self.joint_posterior(encodings)
        return weighted_kl_standard_normal(joint.mus, joint.logvars, joint.weight_tensor(joint.mus))
