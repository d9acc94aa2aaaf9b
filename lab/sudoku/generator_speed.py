"""Sudoku generator speed per tier on this machine (uncached builds), plus the labels' spread.

    python lab/sudoku/generator_speed.py [--workers N] [--scale S]

Prints puzzles/s, mean givens, rounds range and mean solver guesses for every tier. Targets:
at least 1,000 puzzles/s on the easy tiers and 20/s on the hardest.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from looped.tasks.sudoku.task import TIERS, build_set

SIZES = {"easy": 20_000, "medium": 20_000, "hard": 10_000, "harder": 10_000, "hardest": 5_000, "search": 1_000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--scale", type=float, default=1.0, help="multiply every set size")
    args = p.parse_args()
    build_set("easy", 8, seed=0, workers=1)  # compile / load the numba cache outside the timing
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, workers={args.workers}")
    print(f"{'tier':>8} {'n':>7} {'puzzles/s':>10} {'givens':>7} {'rounds':>9} {'guesses':>8}")
    for tier in TIERS:
        n = max(1, int(SIZES[tier] * args.scale))
        t0 = time.perf_counter()
        s = build_set(tier, n, seed=12345, workers=args.workers)
        rate = n / (time.perf_counter() - t0)
        r = s["rounds"]
        rounds = "search" if tier == "search" else f"{r.min()}-{r.max()}"
        print(f"{tier:>8} {n:>7} {rate:>10.0f} {s['givens'].mean():>7.1f} {rounds:>9} {np.mean(s['guesses']):>8.1f}")


if __name__ == "__main__":
    main()
