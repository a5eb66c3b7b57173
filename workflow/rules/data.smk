# Data stage: raw files -> manifests -> frozen HDF5 datasets.


rule acquire_raw:
    output:
        "results/manifests/{raw}.json",
    log:
        "results/logs/acquire_raw/{raw}.log",
    benchmark:
        "results/benchmarks/acquire_raw/{raw}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        source=CFG.data.source,
        raw_dir=CFG.data.raw_dir,
        synthetic=synthetic_option,
        code=code_version("mmjsd.acquire"),
    shell:
        "python -m mmjsd.acquire --dataset {wildcards.raw} --source {params.source} "
        "--raw-dir {params.raw_dir:q} {params.synthetic} --workers {threads} "
        "--manifest {output} > {log} 2>&1"


rule build_dataset:
    input:
        manifests=raw_manifests,
    output:
        "results/datasets/{dataset}.h5",
    log:
        "results/logs/build_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/build_dataset/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        **stage_resources("build_dataset"),
    params:
        build=lambda wildcards: shell_json(config["data"][wildcards.dataset]),
        code=lambda wildcards: code_version(
            "mmjsd.build_dataset", *registry.dataset(wildcards.dataset).build_modules
        ),
    shell:
        "python -m mmjsd.build_dataset --dataset {wildcards.dataset} --manifests {input.manifests} "
        "--params {params.build} --output {output} --workers {threads} > {log} 2>&1"
