# Shared by the workflow files: config validation, typed config, params helpers, targets.
# Nothing here imports torch (unless the config names plugins: their implementations are checked at parse time):
# this runs at every parse, dry runs included.
import dataclasses
import os
import shlex
import sys
from pathlib import Path

SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))

from mmjsd.core import registry
from mmjsd.core.config import config_from_dict, metric_job_params, plugin_search_paths
from mmjsd.gpu_slots import PACKED_DATASETS_VARIABLE, job_units, packed_training_group
from mmjsd.core.departures import PROTOCOLS
from mmjsd.core.io import canonical_json
from mmjsd.reporting.outputs import sample_figure_stems
from mmjsd.core.provenance import code_version
from mmjsd.tables.specs import planned_tables, table_files

# Loads the plugins (config keys plugins, plugin_paths) first: they decide what is valid.
CFG = config_from_dict(config)
# A plugin's model classes and evaluators are imported now, so that one that is incomplete fails before any job.
registry.check_plugin_implementations()

# Jobs run `python -m mmjsd.<step>` from this checkout's src/, installed or not, with the
# plugin directories on their path and the plugins named in MMJSD_PLUGINS, which every
# step loads (cluster jobs and `--sdm conda` environments inherit the variables), and with
# the interpreter running Snakemake first on PATH, so an un-activated virtual environment
# still provides `python` (a `--sdm conda` environment goes before it). These are set,
# not required: no envvars.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [str(SRC), *plugin_search_paths(CFG.plugin_paths), os.environ.get("PYTHONPATH")])
    ),
    PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    **{registry.PLUGINS_VARIABLE: ",".join(CFG.plugins)},
)

CONDA_ENV = "../../envs/mmjsd.yaml"
RAW_DATASETS = sorted(
    {raw for dataset in CFG.datasets for raw in registry.dataset(dataset).raw_sources}
)


VARIANTS = sorted({v for dataset in CFG.datasets for v in CFG.variants(dataset)})
#: Classifier directories: one coherence classifier per modality, one feature classifier per feature modality.
CLASSIFIERS = [m for spec in registry.DATASETS for m in spec.modalities] + [
    f"{m}-features" for spec in registry.DATASETS for m in spec.feature_modalities
]
#: The tables of the configured datasets and metrics, and their files under results/tables/ (every protocol).
TABLES = planned_tables({d: CFG.evaluation.metrics[d] for d in CFG.datasets})
TABLE_FILES = table_files(TABLES, CFG.protocols)
#: GPU jobs ask for one GPU unless the config pins the CPU (the demo), so SLURM never queues them for GPUs they will not use.
GPUS_PER_JOB = 0 if CFG.device == "cpu" else 1

# The SLURM executor plugin (2.8.0) does not pass --group-components to the snakemake that runs a group job in its
# allocation, which then splits the group and runs its members one after another (plugin issue #469); passing the
# group settings on, as the plugin did before, runs the members of a packed training job at once (docs/cluster.md).
if "snakemake_executor_plugin_slurm" in sys.modules:
    sys.modules["snakemake_executor_plugin_slurm"].common_settings.pass_group_args = True


def stage_resources(stage, dataset=None):
    """mem_mb and runtime (minutes) of a stage's jobs from config resources.<dataset>.<stage> (the `dataset` wildcard
    unless given), times the attempt: a retry of a job that ran out of memory or time (SLURM cannot tell which)
    gets twice, then three times as much."""
    limits = lambda wildcards: getattr(CFG.resources[dataset or wildcards.dataset], stage)
    return {
        "mem_mb": lambda wildcards, attempt: limits(wildcards).mem_mb * attempt,
        "runtime": lambda wildcards, attempt: limits(wildcards).runtime * attempt,
    }


def slot_units(dataset=None):
    """The gpu_units resource of a GPU rule: slot units one job takes on a GPU, from config
    resources.<dataset>.jobs_per_gpu (the `dataset` wildcard unless given); 0 when the config pins the CPU. A
    workstation caps their sum at its GPUs' units (workflow/profiles/local).

    Every GPU rule's shell command starts with `python -m mmjsd.gpu_slots --units {resources.gpu_units} --`, which
    pins the job to one GPU with that many free units (python -m mmjsd.gpu_slots --help). With 0 units it runs the
    command unchanged; it is there either way, so the rules' shell commands, which Snakemake's code rerun trigger
    compares, do not depend on the device or the GPU sharing."""
    return lambda wildcards: (
        0 if CFG.device == "cpu" else job_units(CFG.resources[dataset or wildcards.dataset].jobs_per_gpu)
    )


