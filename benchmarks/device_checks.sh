#!/usr/bin/env bash
# Every speed check the issues name, as one script, for a GPU machine (or `cpu` to compare):
#   benchmarks/device_checks.sh [cuda|cpu]
# Each check prints ratios measured side by side in one process; logs go to ${OUT:-bench-logs}/.
# Targets on a GPU: DM batched >= 2x the per-class loop; dm+wbary <= 1.3x dm at IPC 50;
# evaluation ensemble >= 3x sequential for num_eval=5 (ConvNet, IPC 10 and 50).
set -uo pipefail
device=${1:-cuda}
out=${OUT:-bench-logs}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python}

check() {
    local name=$1
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.log"
}

check dm_batched_g10 "$python" benchmarks/dm_batched_vs_loop.py --device "$device" --groups 10
check dm_batched_g2 "$python" benchmarks/dm_batched_vs_loop.py --device "$device" --groups 2
check dm_vs_reference "$python" benchmarks/dm_vs_reference.py --device "$device" --threads 16
check op_counts "$python" benchmarks/op_counts.py
check wbary_vs_dm "$python" benchmarks/wbary_vs_dm.py --device "$device"
check ensemble "$python" benchmarks/ensemble_speed.py --device "$device" --ipc 10 50 --num-eval 5
check overhead "$python" -m fairbench bench overhead device="$device"
