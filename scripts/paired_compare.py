"""Paired comparison of two runs on the same test inputs, with a bootstrap interval.

Usage: python scripts/paired_compare.py RUN_A RUN_B --splits S1,S2 [--iters-a 48] [--iters-b 1]
           [--metric exact] [--n 2000] [--resamples 2000]

Both runs score the same inputs of each split (evaluation seed 0), RUN_A after ``--iters-a``
iterations and RUN_B after ``--iters-b`` (fixed counts, no halting). Prints, per split, both
accuracies, their difference A - B and a 95% percentile bootstrap interval of the difference,
resampling inputs (the pairing is kept).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from looped import runs
from looped.evaluate import EVAL_SEED_BASE, iterate


def per_input(loaded: tuple, split: str, n: int, iters: int, metric: str) -> np.ndarray:
    model, task, _ = loaded
    batch = task.generate(task.split(split), n, seed=EVAL_SEED_BASE)
    for state in iterate(model, task, batch.inputs, batch.positions, iters):
        pass
    return task.metrics(batch.inputs, state.logits, batch.targets)[metric].float().numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--splits", required=True)
    p.add_argument("--iters-a", type=int, default=48)
    p.add_argument("--iters-b", type=int, default=1)
    p.add_argument("--metric", default="exact")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    rng = np.random.default_rng(0)
    print(f"{args.metric}: A = {args.run_a} at {args.iters_a} iterations, B = {args.run_b} at {args.iters_b}\n")
    print("| split | n | A | B | A - B | 95% interval |")
    print("|---|---|---|---|---|---|")
    model_a, model_b = runs.load_model(args.run_a), runs.load_model(args.run_b)
    for split in args.splits.split(","):
        a = per_input(model_a, split, args.n, args.iters_a, args.metric)
        b = per_input(model_b, split, args.n, args.iters_b, args.metric)
        diff = a - b
        boot = diff[rng.integers(0, len(diff), size=(args.resamples, len(diff)))].mean(1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        print(f"| {split} | {len(diff)} | {a.mean():.3f} | {b.mean():.3f} | {diff.mean():+.3f} | [{lo:+.3f}, {hi:+.3f}] |")


if __name__ == "__main__":
    main()
