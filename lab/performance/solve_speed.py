"""``looped solve --file``: inputs per second, one input at a time (the code before) against batched (now).

    python lab/performance/solve_speed.py --before DIR [--n 1000] [--threads 2]

DIR is a checkout of the code before batched solving (commit ce33033). Both solve the same ``--n``
sudokus of mixed difficulty (equal shares of every tier of the generator, seed 42) with the shipped
model and adaptive halting, through ``looped solve sudoku --file``, each in a fresh process. Prints
inputs per wall and per CPU second of each, the speed-ups (aim: at least 10x; on a shared machine the CPU
seconds are the measure), and whether the answers agree line for line.
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


def puzzles(n: int) -> list[str]:
    from looped.tasks.sudoku.task import TIERS, puzzle_set

    per = -(-n // len(TIERS))
    out = [p for tier in TIERS for p in puzzle_set(tier, per, seed=42)["puzzles"]][:n]
    return ["".join(str(d) for d in p) for p in out]


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def solve_file(code: Path, path: Path, threads: int) -> tuple[float, float, list[str]]:
    """Wall seconds, CPU seconds and answers of ``looped solve sudoku --file path`` run by the code at ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)}
    start, cpu = time.perf_counter(), child_cpu_seconds()
    out = subprocess.run([sys.executable, "-m", "looped", "solve", "sudoku", "--file", str(path)], env=env,
                         check=True, capture_output=True, text=True)
    return time.perf_counter() - start, child_cpu_seconds() - cpu, out.stdout.split()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sudokus.txt"
        path.write_text("\n".join(puzzles(args.n)) + "\n")
        print(f"# {args.n} sudokus (every tier alike, seed 42), shipped model, halting on; {args.threads} threads; "
              f"{platform.processor() or platform.machine()}")
        wall_before, cpu_before, answers_before = solve_file(args.before.resolve(), path, args.threads)
        print(f"one at a time (before): {wall_before:.0f} s wall, {args.n / wall_before:.1f} inputs/s; "
              f"{cpu_before:.0f} CPU s, {args.n / cpu_before:.2f} inputs per CPU s")
        wall_after, cpu_after, answers_after = solve_file(ROOT, path, args.threads)
        print(f"batched (after):        {wall_after:.0f} s wall, {args.n / wall_after:.1f} inputs/s; "
              f"{cpu_after:.0f} CPU s, {args.n / cpu_after:.2f} inputs per CPU s")
        print(f"speed-up: {wall_before / wall_after:.1f}x wall, {cpu_before / cpu_after:.1f}x CPU; "
              f"identical answers: {answers_before == answers_after}")


if __name__ == "__main__":
    main()
