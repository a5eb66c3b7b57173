# mmJSD reproduction: raw data -> HDF5 datasets -> classifiers + VAE runs -> metrics -> tables, figures, report.
#
#   snakemake --cores all                                        # the paper config (config.yaml)
#   snakemake --cores all --configfile workflow/presets/demo.yaml   # synthetic demo, CPU, minutes
#   snakemake --cores all --configfile workflow/presets/reference-exact.yaml   # as published and as corrected
#
# The results tree is described in results/README.md. `rule all` must live in this file:
# Snakemake ignores a default target defined in an included file.
from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    protocol="|".join(PROTOCOLS),
    dataset="|".join(CFG.datasets),
    raw="|".join(RAW_DATASETS),
    variant="|".join(VARIANTS),
    classifier="|".join(sorted(set(CLASSIFIERS))),
    metric="|".join(registry.METRICS.names()),
    seed=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/classifiers.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onsuccess:
    remove_kept_checkpoints()


rule all:
    default_target: True
    input:
        final_outputs(),
