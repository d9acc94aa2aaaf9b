"""``looped solve --file``: inputs per second, one input at a time (the code before) against batched (now).

    python lab/performance/solve_speed.py --before DIR [--n 1000] [--threads 2]
    python lab/performance/solve_speed.py --batch-sweep [--threads 1]

DIR is a checkout of the code before batched solving (commit ce33033). Both solve the same ``--n``
sudokus of mixed difficulty (equal shares of every tier of the generator, seed 42) with the shipped
model and adaptive halting, through ``looped solve sudoku --file``, each in a fresh process. Prints
inputs per wall and per CPU second of each, the speed-ups (aim: at least 10x; on a shared machine the CPU
seconds are the measure), and whether the answers agree line for line. ``--batch-sweep`` prints, in this
process, the CPU milliseconds per example and iteration of today's solving at batch sizes 1 to 256 (20
iterations, halting off, two alternating rounds).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from looped.machine import cpu_name

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
                         cwd=code, check=True, capture_output=True, text=True)  # cwd: `-m` puts it first on sys.path
    return time.perf_counter() - start, child_cpu_seconds() - cpu, out.stdout.split()


def batch_sweep(threads: int, iters: int = 20) -> None:
    import torch

    from looped import runs
    from looped.solving import solve

    torch.set_num_threads(threads)
    model, task, _ = runs.Run(runs.shipped_model("sudoku")).load("cpu")
    inputs = puzzles(256)
    print(f"# CPU ms per example and iteration, shipped sudoku model, {iters} iterations, halting off, {threads} threads")
    for rnd in range(2):
        for batch in (1, 8, 16, 32, 64, 128, 256):
            start = time.process_time()
            solve(model, task, inputs[:batch], max_iters=iters, halting=None, batch_size=batch)
            print(f"round {rnd + 1} batch {batch:3d}: {(time.process_time() - start) / iters / batch * 1e3:.3f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-sweep", action="store_true")
    args = p.parse_args()
    if args.batch_sweep:
        return batch_sweep(args.threads)
    if args.before is None:
        p.error("--before DIR is needed (or --batch-sweep)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sudokus.txt"
        path.write_text("\n".join(puzzles(args.n)) + "\n")
        print(f"# {args.n} sudokus (every tier alike, seed 42), shipped model, halting on; {args.threads} threads; "
              f"{cpu_name()}")
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
