#!/usr/bin/env bash
# Run the workflow on SLURM with the project's workflow profile.
#
#   scripts/run_slurm.sh [snakemake targets and options ...]
#
# e.g.  MMJSD_SLURM_PARTITION=cpu MMJSD_SLURM_GPU_PARTITION=gpu \
#       MMJSD_SLURM_ACCOUNT=myproj MMJSD_SLURM_GPU_MODEL=a100 \
#       scripts/run_slurm.sh -n            # dry run first
#
# Why a wrapper: snakemake silently ignores a --workflow-profile path that does
# not exist (upstream issue #4276) and then runs every job on the login node.
# This script checks the profile, sbatch and the executor plugin first, then
# runs `python -m snakemake --workflow-profile <profile> "$@"`. All arguments
# are passed through unchanged.
#
# Environment:
#   MMJSD_SLURM_PROFILE  profile directory   [<repo>/workflow/profiles/slurm]
#   PYTHON               interpreter to run snakemake with
#                        [<repo>/.venv/bin/python if present, else python3].
#                        Jobs run `<this interpreter> -m snakemake` on the compute
#                        nodes, so it must exist there at the same path.
#   MMJSD_SLURM_* site settings read by the profile (see its README.md).
set -euo pipefail

die() { printf 'run_slurm.sh: ERROR: %s\n' "$*" >&2; exit 2; }
note() { printf 'run_slurm.sh: %s\n' "$*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${MMJSD_SLURM_PROFILE:-$ROOT/workflow/profiles/slurm}"

# 1. the profile must exist (snakemake would silently run without it)
[[ -d "$PROFILE" ]] || die "workflow profile directory not found: $PROFILE"
if [[ ! -f "$PROFILE/profile.yaml" && ! -f "$PROFILE/config.yaml" ]] \
    && ! compgen -G "$PROFILE/profile.v*.yaml" >/dev/null \
    && ! compgen -G "$PROFILE/config.v*.yaml" >/dev/null; then
    die "no profile.yaml (or config.yaml) in $PROFILE"
fi
PROFILE="$(cd "$PROFILE" && pwd)"

# 2. the interpreter, snakemake and the SLURM executor plugin
if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="$(command -v python3 || true)"
fi
if [[ -z "$PY" ]] || ! command -v "$PY" >/dev/null; then
    die "no Python interpreter found (set PYTHON)"
fi
"$PY" -c 'import snakemake, snakemake_executor_plugin_slurm' 2>/dev/null \
    || die "$PY lacks snakemake or snakemake-executor-plugin-slurm (pip install snakemake-executor-plugin-slurm)"

# 3. SLURM clients on this host
command -v sbatch >/dev/null || die "sbatch not found: run this on a SLURM login node (locally: bash .ci/slurm.sh start)"

# 4. run from the repository root unless the caller chose a Snakefile/directory
if [[ ! -f Snakefile ]]; then
    custom=0
    for arg in "$@"; do
        case "$arg" in
            -s | --snakefile | --snakefile=* | -d | --directory | --directory=*) custom=1 ;;
        esac
    done
    if ((custom == 0)); then
        note "no Snakefile in $(pwd); running in $ROOT"
        cd "$ROOT"
    fi
fi

note "workflow profile: $PROFILE"
note "look for: Using workflow specific profile $PROFILE for setting default command line arguments."
exec "$PY" -m snakemake --workflow-profile "$PROFILE" "$@"
