#!/usr/bin/env bash
# A final chess recipe of lab/chess/, each chosen on validation (lab/chess/validation.md):
#   king16  input recall + LayerNorm, attention over each square's king neighbourhood only
#           (looped.tasks.chess.task.NEIGHBOURS), d_model 64, training depth 16, 44,000 steps
#   lines   input recall + LayerNorm, attention along each square's rank, file and diagonals only,
#           d_model 64, training depth 8, 75,000 steps
# Both: the legal-move loss, the file flip, progressive loss, batch 64, mate in 1-2 only. Two seeds and
# the pass-through trained alike (one iteration), one thread each (two trainings at a time on a 2-core
# CPU). Each training's CPU and wall seconds are appended to OUT/PREFIX-NAME.time.txt (a killed
# training writes no line, so a resumed one's line covers only its last segment).
# Then every run is scored once per puzzle (lab/paired_eval.py) on the test splits, mate in 3-5
# and the rated bands, up to 4x the training depth, and compared in pairs (same puzzles, 95% bootstrap
# intervals) with itself at the training depth, with the pass-through and with the model shipped as
# looped/models/chess before the lines final (lab/chess/runs/ch-input-long). Needs the
# extracted rated set (python scripts/chess_data.py lichess).
# Usage: bash lab/chess/final.sh RECIPE [OUT]   (default OUT=runs; finished steps are skipped, trainings resume)
set -euo pipefail
cd "$(dirname "$0")/../.."
source lab/lib.sh
RECIPE=${1:-}
OUT=${2:-runs}
N=${N:-2000}
case "$RECIPE" in
  king16) PREFIX=ch-final D_MODEL=64 ITERS=16 STEPS=44000
          ATTN_GROUPS=$(python -c "import json; from looped.tasks.chess.board import NEIGHBOURS; print(json.dumps(NEIGHBOURS))") ;;
  lines)  PREFIX=ch-lines D_MODEL=64 ITERS=8 STEPS=75000
          ATTN_GROUPS=$(python -c "import json; from looped.tasks.chess.board import LINES_ONLY; print(json.dumps(LINES_ONLY))") ;;
  *) echo "usage: bash lab/chess/final.sh {king16|lines} [OUT]" >&2; exit 2 ;;
esac
SPLITS=mate3,mate4,mate5,rated-0-1000,rated-1000-1400,rated-1400-1800,rated-1800-2200,rated-2200-3000
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 TORCHINDUCTOR_COMPILE_THREADS=1

train() {  # name seed train-iters
  train_once "$OUT/$PREFIX-$1" "$OUT/$PREFIX-$1.time.txt" --task chess --recall input --outer-norm layernorm \
    --train-iters "$3" --alpha 1 --groups "$ATTN_GROUPS" --d-model "$D_MODEL" --batch-size 64 --masked-loss \
    --augment --steps "$STEPS" --seed "$2" --eval-every 2000 --compile --quiet
}
score() {  # file run iterations: each puzzle's best-legal-move result, one pass per run
  [ -s "$OUT/$1" ] || python lab/paired_eval.py score "$2" --iters "$3" --splits "$SPLITS" --n "$N" --out "$OUT/$1"
}
paired() {  # title a.json:iteration b.json:iteration
  local file="$OUT/$PREFIX-paired.md"
  grep -qF "## $1" "$file" 2>/dev/null && return
  { echo "## $1"; echo; python lab/paired_eval.py pair "$OUT/$2" "$OUT/$3"; echo; } > "$file.tmp"
  cat "$file.tmp" >> "$file" && rm "$file.tmp"
}

T=$((4 * ITERS))
{ train s0 0 "$ITERS"; train pass 0 1; } &
{ train s1 1 "$ITERS"; } &
wait
{ score $PREFIX-s0.score.json "$OUT/$PREFIX-s0" "1,$ITERS,$T"; score $PREFIX-pass.score.json "$OUT/$PREFIX-pass" 1; } &
{ score $PREFIX-s1.score.json "$OUT/$PREFIX-s1" "1,$ITERS,$T"; score $PREFIX-shipped.score.json lab/chess/runs/ch-input-long 8,32; } &
wait
for s in s0 s1; do
  paired "$PREFIX-$s at $T against itself at $ITERS (training depth)" "$PREFIX-$s.score.json:$T" "$PREFIX-$s.score.json:$ITERS"
  paired "$PREFIX-$s at $T against the pass-through at 1" "$PREFIX-$s.score.json:$T" $PREFIX-pass.score.json:1
  paired "$PREFIX-$s at $T against the earlier looped/models/chess at 32 (4x its training depth)" "$PREFIX-$s.score.json:$T" $PREFIX-shipped.score.json:32
done
{ for t in 1 "$ITERS" "$T"; do  # the two seeds side by side, with mean and spread
    echo "## seeds 0 and 1 at $t"; echo
    python lab/paired_eval.py table "$OUT/$PREFIX-s0.score.json:$t" "$OUT/$PREFIX-s1.score.json:$t" --spread; echo
  done
  echo "## pass-through at 1, the earlier looped/models/chess at 8 and 32"; echo
  python lab/paired_eval.py table "$OUT/$PREFIX-pass.score.json:1" "$OUT/$PREFIX-shipped.score.json:8" "$OUT/$PREFIX-shipped.score.json:32"
} > "$OUT/$PREFIX-tables.md"
python lab/paired_eval.py plot "$OUT"/$PREFIX-{s0,s1,pass,shipped}.score.json --out "$OUT/$PREFIX-curves.png"
