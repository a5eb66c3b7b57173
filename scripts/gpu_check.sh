#!/usr/bin/env bash
# The GPU check of issue 15, one script of at most 8 minutes on one GPU (an H100 was planned):
#
#   scripts/gpu_check.sh OUT_DIR            # on the GPU machine; figures land in OUT_DIR/summary.md and *.csv
#   scripts/gpu_check.sh OUT_DIR --smoke    # the same parts, tiny and on the CPU (tests/test_gpu_check.py)
#
# Parts, in order of importance; each has a time limit, and a part that would start after the overall limit
# (GPU_CHECK_BUDGET_S, default 470 s) is skipped and said so in the summary:
#   ci          the CI preset end to end on CUDA (device: cuda) through the local profile, so through the GPU
#               slots: the first run of the CUDA code path
#   build       the paper-scale MST file (in the background while ci runs), which the benchmarks read
#   training    python -m mmjsd.bench training --device cuda for mmjsd (every mode: loop, bare, reference)
#   epoch       one whole MST epoch of mmjsd (4,380 steps of 256 on the paper-scale file), timed by train()
#   concurrent  aggregate MST training throughput of 1, 2, 4 and 8 jobs at once on the GPU, with the GPU's
#               memory and utilisation sampled by nvidia-smi meanwhile
#   syncs       one epoch of 200 steps under torch.cuda.set_sync_debug_mode("warn")
#   switches    bench training's loop with --bf16, --compile, and both
# Large work files go to GPU_CHECK_WORK (default: a temporary directory, removed at the end); OUT_DIR gets
# only logs, CSVs and summary.md.
set -uo pipefail

OUT="${1:?usage: scripts/gpu_check.sh OUT_DIR [--smoke]}"
SMOKE=0
[[ "${2:-}" == "--smoke" ]] && SMOKE=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-470}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="${GPU_CHECK_WORK:-$(mktemp -d -t mmjsd-gpu-check-XXXXXX)}"
[[ -z "${GPU_CHECK_WORK:-}" ]] && trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
START=$SECONDS
: >"$OUT/parts.tsv"

if ((SMOKE)); then
    DEVICE=cpu CI_DEVICE=auto SCALE=0.01 STEPS=2 BATCH=16 JOBS="1 2" SYNC_STEPS=2
    TRAIN_EXTRA=(--workers 0 --threads 1) SWITCHES=("--bf16")
    CI_TARGETS=(results/runs/corrected/mnist_svhn_text/mmjsd/seed0/metrics/latent_probe.json)
else
    DEVICE=cuda CI_DEVICE=cuda SCALE=1 STEPS=200 BATCH=256 JOBS="1 2 4 8" SYNC_STEPS=200
    TRAIN_EXTRA=() SWITCHES=("--bf16" "--compile" "--bf16 --compile")
    CI_TARGETS=()
fi
MST="$WORK/mst/mnist_svhn_text.h5"

# run_part NAME LIMIT_S COMMAND...: runs COMMAND with its output in OUT/NAME.log, within LIMIT_S and what is
# left of the budget; records "NAME<TAB>status<TAB>seconds" in OUT/parts.tsv
run_part() {
    local name="$1" limit="$2" left rc t0=$SECONDS
    shift 2
    left=$((BUDGET_S - (SECONDS - START)))
    if ((left < 10)); then
        printf '%s\tskipped (out of time)\t0\n' "$name" >>"$OUT/parts.tsv"
        return
    fi
    ((limit > left)) && limit=$left
    echo "== $name (at most ${limit}s): $*" | tee -a "$OUT/progress.log"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status="timed out after ${limit}s" ;;
        *) status="failed (exit $rc)" ;;
    esac
    printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" >>"$OUT/parts.tsv"
    echo "   $status in $((SECONDS - t0))s" | tee -a "$OUT/progress.log"
}

{
    date -u +%FT%TZ
    nvidia-smi -L 2>&1 || echo "no nvidia-smi"
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
    "$PYTHON" -m mmjsd.gpu_slots --list
} >"$OUT/environment.txt" 2>&1

