"""What breadth costs: CPU seconds per puzzle of K trajectories in one batch against one trajectory.

    python lab/sudoku/breadth_speed.py [--n 50] [--iters 32] [--ks 1,2,4,8,16] [--repeats 3]

Runs ``looped.evaluate`` on ``--n`` ``search`` puzzles (evaluation seed 1) with the shipped sudoku model,
halting off, so every trajectory takes exactly ``--iters`` steps, at each breadth K (views, vote), and
prints the CPU seconds per puzzle against depth alone (K = 1) on the same ``--n`` puzzles (target: at most
K times), and against depth alone on K x ``--n`` puzzles in one batch, the same batch size as breadth
(what breadth itself adds: views and the vote). The CPU time of the process is used, as other work on
the machine changes it little; the median of ``--repeats`` runs is kept.
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
    print("| K | breadth K: CPU s per puzzle | / depth alone at batch n | / depth alone at batch K n |")
    print("|---|---|---|---|")

    def cost(k: int, n: int) -> float:
        """Median CPU seconds per puzzle of ``n`` puzzles, each run as ``k`` trajectories (k = 1: depth alone)."""
        times = []
        for _ in range(args.repeats):
            start = time.process_time()
            evaluate(model, task, "search", args.iters, n=n, seed=1, halting=None,
                     breadth=Breadth(k=k, vary="views", select="vote"))
            times.append((time.process_time() - start) / n)
        return statistics.median(times)

    cost(1, args.n)  # warm-up
    alone = cost(1, args.n)
    for k in (int(s) for s in args.ks.split(",")):
        t = alone if k == 1 else cost(k, args.n)
        wide = alone if k == 1 else cost(1, k * args.n)  # depth alone on as many trajectories in one batch
        print(f"| {k} | {t:.4f} | {t / alone:.2f} | {t / wide / k:.2f} x {k} |")

if __name__ == "__main__":
    main()
