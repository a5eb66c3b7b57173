# Report stage: Tables 1-5 (and a table per metric no paper table covers) per protocol, the paper comparisons, the
# departures tables, figures, the summary page. `snakemake --report results/report.html` (or --report-after-run)
# collects every output marked report() below.


rule tables:
    input:
        metrics=metric_files(),
        manifest=DATA_SOURCE_MANIFEST,
    output:
        [
            report(
                f"results/tables/{name}",
                category="Tables",
                subcategory=name.rsplit(".", 1)[0],
                caption="../report/tables.rst",
            )
            for name in TABLE_FILES
            if name.endswith(".csv")
        ],
        [f"results/tables/{name}" for name in TABLE_FILES if not name.endswith(".csv")],
    log:
        "results/logs/tables.log",
    conda:
        CONDA_ENV
    params:
        context=report_context,
        code=report_code("mmjsd.tables.cli"),
    shell:
        "python -m mmjsd.tables --out-dir results/tables --metrics {input.metrics} {params.context} > {log} 2>&1"


rule table_figures:
    input:
        metrics=metric_files(),
        manifest=DATA_SOURCE_MANIFEST,
    output:
        [
            report(
                f"results/figures/{table.figure_stem}.png",
                category="Figures",
                subcategory="Ours vs paper",
                caption="../report/table_figures.rst",
            )
            for table in TABLES
        ],
        [f"results/figures/{table.figure_stem}.pdf" for table in TABLES],
    log:
        "results/logs/table_figures.log",
    conda:
        CONDA_ENV
    params:
        context=report_context,
        code=report_code("mmjsd.plots"),
    shell:
        "python -m mmjsd.plots tables --out-dir results/figures --metrics {input.metrics} {params.context} > {log} 2>&1"


rule training_curves:
    input:
        logs=lambda wildcards: [
            f"{run}/train_log.csv"
            for run in variant_runs(
                wildcards.protocol, wildcards.dataset, wildcards.variant
            )
        ],
    output:
        png=report(
            "results/figures/{protocol}/training_curves_{dataset}_{variant}.png",
            category="Figures",
            subcategory="Training curves",
            caption="../report/training_curves.rst",
        ),
        pdf="results/figures/{protocol}/training_curves_{dataset}_{variant}.pdf",
    log:
        "results/logs/training_curves/{protocol}/{dataset}_{variant}.log",
    conda:
        CONDA_ENV
    params:
        code=report_code("mmjsd.plots"),
    shell:
        "python -m mmjsd.plots curves --out-dir $(dirname {output.png}) --logs {input.logs} > {log} 2>&1"


rule summary:
    input:
        metrics=metric_files(),
        run_configs=[f"{run}/config.json" for run in run_dirs()],
        classifiers=classifier_metrics(),
        manifest=DATA_SOURCE_MANIFEST,
        figures=figure_files(),
    output:
        report(
            "results/summary.md", category="Summary", caption="../report/summary.rst"
        ),
    log:
        "results/logs/summary.log",
    conda:
        CONDA_ENV
    params:
        context=report_context,
        code=report_code("mmjsd.summary"),
    shell:
        "python -m mmjsd.summary --out {output} --metrics {input.metrics} --run-configs {input.run_configs} "
        "--classifier-metrics {input.classifiers} --figures {input.figures} {params.context} > {log} 2>&1"


# One rule per dataset: the figures differ (MST: a conditional grid per modality; CelebA: text -> image).
for _dataset in CFG.datasets:

    rule:
        name:
            f"samples_{_dataset}"
        input:
            model=f"results/runs/{{protocol}}/{_dataset}/{{variant}}/seed{CFG.seeds[0]}/model.pt",
            data=f"results/datasets/{_dataset}.h5",
        output:
            png=[
                report(
                    f"results/figures/{{protocol}}/{stem}.png",
                    category="Figures",
                    subcategory="Generated samples",
                    caption="../report/samples.rst",
                )
                for stem in sample_figure_stems(_dataset, "{variant}")
            ],
            pdf=[
                f"results/figures/{{protocol}}/{stem}.pdf"
                for stem in sample_figure_stems(_dataset, "{variant}")
            ],
        log:
            f"results/logs/samples/{{protocol}}/{_dataset}_{{variant}}.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            **stage_resources("samples", _dataset),
            gpu=GPUS_PER_JOB,
            gpu_units=slot_units(_dataset),
        params:
            run_dir=lambda wildcards, input: Path(input.model).parent,
            device=CFG.device,
            code=lambda wildcards, dataset=_dataset: run_code(
                "mmjsd.samples",
                dataset,
                wildcards.variant,
                registry.objective(registry.parse_variant(wildcards.variant)[0]).source,
                registry.dataset(dataset).source,
            ),
        shell:
            "python -m mmjsd.gpu_slots --units {resources.gpu_units} -- python -m mmjsd.samples --run-dir {params.run_dir} --data {input.data} "
            "--out-dir results/figures/{wildcards.protocol} "
            "--seed 0 --device {params.device} --threads {threads} > {log} 2>&1"