# build runs in the background while ci uses the GPU
"$PYTHON" -m mmjsd.bench build --scale "$SCALE" --raw-dir "$WORK/raw" --output "$MST" --csv "$OUT/build.csv" >"$OUT/build.log" 2>&1 &
BUILD_PID=$!

printf 'device: %s\n' "$CI_DEVICE" >"$WORK/device.yaml"
run_part ci 150 "$PYTHON" -m snakemake --workflow-profile workflow/profiles/local --directory "$WORK/ci" \
    --configfile config.yaml workflow/presets/ci.yaml "$WORK/device.yaml" --cores all "${CI_TARGETS[@]}"
cp "$WORK/ci/results/summary.md" "$OUT/ci_summary.md" 2>/dev/null
grep -h "gpu_slots:" "$WORK"/ci/results/logs/*/*/*.log "$WORK"/ci/results/logs/*/*/*/*.log 2>/dev/null >"$OUT/ci_gpu_slots.txt"

wait "$BUILD_PID" && printf 'build\tok\t-\n' >>"$OUT/parts.tsv" || printf 'build\tfailed\t-\n' >>"$OUT/parts.tsv"

run_part training 60 "$PYTHON" -m mmjsd.bench training --data "$MST" --variants mmjsd --device "$DEVICE" \
    --steps "$STEPS" --batch-size "$BATCH" "${TRAIN_EXTRA[@]}" --csv "$OUT/training.csv"

epoch_hparams="$("$PYTHON" - <<EOF
import dataclasses
from mmjsd.core.config import load_config
from mmjsd.core.io import canonical_json
cfg = load_config("config.yaml").train_config("mnist_svhn_text", "mmjsd")
print(canonical_json(dataclasses.asdict(dataclasses.replace(cfg, epochs=1))))
EOF
)"
run_part epoch 60 "$PYTHON" -m mmjsd.train --dataset mnist_svhn_text --variant mmjsd --seed 0 --protocol corrected --hparams "$epoch_hparams" \
    --data "$MST" --out-dir "$WORK/epoch" --checkpoint "$WORK/epoch/last.pt" --device "$DEVICE" --threads 1 --no-progress
cp "$WORK/epoch/train_log.csv" "$OUT/epoch_train_log.csv" 2>/dev/null

SMI_PID=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,nounits -lms 500 >"$OUT/concurrent_nvidia_smi.csv" 2>&1 &
    SMI_PID=$!
fi
# shellcheck disable=SC2086  # JOBS is a list
run_part concurrent 120 "$PYTHON" -m mmjsd.bench concurrent --data "$MST" --variant mmjsd --jobs $JOBS --device "$DEVICE" \
    --steps "$STEPS" --batch-size "$BATCH" --csv "$OUT/concurrent.csv"
[[ -n "$SMI_PID" ]] && kill "$SMI_PID" 2>/dev/null

run_part syncs 40 "$PYTHON" -m mmjsd.bench syncs --data "$MST" --variant mmjsd --device "$DEVICE" --steps "$SYNC_STEPS" \
    --batch-size "$BATCH" --csv "$OUT/syncs.csv"

for switches in "${SWITCHES[@]}"; do
    name="training_$(tr -d '-' <<<"$switches" | tr ' ' '_')"
    # shellcheck disable=SC2086  # the switches are separate words
    run_part "$name" 60 "$PYTHON" -m mmjsd.bench training --data "$MST" --variants mmjsd --device "$DEVICE" --modes loop \
        --steps "$STEPS" --batch-size "$BATCH" "${TRAIN_EXTRA[@]}" $switches --csv "$OUT/$name.csv"
done

"$PYTHON" -m mmjsd.bench gpu-summary "$OUT" >"$OUT/summary.md" 2>"$OUT/summary.log"
echo "== done in $((SECONDS - START))s; summary: $OUT/summary.md" | tee -a "$OUT/progress.log"
cat "$OUT/summary.md"
