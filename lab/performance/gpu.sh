#!/usr/bin/env bash
# The CUDA path in one short run (about 7 minutes on one H200): every CLI entry point on the GPU,
# fp32 and bf16 training throughput, and halting evaluation of the shipped models.
# Usage: bash lab/performance/gpu.sh [OUT]   (uses `looped` if installed, else python3 -m looped from here)
# Each step prints its exit code and seconds; a failing step does not stop the others.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/gpu}
mkdir -p "$OUT"
if command -v looped > /dev/null; then L=(looped); else L=(python3 -m looped); fi
FEN="6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"
SUDOKU="530070000600195000098000060800060003400803001700020006060000280000419005000080079"

step() {  # name command...
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  "$@"
  echo "=== $name: rc=$? in $((SECONDS - t0)) s"
}

step device python3 -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0))"
step train-fp32 "${L[@]}" train --task prefix-sums --recall internal --outer-norm layernorm --minutes 1.5 \
  --batch-size 512 --compile --quiet --out "$OUT/ps"
step train-bf16 "${L[@]}" train --task prefix-sums --recall internal --outer-norm layernorm --minutes 1.5 \
  --batch-size 512 --compile --bf16 --quiet --out "$OUT/ps-bf16"
step eval-fp32 "${L[@]}" eval "$OUT/ps" --split 32,512,1024 --n 1000 --max-iters 520 --halting off --compile --quiet --out "$OUT/ps/eval"
step eval-bf16-run "${L[@]}" eval "$OUT/ps-bf16" --split 32,512 --n 1000 --max-iters 300 --halting off --quiet --out "$OUT/ps-bf16/eval"
step eval-halting "${L[@]}" eval looped/models/prefix-sums --split 32,512,1024 --n 1000 --max-iters 480 --quiet --out "$OUT/halt"
step eval-sudoku "${L[@]}" eval looped/models/sudoku --split hard,hardest --n 1000 --max-iters 160 --quiet --out "$OUT/sd"
step analyze "${L[@]}" analyze "$OUT/ps" --n 4
step dtnet-400 "${L[@]}" train --task prefix-sums --arch dtnet --width 400 --minutes 1 --quiet --out "$OUT/dt"
step solve-sudoku "${L[@]}" solve sudoku "$SUDOKU"
step solve-chess "${L[@]}" solve chess "$FEN"
for run in ps ps-bf16 dt; do
  python3 -c "import json,sys; m=[json.loads(l) for l in open(sys.argv[1])]; print(sys.argv[2], 'steps', m[-1]['step'], 'train s', m[-1]['elapsed_s'])" \
    "$OUT/$run/metrics.jsonl" "$run" || true
done
