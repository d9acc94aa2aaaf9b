#!/usr/bin/env bash
# Set up looped on a fresh machine, never in the system Python: the active virtual environment, else
# ./.venv (made once, then reused). Installs a CPU build of torch unless LOOPED_TORCH=cuda (PyPI's
# default build, which brings CUDA on Linux: about 5 GB more), then looped itself with its test tools.
# Debian's qqwing (a sudoku cross-check test) and stockfish (regenerating the chess puzzles) are
# optional: installed where apt-get works, skipped elsewhere. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  source .venv/bin/activate
fi
pip() { python -m pip --disable-pip-version-check --quiet "$@"; }
if ! python -c "import torch" 2> /dev/null; then
  if [ "${LOOPED_TORCH:-cpu}" = cuda ]; then
    pip install "torch>=2.4,<=2.14.1"
  else  # the CPU build: PyTorch's own index, else the default one (where it is the CPU build, as here)
    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1 \
      || pip install torch==2.13.0
  fi
fi
pip install -e ".[test]"
command -v qqwing > /dev/null && { command -v stockfish || test -x /usr/games/stockfish; } > /dev/null \
  || apt-get install -y -qq qqwing stockfish > /dev/null 2>&1 || echo "qqwing/stockfish not installed (optional)" >&2
echo "looped installed in $(python -c 'import sys; print(sys.prefix)')" >&2
