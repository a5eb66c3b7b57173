"""The built-in objectives, metrics and datasets, declared as plugins are (:mod:`mmjsd.core.registry`).

:mod:`~mmjsd.specs.datasets` (MNIST-SVHN-Text, CelebA), :mod:`~mmjsd.specs.objectives`
(MVAE, MMVAE, mmJSD, MoPoE) and :mod:`~mmjsd.specs.metrics` (latent probe, coherence,
PRD, likelihood) are imported by name when the registry is first read, so no module
imports them and their declarations enter only the code versions of the jobs that use
them. Like every declaring module they stay free of torch.
"""
