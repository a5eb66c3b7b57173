"""The two datasets of the mmJSD paper: MNIST-SVHN-Text and bimodal CelebA
(docs/reference-code.md §1-2, docs/design.md §3)."""

from __future__ import annotations

from mmjsd.core.config import CelebABuildConfig, MSTBuildConfig
from mmjsd.core.registry import DatasetSpec, FigureLayout, register_dataset

register_dataset(
    DatasetSpec(
        name="mnist_svhn_text",
        title="MNIST-SVHN-Text",
        description="MNIST digit, SVHN digit and the digit's name in an 8-character text, paired by class.",
        modalities=("mnist", "svhn", "text"),
        raw_sources=("mnist", "svhn"),
        build_settings=MSTBuildConfig,
        labels="classes",
        num_labels=10,
        likelihoods={
            "mnist": "mmjsd.models.likelihoods:LaplaceImage",
            "svhn": "mmjsd.models.likelihoods:LaplaceImage",
            "text": "mmjsd.models.likelihoods:CategoricalText",
        },
        classifiers={
            "mnist": "mmjsd.classifiers.networks:mnist_classifier",
            "svhn": "mmjsd.classifiers.networks:svhn_classifier",
            "text": "mmjsd.classifiers.networks:mst_text_classifier",
        },
        feature_modalities=("mnist", "svhn"),
        sample_figures=("conditional_mnist", "conditional_svhn", "conditional_text", "random"),
        figure_layout=FigureLayout(
            cell_inches=0.7,
            text_row_inches=0.35,
            text_points=9,
            text_wrap=8,
            label_points=8,
            label_wrap=40,
            random_grid=(6, 10),
        ),
        builder="mmjsd.data.build_mst:build_dataset",
        file_layout="mmjsd.data.hdf5:MST_SPEC",
        split="mmjsd.data.readers:MSTSplit",
        networks="mmjsd.models.networks.mst:build_networks",
        data_shapes="mmjsd.models.networks.mst:DATA_SHAPES",
        classifier_examples="mmjsd.classifiers.data:mst_examples",
        caveats=(
            "**Generation sets** are drawn with a fixed seed from the test pairs, in which each MNIST image "
            "appears in several pairs, as in the reference code.",
        ),
    )
)
register_dataset(
    DatasetSpec(
        name="celeba",
        title="CelebA",
        description="64x64 CelebA faces and a text listing their 40 attributes.",
        modalities=("img", "text"),
        raw_sources=("celeba",),
        build_settings=CelebABuildConfig,
        labels="attributes",
        num_labels=40,
        likelihoods={
            "img": "mmjsd.models.likelihoods:LaplaceImage",
            "text": "mmjsd.models.likelihoods:CategoricalText",
        },
        classifiers={
            "img": "mmjsd.classifiers.networks:celeba_image_classifier",
            "text": "mmjsd.classifiers.networks:celeba_text_classifier",
        },
        feature_modalities=("img",),
        sample_figures=("text_to_img", "random"),
        figure_layout=FigureLayout(
            cell_inches=1.2,
            text_row_inches=1.1,
            text_points=5,
            text_wrap=26,
            label_points=6,
            label_wrap=42,
            random_grid=(3, 6),
        ),
        builder="mmjsd.data.build_celeba:build_dataset",
        file_layout="mmjsd.data.hdf5:CELEBA_SPEC",
        split="mmjsd.data.readers:CelebASplit",
        networks="mmjsd.models.networks.celeba:build_networks",
        data_shapes="mmjsd.models.networks.celeba:DATA_SHAPES",
        classifier_examples="mmjsd.classifiers.data:celeba_examples",
        caveats=(
            "**CelebA test split** is the official *validation* partition (partition 1), as in the reference "
            "code (`data.celeba.test_partitions`), not the official test partition.",
        ),
    )
)
