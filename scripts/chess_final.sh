#!/usr/bin/env bash
# The final chess recipe of docs/results/chess/ (chosen on validation: docs/results/chess/validation.md).
# Two seeds of input recall + LayerNorm, attention over each square's king neighbourhood only
# (looped.tasks.chess.task.NEIGHBOURS), the legal-move loss and the file flip, training depth 16,
# and the pass-through trained alike (one iteration), all on mate in 1-2 only, one thread each
# (two trainings at a time on a 2-core CPU). $STEPS steps took about 3.6 CPU hours here (0.29-0.30
# CPU s a step at depth 16); each training's CPU and wall seconds are appended to OUT/ch-final-NAME.time.txt
# (a killed training writes no line, so a resumed one's line covers only its last segment).
# Then every run is scored once per puzzle (scripts/paired_eval.py) on the test splits, mate in 3-5 and the rated bands, up to 4x the
# training depth, and compared in pairs (same puzzles, 95% bootstrap intervals) with itself at
# the training depth, with the pass-through and with the shipped looped/models/chess.
# Needs the extracted rated set (python scripts/chess_data.py lichess).
# Usage: bash scripts/chess_final.sh [OUT]   (default OUT=runs; finished steps are skipped, trainings resume)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs}
STEPS=${STEPS:-44000}
ITERS=16
N=${N:-2000}
SPLITS=mate3,mate4,mate5,rated-0-1000,rated-1000-1400,rated-1400-1800,rated-1800-2200,rated-2200-3000
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 TORCHINDUCTOR_COMPILE_THREADS=1
TIMEFORMAT="cpu_s %U %S wall_s %R"
NEIGHBOUR_GROUPS=$(python -c "import json; from looped.tasks.chess.task import NEIGHBOURS; print(json.dumps(NEIGHBOURS))")

train() {  # name seed train-iters
  local run="$OUT/ch-final-$1"
  [ -f "$run/.done" ] && return
  local resume=""
  [ -f "$run/config.json" ] && resume="--resume"
  { time looped train --task chess --recall input --outer-norm layernorm --train-iters "$3" --alpha 1 \
      --groups "$NEIGHBOUR_GROUPS" --batch-size 64 --masked-loss --augment --steps "$STEPS" --seed "$2" --eval-every 2000 --compile --quiet \
      --out "$run" $resume 2>&3; } 3>&2 2>>"$OUT/ch-final-$1.time.txt"
  touch "$run/.done"
}
score() {  # file run iterations: each puzzle's best-legal-move result, one pass per run
  [ -s "$OUT/$1" ] || python scripts/paired_eval.py score "$2" --iters "$3" --splits "$SPLITS" --n "$N" --out "$OUT/$1"
}
paired() {  # title a.json:iteration b.json:iteration
  local file="$OUT/ch-final-paired.md"
  grep -qF "## $1" "$file" 2>/dev/null && return
  { echo "## $1"; echo; python scripts/paired_eval.py pair "$OUT/$2" "$OUT/$3"; echo; } > "$file.tmp"
  cat "$file.tmp" >> "$file" && rm "$file.tmp"
}

T=$((4 * ITERS))
{ train s0 0 "$ITERS"; train pass 0 1; } &
{ train s1 1 "$ITERS"; } &
wait
{ score ch-final-s0.score.json "$OUT/ch-final-s0" "1,$ITERS,$T"; score ch-final-pass.score.json "$OUT/ch-final-pass" 1; } &
{ score ch-final-s1.score.json "$OUT/ch-final-s1" "1,$ITERS,$T"; score ch-final-shipped.score.json looped/models/chess 8,32; } &
wait
for s in s0 s1; do
  paired "ch-final-$s at $T against itself at $ITERS (training depth)" "ch-final-$s.score.json:$T" "ch-final-$s.score.json:$ITERS"
  paired "ch-final-$s at $T against the pass-through at 1" "ch-final-$s.score.json:$T" ch-final-pass.score.json:1
  paired "ch-final-$s at $T against looped/models/chess at 32 (4x its training depth)" "ch-final-$s.score.json:$T" ch-final-shipped.score.json:32
done
{ for t in 1 "$ITERS" "$T"; do  # the two seeds side by side, with mean and spread
    echo "## seeds 0 and 1 at $t"; echo
    python scripts/paired_eval.py table "$OUT/ch-final-s0.score.json:$t" "$OUT/ch-final-s1.score.json:$t" --spread; echo
  done
  echo "## pass-through at 1, looped/models/chess at 8 and 32"; echo
  python scripts/paired_eval.py table "$OUT/ch-final-pass.score.json:1" "$OUT/ch-final-shipped.score.json:8" "$OUT/ch-final-shipped.score.json:32"
} > "$OUT/ch-final-tables.md"
python scripts/paired_eval.py plot "$OUT"/ch-final-{s0,s1,pass,shipped}.score.json --out "$OUT/ch-final-curves.png"
