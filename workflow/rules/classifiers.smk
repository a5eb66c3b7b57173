# Coherence classifiers (one per modality) and the separately seeded image classifiers
# whose penultimate layer is the fallback PRD feature extractor.


rule train_classifier:
    input:
        data="results/datasets/{dataset}.h5",
    output:
        model="results/classifiers/{dataset}/{classifier}/model.pt",
        metrics="results/classifiers/{dataset}/{classifier}/metrics.json",
    log:
        "results/logs/train_classifier/{dataset}/{classifier}.log",
    benchmark:
        "results/benchmarks/train_classifier/{dataset}/{classifier}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **stage_resources("train_classifier"),
        gpu=GPUS_PER_JOB,
        gpu_units=slot_units(),
    params:
        modality=lambda wildcards: wildcards.classifier.removesuffix("-features"),
        role=lambda wildcards: (
            "features" if wildcards.classifier.endswith("-features") else "coherence"
        ),
        hparams=lambda wildcards: shell_json(
            dataclasses.asdict(
                CFG.classifier_config(
                    wildcards.dataset, wildcards.classifier.removesuffix("-features")
                )
            )
        ),
        device=CFG.device,
        code=lambda wildcards: code_version(
            "mmjsd.train_classifier",
            *registry.dataset(wildcards.dataset).classifier_modules,
        ),
    shell:
        "python -m mmjsd.gpu_slots --units {resources.gpu_units} -- python -m mmjsd.train_classifier --dataset {wildcards.dataset} --modality {params.modality} "
        "--role {params.role} --params {params.hparams} --data {input.data} --out-dir $(dirname {output.model}) "
        "--device {params.device} --threads {threads} --no-progress > {log} 2>&1"
