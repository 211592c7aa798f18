#!/usr/bin/env bash
# Every speed goal of the GPU path in one call, for a bare, offline GPU node:
#   bash benchmarks/device_checks.sh cuda [--wheels DIR] [--out DIR]   # DIR from benchmarks/wheelhouse.sh
#   bash benchmarks/device_checks.sh cpu --quick [--out DIR]           # tiny sizes, a test in the suite
# Installs the wheels the node lacks (pip --no-index --no-deps --target, nothing else touched),
# runs goals 1-7 (benchmarks/device_checks.py) within 8 minutes, prints one PASS or FAIL line
# per goal, writes DIR/device_checks.json (default out: bench-logs) and exits non-zero if any
# check fails or cannot run.
set -uo pipefail
device=${1:-cuda}
shift || true
quick=() wheels=.whl out=${OUT:-bench-logs}
while (($#)); do
    case $1 in
        --quick) quick=(--quick) ;;
        --wheels) wheels=$2; shift ;;
        --out) out=$2; shift ;;
        *) echo "device_checks.sh: unknown option $1 (--quick, --wheels DIR, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$out" && cd "$out" && pwd)
cd "$here" || exit 2
python=${PYTHON:-python}
site=""
# what the GPU image lacks (ot.batch: POT >= 0.9.6); nothing to install where all of it imports
missing=$("$python" -c "import importlib.util as u; print(*[m for m in ('ot.batch', 'omegaconf', 'mlxtend', 'submitit') if u.find_spec(m.split('.')[0]) is None or u.find_spec(m) is None])" 2>/dev/null)
if [[ -n $missing ]]; then
    compgen -G "$wheels/*.whl" >/dev/null || {
        echo "FAIL install: missing $missing and no wheels in $wheels (make them with benchmarks/wheelhouse.sh $wheels)"
        exit 1
    }
    site="$out/site-packages"
    "$python" -m pip install --quiet --no-index --no-deps --target "$site" "$wheels"/*.whl || {
        echo "FAIL install: the wheels in $wheels did not install"
        exit 1
    }
    echo "installed $(ls "$wheels"/*.whl | wc -l) wheels from $wheels into $site (missing were: $missing)"
fi
# --quick on a shared CI CPU: one thread per process (spinning OpenMP threads of concurrent
# processes on a loaded 2-core machine made a tiny DM iteration 100x slower)
((${#quick[@]})) && export OMP_NUM_THREADS=1
export PYTHONPATH="$here${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
budget=${DEVICE_CHECKS_BUDGET_S:-480}
timeout --signal=TERM --kill-after=10 "$budget" "$python" benchmarks/device_checks.py "$device" "${quick[@]}" --out "$out"
status=$?
if ((status == 124 || status == 137)); then
    echo "FAIL budget: the checks ran past ${budget} s; $out/device_checks.json holds those that finished"
fi
exit $status
