"""PRD evaluator (Table 3; docs/metrics.md §1-2, docs/design.md §5).

For every image modality m (MST: mnist, svhn; CelebA: img) the generated sets are
``random->m`` (z and styles from the prior) and ``S->m`` for every subset S without m
(one z from q(z | X_S), styles as in :mod:`mmjsd.evaluation.generation`). They are
conditioned on ``prd.n_samples`` test rows drawn with a fixed seed (capped at the split;
:func:`~mmjsd.evaluation.features.prd_rows`); the real set is those rows' images of m
(MST test pairs repeat MNIST images, as in the reference; docs/design.md §5). Generated images
are decoder means; no PNG is written (docs/metrics.md §6 item 1).

Features come from :mod:`mmjsd.evaluation.features` (Inception pool3 or the feature
classifiers); real-image features are read from the file of :mod:`mmjsd.prd_reference`
when given, else computed here. Each set is compared with the real set by
:func:`~mmjsd.evaluation.prd.compute_prd_from_embedding` (generated = eval, real = ref;
the paper's 20 clusters, 1001 angles, 10 runs and MiniBatchKMeans batch size from the
config, k-means seeds ``evaluation.seed + run``): ``values[key]`` is mmJSD's average
precision ``prd_ap_mmjsd`` (docs/metrics.md §1.7), ``extra["F_8:key"]`` and
``extra["F_1/8:key"]`` the official summaries (§1.6). The file names the extractor in
``metric_name`` (``prd_ap_mmjsd[<extractor>]``) and in its ``extractor`` block.

The clusterings of the different sets are independent: they run in parallel processes,
as many as the job's torch threads (``--threads``), each k-means single-threaded, so the
numbers do not depend on the machine's core count or on the number of processes.
"""

from __future__ import annotations

import functools
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from mmjsd.core import registry
from mmjsd.core.io import sha256_file
from mmjsd.evaluation.features import (
    FeatureExtractor,
    build_extractor,
    compute_real_features,
    load_real_features,
    prd_rows,
    prd_rows_seed,
    real_features_key,
)
from mmjsd.evaluation.generation import RANDOM, Source, generation_key, map_generations
from mmjsd.evaluation.prd import compute_prd_from_embedding, max_f_beta_pair, prd_ap_mmjsd
from mmjsd.evaluation.runs import (
    TEST_SPLIT,
    EncodedRows,
    EvaluationInputs,
    MetricResult,
    derived_seed,
    encode_rows,
    rows_kind,
    torch_generator,
)
from mmjsd.models import MultimodalVAE


def generated_sets(model: MultimodalVAE, image_modalities: tuple[str, ...]) -> list[tuple[Source, str]]:
    """(source, m) of every PRD set: per image modality, random first, then each subset without m."""
    return [
        (source, m)
        for m in image_modalities
        for source in [RANDOM, *model.subsets]
        if source == RANDOM or m not in source
    ]


def generated_features(
    inputs: EvaluationInputs,
    encoded: EncodedRows,
    extractor: FeatureExtractor,
    sets: list[tuple[Source, str]],
    generator: torch.Generator,
) -> dict[tuple[Source, str], np.ndarray]:
    """Features of every generated set, one generated image per encoded row; each source decodes once per batch."""
    return map_generations(
        inputs.run.model, encoded, sets, extractor, generator, inputs.job.batch_size, inputs.progress_title("prd")
    )


def single_threaded_prd(generated: np.ndarray, real: np.ndarray, **settings) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compute_prd_from_embedding` with one OpenMP thread (MiniBatchKMeans' results can depend on the count)."""
    with threadpool_limits(limits=1):
        return compute_prd_from_embedding(generated, real, **settings)


def prd_curves(
    pairs: dict[tuple[Source, str], tuple[np.ndarray, np.ndarray]], workers: int, **settings
) -> dict[tuple[Source, str], tuple[np.ndarray, np.ndarray]]:
    """(precision, recall) of every (generated, real) feature pair, in ``workers`` processes when more than one."""
    compute = functools.partial(single_threaded_prd, **settings)
    if workers <= 1 or len(pairs) <= 1:
        return {key: compute(*pair) for key, pair in pairs.items()}
    with ProcessPoolExecutor(min(workers, len(pairs)), mp_context=get_context("spawn")) as pool:
        futures = {key: pool.submit(compute, *pair) for key, pair in pairs.items()}
        return {key: future.result() for key, future in futures.items()}


def evaluate(inputs: EvaluationInputs) -> MetricResult:
    """The prd metric file's content; see the module docstring."""
    run, job = inputs.run, inputs.job
    prd_cfg, model = job.settings, run.model
    extractor = build_extractor(
        prd_cfg.inception_weights, inputs.classifiers_dir, run.dataset, inputs.device, job.batch_size
    )
    split = inputs.test_split()
    rows = prd_rows(len(split), prd_cfg.n_samples, job.seed)
    seeds = {
        "evaluation": job.seed,
        "test_rows": prd_rows_seed(job.seed),
        "latent_samples": derived_seed(job.seed, "prd/latent_samples"),
        "kmeans": job.seed,
    }
    if inputs.real_features is not None:
        key = real_features_key(run.dataset, sha256_file(inputs.data_path), rows, extractor)
        real = load_real_features(inputs.real_features, key)
    else:
        real = compute_real_features(extractor, split, rows, job.batch_size)

    sets = generated_sets(model, registry.dataset(run.dataset).feature_modalities)
    encoded = encode_rows(model, split, torch.from_numpy(rows), job.batch_size)
    generated = generated_features(
        inputs, encoded, extractor, sets, torch_generator(seeds["latent_samples"], inputs.device)
    )
    curves = prd_curves(
        {(source, m): (generated[(source, m)], real[m]) for source, m in sets},
        workers=torch.get_num_threads(),
        num_clusters=prd_cfg.num_clusters,
        num_angles=prd_cfg.num_angles,
        num_runs=prd_cfg.num_runs,
        kmeans_batch_size=prd_cfg.kmeans_batch_size,
        seed=job.seed,
    )
    values, extra = {}, {}
    for (source, m), (precision, recall) in curves.items():
        key = generation_key(source, m)
        values[key] = prd_ap_mmjsd(precision, recall)
        extra[f"F_8:{key}"], extra[f"F_1/8:{key}"] = max_f_beta_pair(precision, recall, beta=8)
    protocol = {
        "split": TEST_SPLIT,
        "n_samples": len(rows),
        "test_rows": rows_kind(rows, len(split)),
        "num_clusters": prd_cfg.num_clusters,
        "num_angles": prd_cfg.num_angles,
        "num_runs": prd_cfg.num_runs,
        "kmeans": "MiniBatchKMeans(n_init=10)",
        "kmeans_batch_size": prd_cfg.kmeans_batch_size,
        "kmeans_threads": 1,
        "extractor": extractor.name,
        "extractor_sha256": extractor.identity["sha256"][:12],
        "generation": "decoder_means",
        "batch_size": job.batch_size,
    }
    if "classifiers" in extractor.identity:
        protocol["classifier_mode"] = "eval"
    return MetricResult(
        metric_name=f"prd_ap_mmjsd[{extractor.name}]",
        values=values,
        protocol=protocol,
        seeds=seeds,
        extra=extra,
        document_extra={"extractor": extractor.identity},
    )
