"""Adaptive halting against the best fixed iteration count, on a difficulty ladder.

    python lab/performance/halting.py [--task prefix-sums|sudoku] [--n N] [--patience K] [--tol T]

With a shipped model, for every split of the ladder (prefix sums 32..1,024 bits; sudoku easy..search):

1. the accuracy at every fixed iteration up to the cap, halting off; the *best fixed count* is the one
   iteration count with the highest mean accuracy over the whole ladder (one setting for all inputs);
2. the same inputs with halting on, capped at the same maximum.

Prints, per split and overall: accuracy at the best fixed count and with halting, mean iterations
(the fixed count vs. the mean each input used) and wall time of the two runs, measured side by
side in this process. Targets: at least 2x fewer iterations and 1.5x less wall time on average, with
at most 0.5 points of accuracy lost.
"""

from __future__ import annotations

import argparse
import time

import torch

from looped import runs
from looped.evaluation import EVAL_SEED_BASE, Halting, accuracy_curve
from looped.machine import cpu_name

LADDERS = {
    "prefix-sums": (["32", "64", "128", "256", "512", "1024"], 480),
    "sudoku": (["easy", "medium", "hard", "harder", "hardest", "search"], 160),
}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(LADDERS), default="prefix-sums")
    p.add_argument("--n", type=int, default=200, help="inputs per split")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=10)
    args = p.parse_args()
    model, task, _ = runs.load_model(runs.shipped_model(args.task))
    splits, cap = LADDERS[args.task]
    halting = Halting(tol=args.tol, patience=args.patience)
    batches = {s: task.generate(task.split(s), args.n, seed=EVAL_SEED_BASE) for s in splits}
    print(f"# {args.task}, the shipped {args.task} model, n={args.n} per split, cap {cap} iterations, tol {args.tol:g}, "
          f"patience {args.patience}; {cpu_name()}, {torch.get_num_threads()} threads")

    curves = {s: accuracy_curve(model, task, b, cap).accuracy for s, b in batches.items()}
    mean_by_t = [sum(curves[s][t] for s in splits) / len(splits) for t in range(cap)]
    best_t = max(range(cap), key=lambda t: (mean_by_t[t], -t)) + 1

    rows, fixed_time, halt_time = [], 0.0, 0.0
    for s, b in batches.items():
        fixed, tf = timed(lambda: accuracy_curve(model, task, b, best_t))
        halted, th = timed(lambda: accuracy_curve(model, task, b, cap, halting=halting))
        fixed_time, halt_time = fixed_time + tf, halt_time + th
        rows.append((s, fixed.accuracy[-1], halted.accuracy[-1], halted.mean_iterations_used, tf, th))

    print(f"best fixed count over the ladder: {best_t} iterations (mean accuracy {mean_by_t[best_t - 1]:.4f})")
    print(f"{'split':>8} {'acc fixed':>9} {'acc halt':>9} {'its fixed':>9} {'its halt':>9} {'s fixed':>8} {'s halt':>8}")
    for s, af, ah, its, tf, th in rows:
        print(f"{s:>8} {af:>9.4f} {ah:>9.4f} {best_t:>9d} {its:>9.1f} {tf:>8.2f} {th:>8.2f}")
    acc_f = sum(r[1] for r in rows) / len(rows)
    acc_h = sum(r[2] for r in rows) / len(rows)
    its_h = sum(r[3] for r in rows) / len(rows)
    print(f"{'all':>8} {acc_f:>9.4f} {acc_h:>9.4f} {best_t:>9d} {its_h:>9.1f} {fixed_time:>8.2f} {halt_time:>8.2f}")
    print(f"iterations: {best_t / its_h:.2f}x fewer; wall time: {fixed_time / halt_time:.2f}x less; "
          f"accuracy change: {100 * (acc_h - acc_f):+.2f} points")


if __name__ == "__main__":
    main()
