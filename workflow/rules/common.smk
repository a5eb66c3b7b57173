# Shared by the workflow files: config validation, typed config, params helpers, targets.
# Nothing here imports torch: this runs at every parse, dry runs included.
import dataclasses
import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

SRC = Path(workflow.basedir) / "src"
# Jobs run `python -m mmjsd.<step>` from this checkout's src/, installed or not (cluster
# jobs and `--sdm conda` environments inherit the variables), with the interpreter running
# Snakemake first on PATH, so an un-activated virtual environment still provides `python`
# (a `--sdm conda` environment goes before it). These are set, not required: no envvars.
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    PATH=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    ),
)
sys.path.insert(0, str(SRC))

from mmjsd.classifiers import FEATURE_MODALITIES
from mmjsd.config import MODALITIES, RAW_SOURCES, config_from_dict, metric_job_params
from mmjsd.evaluation import EVALUATOR_MODULES
from mmjsd.io import canonical_json
from mmjsd.outputs import sample_figure_stems
from mmjsd.provenance import code_version
from mmjsd.tables import TABLES

validate(config, schema="../schemas/config.schema.yaml")
CFG = config_from_dict(config)

CONDA_ENV = "../../envs/mmjsd.yaml"
RAW_DATASETS = sorted({raw for dataset in CFG.datasets for raw in RAW_SOURCES[dataset]})


VARIANTS = sorted({v for dataset in CFG.datasets for v in CFG.variants(dataset)})
#: Classifier directories: one coherence classifier per modality, one feature classifier per image modality.
CLASSIFIERS = [m for dataset in MODALITIES for m in MODALITIES[dataset]] + [
    f"{m}-features"
    for dataset in FEATURE_MODALITIES
    for m in FEATURE_MODALITIES[dataset]
]
#: Paper tables of the configured datasets (file stems under results/tables/).
TABLE_NAMES = [spec.name for spec in TABLES if spec.dataset in CFG.datasets]
#: GPU jobs ask for one GPU unless the config pins the CPU (the demo), so SLURM never queues them for GPUs they will not use.
GPUS_PER_JOB = 0 if CFG.device == "cpu" else 1


def shell_json(obj):
    """A config block as one canonical, shell-quoted JSON string (key order never reruns a job)."""
    return shlex.quote(canonical_json(obj))


def raw_manifests(wildcards):
    return [f"results/manifests/{raw}.json" for raw in RAW_SOURCES[wildcards.dataset]]


def synthetic_option(wildcards):
    """``--synthetic <block>`` only when synthetic data is used, so that block cannot rerun real-data jobs."""
    return (
        f"--synthetic {shell_json(config['data']['synthetic'])}"
        if CFG.data.source == "synthetic"
        else ""
    )


def train_hparams(dataset, variant):
    """Resolved hyper-parameters of one (dataset, variant) as a plain dict (see mmjsd.config.resolve_train_config)."""
    return dataclasses.asdict(CFG.train_config(dataset, variant))


def classifier_dirs(dataset):
    """results/classifiers/<dataset>/<name> for every classifier the dataset needs."""
    names = list(MODALITIES[dataset]) + [
        f"{m}-features" for m in FEATURE_MODALITIES[dataset]
    ]
    return [f"results/classifiers/{dataset}/{name}" for name in names]


def classifier_metrics():
    return [
        f"{d}/metrics.json"
        for dataset in CFG.datasets
        for d in classifier_dirs(dataset)
    ]


def prd_feature_classifiers(wildcards):
    """The feature classifiers PRD needs, unless Inception weights replace them."""
    if CFG.evaluation.prd.inception_weights:
        return []
    return [
        f"results/classifiers/{wildcards.dataset}/{m}-features/model.pt"
        for m in FEATURE_MODALITIES[wildcards.dataset]
    ]


def evaluation_inputs(wildcards):
    """Model and data of the run, plus the classifiers (coherence, PRD) and real features (PRD) the metric reads."""
    run = f"results/runs/{wildcards.dataset}/{wildcards.variant}/seed{wildcards.seed}"
    inputs = {
        "model": f"{run}/model.pt",
        "data": f"results/datasets/{wildcards.dataset}.h5",
    }
    if wildcards.metric == "coherence":
        inputs["classifiers"] = [
            f"results/classifiers/{wildcards.dataset}/{m}/model.pt"
            for m in MODALITIES[wildcards.dataset]
        ]
    if wildcards.metric == "prd":
        inputs["classifiers"] = prd_feature_classifiers(wildcards)
        inputs["real_features"] = f"results/prd_reference/{wildcards.dataset}.npz"
    return inputs


def evaluation_options(wildcards):
    """The evaluate CLI's --classifiers/--real-features options for the metric (params: they only name inputs)."""
    dataset = wildcards.dataset
    if wildcards.metric == "coherence":
        return f"--classifiers results/classifiers/{dataset}"
    if wildcards.metric == "prd":
        return f"--classifiers results/classifiers/{dataset} --real-features results/prd_reference/{dataset}.npz"
    return ""


def variant_runs(dataset, variant):
    """results/runs/<dataset>/<variant>/seed<k> for every configured seed."""
    return [f"results/runs/{dataset}/{variant}/seed{seed}" for seed in CFG.seeds]


def run_dirs():
    """Every configured run directory."""
    return [
        run
        for dataset in CFG.datasets
        for variant in CFG.variants(dataset)
        for run in variant_runs(dataset, variant)
    ]


def metric_files():
    """Every configured metric file."""
    return [
        f"{run}/metrics/{metric}.json"
        for dataset in CFG.datasets
        for variant in CFG.variants(dataset)
        for run in variant_runs(dataset, variant)
        for metric in CFG.evaluation.metrics[dataset]
    ]


def table_selection(wildcards):
    """--datasets/--seeds of the table, figure and summary CLIs: what was configured, so missing runs are footnoted."""
    return f"--datasets {' '.join(CFG.datasets)} --seeds {' '.join(str(s) for s in CFG.seeds)}"


def figure_files():
    """Every PNG figure of the run (linked from the summary)."""
    tables = [f"results/figures/{table}_vs_paper.png" for table in TABLE_NAMES]
    curves = [
        f"results/figures/training_curves_{d}_{v}.png"
        for d in CFG.datasets
        for v in CFG.variants(d)
    ]
    samples = [
        f"results/figures/{stem}.png"
        for d in CFG.datasets
        for v in CFG.variants(d)
        for stem in sample_figure_stems(d, v)
    ]
    return tables + curves + samples


def final_outputs():
    """Every file `rule all` asks for."""
    datasets = expand("results/datasets/{dataset}.h5", dataset=CFG.datasets)
    tables = [f"results/tables/{table}.csv" for table in TABLE_NAMES]
    return (
        datasets
        + classifier_metrics()
        + metric_files()
        + tables
        + ["results/summary.md"]
    )
