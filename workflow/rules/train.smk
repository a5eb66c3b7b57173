# Training stage: one resumable job per (protocol, dataset, variant, seed).


rule train:
    input:
        data="results/datasets/{dataset}.h5",
    output:
        model=RUN_MODEL,
        config="results/runs/{protocol}/{dataset}/{variant}/seed{seed}/config.json",
        log_csv="results/runs/{protocol}/{dataset}/{variant}/seed{seed}/train_log.csv",
    log:
        "results/logs/train/{protocol}/{dataset}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{protocol}/{dataset}/{variant}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    group:
        train_pack
    threads: 1
    resources:
        **stage_resources("train"),
        gpu=GPUS_PER_JOB,
        gpu_units=slot_units(),
    params:
        hparams=lambda wildcards: shell_json(
            train_hparams(wildcards.dataset, wildcards.variant, wildcards.protocol)
        ),
        checkpoint=CHECKPOINT,
        device=CFG.device,
        code=lambda wildcards: run_code(
            "mmjsd.train", wildcards.dataset, wildcards.variant
        ),
    shell:
        "python -m mmjsd.gpu_slots --units {resources.gpu_units} -- python -m mmjsd.train --dataset {wildcards.dataset} --variant {wildcards.variant} --seed {wildcards.seed} "
        "--protocol {wildcards.protocol} "
        "--hparams {params.hparams} --data {input.data} --out-dir $(dirname {output.model}) "
        "--checkpoint {params.checkpoint} --code-version {params.code} --device {params.device} --threads {threads} > {log} 2>&1"