def packed_group(dataset):
    """Group of the training jobs of a dataset that shares GPUs (mmjsd.gpu_slots.packed_training_group), which the
    SLURM profile packs jobs_per_gpu at a time into one allocation with one GPU; None when a job has a GPU to itself
    or the config pins the CPU. Snakemake ignores groups when it runs jobs itself."""
    jobs_per_gpu = CFG.resources[dataset].jobs_per_gpu
    return packed_training_group(jobs_per_gpu) if jobs_per_gpu > 1 and CFG.device != "cpu" else None


def train_pack(wildcards):
    return packed_group(wildcards.dataset)


# SLURM resubmits a failed pack whole, finished members included; these keep their final checkpoint, so that they
# rewrite their outputs from it instead of training again (mmjsd.train). Kept checkpoints go when the run succeeds.
os.environ[PACKED_DATASETS_VARIABLE] = ",".join(d for d in CFG.datasets if packed_group(d))
#: A training run's resume state (not a pipeline output) and its model, by the train rule's wildcards.
CHECKPOINT = "results/checkpoints/{protocol}/{dataset}/{variant}/seed{seed}/last.pt"
RUN_MODEL = "results/runs/{protocol}/{dataset}/{variant}/seed{seed}/model.pt"


def remove_kept_checkpoints():
    """Delete the checkpoints that finished training runs kept: those older than their run's model.pt. The
    checkpoints of unfinished runs stay, for their resume."""
    found = glob_wildcards(CHECKPOINT)
    for values in zip(*found):
        names = dict(zip(found._fields, values))
        # (not named `checkpoint`: a Snakemake keyword at the start of a line)
        resume_state, model = Path(CHECKPOINT.format(**names)), Path(RUN_MODEL.format(**names))
        if model.is_file() and model.stat().st_mtime_ns >= resume_state.stat().st_mtime_ns:
            resume_state.unlink()


def run_code(step, dataset, variant, *extra):
    """Code version of a job that runs a model of (dataset, variant): the step, the objective's model, the dataset's networks."""
    objective = registry.objective(registry.parse_variant(variant)[0])
    return code_version(
        step, *objective.modules, *registry.dataset(dataset).model_modules, *extra
    )


def report_code(step):
    """Code version of a report step: the step and every declaring module (labels, titles, metric specs)."""
    return code_version(step, *registry.declaring_modules())


def shell_json(obj):
    """A config block as one canonical, shell-quoted JSON string (key order never reruns a job)."""
    return shlex.quote(canonical_json(obj))


def raw_manifests(wildcards):
    return [
        f"results/manifests/{raw}.json"
        for raw in registry.dataset(wildcards.dataset).raw_sources
    ]


def synthetic_option(wildcards):
    """``--synthetic <block>`` only when synthetic data is used, so that block cannot rerun real-data jobs."""
    return (
        f"--synthetic {shell_json(config['data']['synthetic'])}"
        if CFG.data.source == "synthetic"
        else ""
    )


def train_hparams(dataset, variant, protocol):
    """Resolved hyper-parameters of one (dataset, variant) under a protocol's switches, as a plain dict (mmjsd.core.config.resolve_train_config)."""
    return dataclasses.asdict(CFG.train_config(dataset, variant, protocol))


def metric_job(wildcards):
    """The metric job's settings and the protocol's evaluation switches that act on it (mmjsd.core.config.metric_job_params)."""
    return metric_job_params(
        config["evaluation"],
        wildcards.metric,
        wildcards.dataset,
        CFG.switches(wildcards.protocol),
    )


def classifier_dirs(dataset):
    """results/classifiers/<dataset>/<name> for every classifier the dataset's configured metrics read."""
    spec = registry.dataset(dataset)
    metrics = [registry.metric(m) for m in CFG.evaluation.metrics[dataset]]
    names = []
    if any(metric.coherence_classifiers for metric in metrics):
        names += list(spec.modalities)
    if any(feature_classifiers(dataset, metric.name) for metric in metrics):
        names += [f"{m}-features" for m in spec.feature_modalities]
    return [f"results/classifiers/{dataset}/{name}" for name in names]


def classifier_metrics():
    return [
        f"{d}/metrics.json"
        for dataset in CFG.datasets
        for d in classifier_dirs(dataset)
    ]


def feature_classifiers(dataset, metric):
    """The feature classifiers ``metric`` reads on ``dataset`` (PRD: unless Inception weights replace them)."""
    spec = registry.metric(metric)
    if not spec.feature_classifiers(CFG.evaluation.settings.get(metric)):
        return []
    return [
        f"results/classifiers/{dataset}/{m}-features/model.pt"
        for m in registry.dataset(dataset).feature_modalities
    ]


