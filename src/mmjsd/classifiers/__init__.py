"""Coherence classifiers trained by the pipeline (docs/reference-code.md §2.6, docs/design.md §5).

Modules:

* :mod:`~mmjsd.classifiers.networks`: the five architectures, ``build_classifier``;
* :mod:`~mmjsd.classifiers.data`: the labelled examples each one trains and is tested on;
* :mod:`~mmjsd.classifiers.loading`: ``model.pt`` writing and ``load_classifier`` (eval mode);
* :mod:`~mmjsd.classifiers.predict`: batched ``predict_labels``, ``attribute_scores`` and
  ``penultimate_features``.

The step that trains them is ``python -m mmjsd.train_classifier``. Which classifiers a
dataset has is declared by its spec (:class:`mmjsd.core.registry.DatasetSpec`: one coherence
classifier per modality, a features copy per ``feature_modalities``). This module stays
free of torch so the Snakefile can read the constant below at parse time.
"""

#: ``coherence``: the classifier used for coherence and its accuracy; ``features``: a
#: separately seeded copy used only as the fallback PRD feature extractor.
ROLES = ("coherence", "features")
