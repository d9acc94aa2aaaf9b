#!/usr/bin/env bash
# Which attention groups the `looped reproduce` chess plans should use, judged as the reproduction
# judges chess: exact top-2 squares (and, for reference, the best legal move) on the held-out
# training-tier puzzles (mate1, mate2: one position in ten, never trained on), at N and 4N.
# Two runs at the reproduction's loss (the squares loss, not the legal-move loss), equal in all else:
#   default  the task's groups (rank, file, diagonals and the whole board)
#   lines    rank, file and diagonals only (looped.tasks.chess.task.LINES_ONLY)
# input recall + LayerNorm, N 8, alpha 1, batch 64, STEPS steps (default 2,500, the validation
# budget; the cpu reproduction trains 300), seed 0, one thread each.
# Usage: [STEPS=300] bash lab/chess/repro_groups.sh [OUT]   (default OUT=runs/repro-groups-STEPS;
# finished steps are skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
source lab/lib.sh
STEPS=${STEPS:-2500}
OUT=${1:-runs/repro-groups-$STEPS}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 TORCHINDUCTOR_COMPILE_THREADS=1
LINES_ONLY=$(python -c "import json; from looped.tasks.chess.board import LINES_ONLY; print(json.dumps(LINES_ONLY))")

WARMUP=$(( STEPS / 10 < 200 ? STEPS / 10 : 200 ))  # the rules-v2 plans' warmup: a tenth, at most 200

run() {  # name [looped train flags...]
  local name=$1; shift
  train_once "$OUT/$name" "$OUT/$name.time.txt" --task chess --recall input --outer-norm layernorm \
    --train-iters 8 --alpha 1 --batch-size 64 --steps "$STEPS" --warmup-steps "$WARMUP" --seed 0 --compile \
    --quiet "$@"
  for metric in exact legal; do
    [ -s "$OUT/$name.$metric.json" ] || python lab/paired_eval.py score "$OUT/$name" --iters 8,32 \
      --splits mate1,mate2 --metric "$metric" --n 2000 --out "$OUT/$name.$metric.json"
  done
}
run default &
run lines --groups "$LINES_ONLY" &
wait
{ for metric in exact legal; do
    for t in 8 32; do
      echo "## $metric at $t: lines - default"; echo
      python lab/paired_eval.py pair "$OUT/lines.$metric.json:$t" "$OUT/default.$metric.json:$t"; echo
    done
  done
} > "$OUT/tables.md"
