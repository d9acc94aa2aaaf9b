#!/usr/bin/env bash
# The sudoku study of lab/sudoku/README.md.
# recall {internal, input} x 2 seeds and recall none, all with LayerNorm outer norm; 3,000 steps each
# (batch 64, training depth 20, augmentation) on the easy and medium tiers only, one thread per run:
# three runs at a time, then two, on a 2-core CPU (about 70 minutes). Then each run is evaluated on
# every tier up to 160 iterations (the best run: 1,000 puzzles per tier to 200 iterations).
# Usage: bash lab/sudoku/study.sh [OUT]   (default OUT=runs; finished steps are skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
source lab/lib.sh
one_thread_out "${1:-runs}"
STEPS=${STEPS:-3000}

train() {  # recall seed
  train_once "$OUT/sd-$1-layernorm-s$2" - --task sudoku --recall "$1" --outer-norm layernorm --steps "$STEPS" \
    --seed "$2" --train-iters 20 --batch-size 64 --augment --eval-every 250 --compile --quiet
}
evaluate() {  # run n max-iters
  local run="$OUT/$1"
  [ -s "$run/eval.json" ] && return
  looped eval "$run" --n "$2" --max-iters "$3" --halting off --compile --quiet --json --out "$run/eval" > "$run/eval.json.tmp"
  mv "$run/eval.json.tmp" "$run/eval.json"
}

{ train internal 0; train internal 1; } &
{ train input 0; train input 1; } &
{ train none 0; } &
wait
for run in sd-internal-layernorm-s1 sd-input-layernorm-s0 sd-input-layernorm-s1 sd-none-layernorm-s0; do
  evaluate "$run" 500 160
done
evaluate sd-internal-layernorm-s0 1000 200
