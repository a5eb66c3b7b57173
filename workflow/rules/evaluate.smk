# Evaluation stage: one job per (run, metric) of every protocol, plus the real-image PRD features per dataset
# (shared by the protocols: no departure acts on them).


rule prd_reference:
    input:
        data="results/datasets/{dataset}.h5",
        classifiers=lambda wildcards: feature_classifiers(wildcards.dataset, "prd"),
    output:
        "results/prd_reference/{dataset}.npz",
    log:
        "results/logs/prd_reference/{dataset}.log",
    benchmark:
        "results/benchmarks/prd_reference/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **stage_resources("prd_reference"),
        gpu=GPUS_PER_JOB,
        gpu_units=slot_units(),
    params:
        job=lambda wildcards: shell_json(
            metric_job_params(
                config["evaluation"], "prd", wildcards.dataset, config["departures"]
            )
        ),
        classifiers=lambda wildcards: f"results/classifiers/{wildcards.dataset}",
        device=CFG.device,
        code=lambda wildcards: code_version(
            "mmjsd.prd_reference", *registry.dataset(wildcards.dataset).data_modules
        ),
    shell:
        "python -m mmjsd.gpu_slots --units {resources.gpu_units} -- python -m mmjsd.prd_reference --dataset {wildcards.dataset} --data {input.data} "
        "--classifiers {params.classifiers} --params {params.job} --out {output} "
        "--device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        "results/runs/{protocol}/{dataset}/{variant}/seed{seed}/metrics/{metric}.json",
    log:
        "results/logs/evaluate/{protocol}/{dataset}/{variant}/seed{seed}/{metric}.log",
    benchmark:
        "results/benchmarks/evaluate/{protocol}/{dataset}/{variant}/seed{seed}/{metric}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **stage_resources("evaluate"),
        gpu=GPUS_PER_JOB,
        gpu_units=slot_units(),
    params:
        job=lambda wildcards: shell_json(metric_job(wildcards)),
        run_dir=lambda wildcards: f"results/runs/{wildcards.protocol}/{wildcards.dataset}/{wildcards.variant}/seed{wildcards.seed}",
        options=evaluation_options,
        device=CFG.device,
        code=evaluation_code,
    shell:
        "python -m mmjsd.gpu_slots --units {resources.gpu_units} -- python -m mmjsd.evaluate --metric {wildcards.metric} --run-dir {params.run_dir} --data {input.data} "
        "{params.options} --params {params.job} --out {output} --device {params.device} --threads {threads} "
        "--no-progress > {log} 2>&1"
