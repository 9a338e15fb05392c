#!/usr/bin/env bash
# The published memory grid (docs/results.md, "Memory graded by horizon"), run so that it survives the end of a
# session: one task at a time, cheapest first, each task's finished cells committed as soon as it is done, so a
# later run of the same command starts where the last one stopped (finished cells are read back, never re-run).
# Usage: bash tools/memory_grid.sh [PROFILE] [THREADS] [extra cadence-compare overrides...]
#   PROFILE: memory (default) | memory_validity (run after memory: it trains on memory's datasets);  THREADS:
#   torch/numba threads of the one process (default 1, which leaves the machine's other core free).
# Both profiles run into docs/comparison/memory; each one's report is also copied to docs/comparison/memory/PROFILE.md.
# Any other grid resumes across sessions the same way with GRID_OUT set, e.g. the BC grid of issue 20:
#   GRID_OUT=docs/comparison/bc bash tools/memory_grid.sh full 1 budget.rounds=2
set -euo pipefail
profile="${1:-memory}"; threads="${2:-1}"; shift $(( $# > 2 ? 2 : $# ))
out="${GRID_OUT:-docs/comparison/memory}"
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" NUMBA_NUM_THREADS="$threads"
python="${CADENCE_PYTHON:-.venv/bin/python}"; cadence_compare="$(dirname "$python")/cadence-compare"
mapfile -t tasks < <("$python" - "$profile" <<'PY'
import sys
from cadence.configs import compose
cfg = compose("compare", [f"profile={sys.argv[1]}"])
kwargs = lambda t: (cfg.variants.get(t) or {}).get("kwargs", {})  # an env config that is no variant has none
order = lambda t: (kwargs(t).get("delay_steps", kwargs(t).get("lag_steps", 0)), t)
print("\n".join(sorted(cfg.tasks, key=order)))  # the shortest horizons, the cheapest cells, first
PY
)
commit() {  # commit PATH's changes alone (other staged work is left as it is); retried while git is busy
    local path="$1" message="$2"
    for _ in 1 2 3 4 5 6; do
        git add "$path" && { git diff --cached --quiet -- "$path" || git commit -q -m "$message" -- "$path"; } && return
        sleep 10
    done
    echo "memory_grid: could not commit $path; commit it by hand" >&2
}
for task in "${tasks[@]}"; do
    "$cadence_compare" "profile=$profile" "tasks=[$task]" "out=$out" "report=$out/$profile.md" "$@"
    commit "$out/cells" "Memory grid ($profile): $task cells"   # the whole folder: a sweep's trials are cells too
done
"$cadence_compare" "profile=$profile" "out=$out" "report=$out/$profile.md" "$@"   # every cell done: the whole report
commit "$out" "Memory grid ($profile): report"
