#!/usr/bin/env bash
# The prefix-sums study of lab/prefix_sums/README.md.
# Six variants {none,input,internal} x {outer norm none,layernorm} with seed 0, plus seeds 1 and 2 of
# internal recall + LayerNorm; 10 minutes each on a 2-core CPU, two runs at a time with one thread
# each. Then evaluation and stability analysis. About 2 hours in all.
# Usage: bash lab/prefix_sums/study.sh [OUT]   (default OUT=runs; finished steps are skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
source lab/lib.sh
one_thread_out "${1:-runs}"

train() {  # recall norm seed
  train_once "$OUT/ps-$1-$2-s$3" - --task prefix-sums --recall "$1" --outer-norm "$2" --minutes 10 --seed "$3" \
    --compile --quiet
}
evaluate() {  # run kind [max-iters of main]
  local run="$OUT/$1" args
  [ -s "$run/eval-$2.json" ] && return
  case $2 in
    main) args="--split 32,512 --n 1000 --max-iters ${3:-450}" ;;  # best config: to ~2x the best iteration
    long) args="--split 1024 --n 1000 --max-iters 520" ;;
    tenk) args="--split 512 --n 10000 --max-iters 260" ;;
    var)  args="--split 32,512 --n 500 --max-iters 400" ;;   # the other five variants
  esac
  looped eval "$run" $args --halting off --compile --quiet --json --out "$run/eval-$2" > "$run/eval-$2.json.tmp"
  mv "$run/eval-$2.json.tmp" "$run/eval-$2.json"
}

{ train internal layernorm 0; train internal layernorm 1; train internal layernorm 2; train input none 0; } &
{ train input layernorm 0; train none layernorm 0; train none none 0; train internal none 0; } &
wait
{ evaluate ps-internal-layernorm-s0 main; evaluate ps-internal-layernorm-s0 long
  evaluate ps-internal-layernorm-s1 main 400; evaluate ps-internal-layernorm-s2 main 400; } &
{ for v in input-layernorm none-layernorm none-none internal-none input-none; do evaluate ps-$v-s0 var; done
  evaluate ps-internal-layernorm-s0 tenk; } &
wait
for v in internal-layernorm input-layernorm none-layernorm none-none internal-none input-none; do
  [ -s "$OUT/ps-$v-s0/analysis/analysis.json" ] || looped analyze "$OUT/ps-$v-s0" --n 16 > /dev/null
done
python lab/prefix_sums/report.py "$OUT" lab/prefix_sums
