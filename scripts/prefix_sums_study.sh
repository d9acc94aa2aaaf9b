#!/usr/bin/env bash
# The prefix-sums study of docs/results/prefix_sums.md: six variants (one seed each) plus two more
# seeds of internal recall + LayerNorm, 12 minutes each on a 2-core CPU, two runs at a time with
# one thread each; then evaluation. Takes about 2 hours. Usage: bash scripts/prefix_sums_study.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
mkdir -p "$OUT"
train() {  # recall norm seed
  local run="$OUT/ps-$1-$2-s$3"
  [ -f "$run/model.safetensors" ] && [ -f "$run/.done" ] && return
  OMP_NUM_THREADS=1 looped train --task prefix-sums --recall "$1" --outer-norm "$2" --minutes 12 --seed "$3" \
    --out "$run" --compile --quiet $( [ -f "$run/config.json" ] && echo --resume ) && touch "$run/.done"
}
queue_a() { train internal layernorm 0; train internal layernorm 1; train internal layernorm 2; train input none 0; }
queue_b() { train input layernorm 0; train none layernorm 0; train none none 0; train internal none 0; }
queue_a & queue_b & wait
for run in "$OUT"/ps-*-s0 "$OUT"/ps-internal-layernorm-s1 "$OUT"/ps-internal-layernorm-s2; do
  looped eval "$run" --lengths 32,512,1024 --n 1000 --max-iters 640 --compile --quiet --json > "$run/eval-1000.json"
done
for run in "$OUT"/ps-internal-layernorm-s{0,1,2}; do
  looped eval "$run" --lengths 512 --n 10000 --max-iters 320 --compile --quiet --out "$run/eval-10k" --json \
    > "$run/eval-10k.json"
done
