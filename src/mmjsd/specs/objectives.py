"""The four objectives of the mmJSD paper, in its row order (docs/reference-code.md §3)."""

from __future__ import annotations

from mmjsd.core.registry import ObjectiveSpec, register_objective

register_objective(
    ObjectiveSpec(
        name="mvae",
        label="MVAE",
        model="mmjsd.models.mvae:MVAE",
        description="Product of experts with the prior; joint plus unimodal ELBOs (Wu & Goodman 2018).",
    )
)
register_objective(
    ObjectiveSpec(
        name="mmvae",
        label="MMVAE",
        model="mmjsd.models.mmvae:MMVAE",
        description="Mixture of unimodal experts; mean of the unimodal KLs to the prior (Shi et al. 2019).",
    )
)
register_objective(
    ObjectiveSpec(
        name="mmjsd",
        label="mmJSD",
        model="mmjsd.models.mmjsd:MMJSD",
        description=(
            "Mixture of unimodal experts; multimodal Jensen-Shannon divergence with a "
            "dynamic prior (Sutter et al. 2020)."
        ),
    )
)
register_objective(
    ObjectiveSpec(
        name="mopoe",
        label="MoPoE",
        model="mmjsd.models.mopoe:MoPoE",
        description="Mixture of the products of experts of every subset (Sutter et al. 2021).",
    )
)
