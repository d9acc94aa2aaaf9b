#!/usr/bin/env bash
# The paper-cpu runs of docs/paper.md: each task trained from the README's command,
# `looped train --task TASK --preset paper-cpu` (seed 0), then evaluated on its easy and hard splits
# with halting off, 1,000 examples a split. Two runs at a time, one thread each.
# Usage: bash lab/paper/paper_cpu.sh [OUT]   (default OUT=runs; finished steps are skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
source lab/lib.sh
one_thread_out "${1:-runs}"

train() {  # task
  train_once "$OUT/paper-cpu-$1" "$OUT/paper-cpu-$1.time" --task "$1" --preset paper-cpu --quiet
}
evaluate() {  # task looped-eval-flags...
  local run="$OUT/paper-cpu-$1"
  shift
  [ -s "$run/curve.json" ] && return
  looped eval "$run" "$@" --n 1000 --halting off --quiet --json > "$run/curve.json.tmp"
  mv "$run/curve.json.tmp" "$run/curve.json"
}

{ train sudoku; evaluate sudoku --split easy,medium,hard,hardest --max-iters 120; } &
{ train prefix-sums; evaluate prefix-sums --split 32,128,512 --max-iters 300
  train chess; evaluate chess --split mate1,mate2,mate3,mate4 --max-iters 120; } &
wait
python lab/paper/report.py "$OUT" lab/paper
