"""Paired comparison of two runs on the same test inputs, with a bootstrap interval.

Usage: python lab/paired_compare.py RUN_A RUN_B --splits S1,S2 [--iters-a 48] [--iters-b 1]
           [--metric exact] [--n 2000] [--resamples 2000]

Both runs score the same inputs of each split (evaluation seed 0), RUN_A after ``--iters-a``
iterations and RUN_B after ``--iters-b`` (fixed counts, no halting). Prints, per split, both
accuracies, their difference A - B and a 95% percentile bootstrap interval of the difference,
resampling inputs (the pairing is kept). One comparison of ``lab/paired_eval.py`` (score, then pair).
"""

import argparse
from pathlib import Path

import torch

from paired_eval import pair, score


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
    splits = args.splits.split(",")
    a, b = ((score(run, splits, [t], args.metric, args.n), str(t))
            for run, t in ((args.run_a, args.iters_a), (args.run_b, args.iters_b)))
    print("\n".join(pair(a, b, args.resamples)))


if __name__ == "__main__":
    main()
