"""Conditional and random generation from encoded batches (coherence, PRD; docs/metrics.md §5.2-5.3, §2.1).

A *source* is either a subset S of modalities (conditional generation) or :data:`RANDOM`
(generation from the prior). For one batch of B encoded rows each source gives B latent
draws:

* subset S: one z per row from ``model.subset_posterior(encodings, S)`` (a mixture draws
  by the stratified selection of :class:`~mmjsd.models.posteriors.MixturePosterior`, so
  contiguous blocks of the batch use each expert, as the reference does); the style of
  each modality in S is drawn from its style posterior q(s_m | x_m), every other style
  from the prior N(0, I);
* random: z ~ N(0, I) and every style from the prior.

:func:`generate_means` stacks the draws of all sources (source-major: source i owns rows
i·B to (i+1)·B) and runs each decoder **once** on the stack, returning the decoder means
(``model.generate_means``: unbounded Laplace means, which the consumers clamp, and text as
the run's text likelihood generates it). Draw order, all from
one ``torch.Generator``: per source in the given order, z, then the posterior styles of
the modalities in S (canonical order), then prior styles for every styled modality.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from mmjsd.models import Encodings, MultimodalVAE

if TYPE_CHECKING:
    from mmjsd.evaluation.runs import EncodedRows
from mmjsd.models.distributions import subset_key

#: The source that generates from the prior instead of a subset posterior.
RANDOM = "random"

Source = tuple[str, ...] | str


def source_key(source: Source) -> str:
    """``random`` or the subset's canonical name (``mnist+svhn``), the left side of ``S->m`` keys."""
    return RANDOM if source == RANDOM else subset_key(source)


def generation_key(source: Source, modality: str) -> str:
    """``S->m`` or ``random->m`` (docs/file-formats.md)."""
    return f"{source_key(source)}->{modality}"


def latent_draws(
    model: MultimodalVAE, encodings: Encodings, source: Source, num_rows: int, generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One content draw ``[B, D]`` and one style draw per styled modality ``[B, d_m]`` for ``source``."""
    if source == RANDOM:
        reference = next(model.parameters())
        z = torch.randn(num_rows, model.shared_dim, generator=generator, device=reference.device, dtype=reference.dtype)
        return z, model.prior_styles(num_rows, generator)
    z = model.subset_posterior(encodings, source).sample(1, generator)[0]
    posterior_styles = model.posterior_styles({m: encodings[m] for m in source}, generator)
    return z, {**model.prior_styles(num_rows, generator), **posterior_styles}


def generate_means(
    model: MultimodalVAE,
    encodings: Encodings,
    sources: Sequence[Source],
    modalities: Sequence[str],
    num_rows: int,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Decoder means of ``modalities`` for every source, stacked source-major: ``{m: [len(sources) * B, ...]}``.

    ``num_rows`` (B) is the batch's row count (``encodings`` may be empty when the only
    source is :data:`RANDOM`).
    """
    draws = [latent_draws(model, encodings, source, num_rows, generator) for source in sources]
    z = torch.cat([d[0] for d in draws])
    styles = {m: torch.cat([d[1][m] for d in draws]) for m in draws[0][1]}
    return model.generate_means(model.decode(z, styles, modalities))


def map_generations(
    model: MultimodalVAE,
    encoded: EncodedRows,
    sets: Sequence[tuple[Source, str]],
    apply: Callable[[str, torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    batch_size: int,
    progress_title: str | None = None,
) -> dict[tuple[Source, str], np.ndarray]:
    """``apply(m, means)`` of every generated set (source, m), one generation per encoded row.

    Per batch each source is decoded once for all wanted modalities; ``apply`` gets, per
    modality, the means of that modality's wanted sources stacked source-major, and
    returns one row per input row (classifier outputs, features). Concatenated over rows.
    """
    sources = list(dict.fromkeys(source for source, _ in sets))
    modalities = tuple(dict.fromkeys(m for _, m in sets))
    parts: dict[tuple[Source, str], list[torch.Tensor]] = {key: [] for key in sets}
    with torch.inference_mode():
        for batch in encoded.batches(batch_size, progress_title):
            rows = len(batch.rows)
            generated = generate_means(model, batch.encodings, sources, modalities, rows, generator)
            for m, stacked in generated.items():
                wanted = [
                    (source, means)
                    for source, means in zip(sources, stacked.split(rows), strict=True)
                    if (source, m) in parts
                ]
                outputs = apply(m, torch.cat([means for _, means in wanted])).cpu()
                for (source, _), chunk in zip(wanted, outputs.split(rows), strict=True):
                    parts[(source, m)].append(chunk)
    return {key: torch.cat(chunks).numpy() for key, chunks in parts.items()}
