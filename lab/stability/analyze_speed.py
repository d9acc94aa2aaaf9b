"""`looped analyze` on the shipped sudoku model: the attractor-aware analysis against the one before it.

    python lab/stability/analyze_speed.py --before DIR [--n 64] [--max-iter 500] [--threads 2]

DIR is a checkout of the code before attractor classification (commit ce33033: ``git worktree add
DIR ce33033``). Both run ``looped analyze looped/models/sudoku`` on the same examples with the same
``--n`` and ``--max-iter``, each in a fresh process with the same thread count, one after the other.
Prints both wall times and their ratio (target: at most 2).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(code: Path, n: int, max_iter: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `looped analyze` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "looped", "analyze", str(code / "looped/models/sudoku"), "--n", str(n),
               "--max-iter", str(max_iter), "--out", out]
        start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True, help="a checkout of the code before (ce33033)")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--max-iter", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(f"# looped analyze looped/models/sudoku --n {args.n} --max-iter {args.max_iter}; {args.threads} threads; "
          f"{platform.processor() or platform.machine()}")
    before = timed(args.before.resolve(), args.n, args.max_iter, args.threads)
    print(f"before (fixed-point analysis): {before[0]:.0f} s wall, {before[1]:.0f} s CPU")
    after = timed(ROOT, args.n, args.max_iter, args.threads)
    print(f"after (attractor analysis):    {after[0]:.0f} s wall, {after[1]:.0f} s CPU")
    print(f"ratio after / before: {after[0] / before[0]:.2f} wall, {after[1] / before[1]:.2f} CPU (target <= 2)")


if __name__ == "__main__":
    main()
