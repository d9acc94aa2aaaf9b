#!/usr/bin/env bash
# The chess study of lab/chess/README.md.
# recall {internal, input, none} with LayerNorm outer norm, plus the pass-through baseline (one
# iteration in training and test), trained on mate1 + mate2 only (batch 64, training depth
# $ITERS, progressive loss only: alpha 1), two runs at a time with one thread each on a 2-core CPU.
# Then the best of the three recall variants (input recall) and the pass-through baseline are trained
# again for $LONG_STEPS steps. Every run is evaluated on every split (mate1-2 held out, mate3-5,
# rated Lichess bands; up to $N puzzles each).
# Needs the shipped puzzles and the extracted rated set (python scripts/chess_data.py lichess).
# Usage: bash lab/chess/study.sh [OUT]   (default OUT=runs; finished steps are skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
source lab/lib.sh
OUT=${1:-runs}
STEPS=${STEPS:-5000}
LONG_STEPS=${LONG_STEPS:-15000}
ITERS=${ITERS:-8}
MAX_ITERS=${MAX_ITERS:-48}
N=${N:-2000}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1

train() {  # name recall train-iters steps
  train_once "$OUT/ch-$1" - --task chess --recall "$2" --outer-norm layernorm --steps "$4" --seed 0 \
    --train-iters "$3" --alpha 1 --batch-size 64 --eval-every 250 --compile --quiet
}
evaluate() {  # name max-iters
  local run="$OUT/ch-$1"
  [ -s "$run/eval.json" ] && return
  looped eval "$run" --n "$N" --max-iters "$2" --halting off --compile --quiet --json --out "$run/eval" > "$run/eval.json.tmp"
  mv "$run/eval.json.tmp" "$run/eval.json"
}

{ train internal-layernorm internal "$ITERS" "$STEPS"; train none-layernorm none "$ITERS" "$STEPS"; } &
{ train input-layernorm input "$ITERS" "$STEPS"; train passthrough internal 1 "$STEPS"; } &
wait
{ train input-long input "$ITERS" "$LONG_STEPS"; } &
{ train passthrough-long internal 1 "$LONG_STEPS"; evaluate passthrough 1; evaluate passthrough-long 1; } &
wait
{ evaluate internal-layernorm "$MAX_ITERS"; evaluate none-layernorm "$MAX_ITERS"; evaluate input-long "$MAX_ITERS"; } &
{ evaluate input-layernorm "$MAX_ITERS"; } &
wait
