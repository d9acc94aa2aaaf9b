"""What breadth costs: CPU seconds per puzzle of K trajectories in one batch against one trajectory.

    python lab/sudoku/breadth_speed.py [--n 50] [--iters 32] [--ks 1,2,4,8,16] [--repeats 3]

Runs ``looped.evaluate`` on ``--n`` ``search`` puzzles (evaluation seed 1) with the shipped sudoku model,
halting off, so every trajectory takes exactly ``--iters`` steps, at each breadth K (views, vote), and
prints the CPU seconds per puzzle and their ratio to K = 1. Batched, K trajectories should cost at most
K times one (the target); the CPU time of the process is used, as other work on the machine changes it
little. The median of ``--repeats`` runs is kept.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from looped import evaluate, runs, shipped_model
from looped.breadth import Breadth


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--iters", type=int, default=32)
    p.add_argument("--ks", default="1,2,4,8,16")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    model, task, _ = runs.load_model(shipped_model("sudoku"))
    print(f"# {args.n} search puzzles, {args.iters} steps per trajectory, halting off; "
          f"{torch.get_num_threads()} threads; {platform.processor() or platform.machine()}")
    print("| K | CPU s per puzzle | x K = 1 | K x (K = 1) |")
    print("|---|---|---|---|")
    evaluate(model, task, "search", 2, n=args.n, seed=1, halting=None)  # warm-up
    base = None
    for k in (int(s) for s in args.ks.split(",")):
        times = []
        for _ in range(args.repeats):
            start = time.process_time()
            evaluate(model, task, "search", args.iters, n=args.n, seed=1, halting=None,
                     breadth=Breadth(k=k, vary="views", select="vote"))
            times.append((time.process_time() - start) / args.n)
        t = statistics.median(times)
        base = t if base is None else base
        print(f"| {k} | {t:.4f} | {t / base:.2f} | {k * base:.4f} |")


if __name__ == "__main__":
    main()