def evaluation_inputs(wildcards):
    """Model and data of the run, plus the classifiers and cached real features the metric's spec says it reads."""
    dataset, spec = wildcards.dataset, registry.metric(wildcards.metric)
    run = f"results/runs/{wildcards.protocol}/{dataset}/{wildcards.variant}/seed{wildcards.seed}"
    inputs = {"model": f"{run}/model.pt", "data": f"results/datasets/{dataset}.h5"}
    classifiers = feature_classifiers(dataset, wildcards.metric)
    if spec.coherence_classifiers:
        classifiers = [
            f"results/classifiers/{dataset}/{m}/model.pt"
            for m in registry.modalities(dataset)
        ] + classifiers
    if classifiers:
        inputs["classifiers"] = classifiers
    if spec.real_features:
        inputs["real_features"] = f"results/prd_reference/{dataset}.npz"
    return inputs


def evaluation_options(wildcards):
    """The evaluate CLI's --classifiers/--real-features options for the metric (params: they only name inputs)."""
    inputs = evaluation_inputs(wildcards)
    options = []
    if "classifiers" in inputs:
        options.append(f"--classifiers results/classifiers/{wildcards.dataset}")
    if "real_features" in inputs:
        options.append(f"--real-features {inputs['real_features']}")
    return " ".join(options)


def evaluation_code(wildcards):
    """Code version of an evaluation: the metric's evaluator on a model of the variant, with the classifiers it reads."""
    evaluator, *others = registry.metric(wildcards.metric).modules
    if "classifiers" in evaluation_inputs(wildcards):
        others += registry.dataset(wildcards.dataset).classifier_modules
    return run_code(evaluator, wildcards.dataset, wildcards.variant, *others)


def variant_runs(protocol, dataset, variant):
    """results/runs/<protocol>/<dataset>/<variant>/seed<k> for every configured seed."""
    return [f"results/runs/{protocol}/{dataset}/{variant}/seed{seed}" for seed in CFG.seeds]


def run_groups():
    """Every configured (protocol, dataset, variant)."""
    return [
        (protocol, dataset, variant)
        for protocol in CFG.protocols
        for dataset in CFG.datasets
        for variant in CFG.variants(dataset)
    ]


def run_dirs():
    """Every configured run directory, of every protocol."""
    return [run for group in run_groups() for run in variant_runs(*group)]


def metric_files():
    """Every configured metric file, of every protocol."""
    return [
        f"{run}/metrics/{metric}.json"
        for protocol, dataset, variant in run_groups()
        for run in variant_runs(protocol, dataset, variant)
        for metric in CFG.evaluation.metrics[dataset]
    ]


#: The raw-data manifest the report steps read data.source from (every manifest records it).
DATA_SOURCE_MANIFEST = f"results/manifests/{RAW_DATASETS[0]}.json"


def report_context(wildcards):
    """--datasets/--seeds/--protocols/--pipeline-checks of the table, figure and summary CLIs: what was configured, so
    missing runs are footnoted; the data source comes from the manifest (input ``manifest``)."""
    options = [
        f"--datasets {' '.join(CFG.datasets)}",
        f"--seeds {' '.join(str(s) for s in CFG.seeds)}",
        f"--protocols {' '.join(CFG.protocols)}",
        f"--data-source-file {DATA_SOURCE_MANIFEST}",
    ]
    checks = [d for d in CFG.report.pipeline_checks if d in CFG.datasets]
    if checks:
        options.append(f"--pipeline-checks {' '.join(checks)}")
    return " ".join(options)


def figure_files():
    """Every PNG figure of the run (linked from the summary): table figures, then each protocol's curves and samples."""
    tables = [f"results/figures/{table.figure_stem}.png" for table in TABLES]
    curves = [
        f"results/figures/{p}/training_curves_{d}_{v}.png" for p, d, v in run_groups()
    ]
    samples = [
        f"results/figures/{p}/{stem}.png"
        for p, d, v in run_groups()
        for stem in sample_figure_stems(d, v)
    ]
    return tables + curves + samples


def final_outputs():
    """Every file `rule all` asks for."""
    datasets = expand("results/datasets/{dataset}.h5", dataset=CFG.datasets)
    tables = [f"results/tables/{name}" for name in TABLE_FILES]
    return (
        datasets
        + classifier_metrics()
        + metric_files()
        + tables
        + ["results/summary.md"]
    )
