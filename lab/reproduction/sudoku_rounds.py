"""Which easy sudoku puzzles does a development run solve? Its accuracy by the rounds of singles a puzzle needs.

    python lab/reproduction/sudoku_rounds.py RUN [RUN ...] [--n 1000] [--iters 30,120]

Every easy puzzle is solved by 1 to 3 rounds of constraint propagation (one round places every naked and hidden
single at once; ``looped/tasks/sudoku``). A model that solves the 1-round puzzles and few of the others has learned
about one round and does not chain rounds across its iterations. Scores the set ``looped eval`` scores, halting off,
exact grids and the share of blank cells right, per round count, after each of ``--iters``; beside them, the share of
blank cells that 1, 2, ... rounds of singles place (``placed_by_k``), what a solver of exactly k rounds would get right.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from looped.evaluation import EVAL_SEED_BASE, accuracy_curve
from looped.runs import load_model
from looped.tasks.sudoku.logic import singles_fill
from looped.tasks.sudoku.task import puzzle_set

SPLIT = "easy"


def by_rounds(run: str, n: int, iters: list[int]) -> dict:
    """Per round count: its share of the set, and per iteration the exact and blank-cell accuracy."""
    model, task, _ = load_model(run)
    batch = task.generate(task.split(SPLIT), n, seed=EVAL_SEED_BASE)
    labels = puzzle_set(SPLIT, n, EVAL_SEED_BASE)
    if not np.array_equal(batch.inputs.numpy(), labels["puzzles"]):
        raise SystemExit(f"{run}: its task's {SPLIT} set is not the labelled puzzle set")
    curve = accuracy_curve(model, task, batch, max(iters), correct_at=iters)
    out = {"run": run, "n": n, "rounds": {}}
    placed = placed_share(labels["puzzles"], int(labels["rounds"].max()))
    for r in np.unique(labels["rounds"]):
        mask = labels["rounds"] == r
        out["rounds"][int(r)] = {"share": float(mask.mean())} | {
            f"{metric}@{t}": float(curve.per_example[metric][t].float().numpy()[mask].mean())
            for metric in ("exact", "blank_accuracy") for t in iters} | {
            f"placed_by_{k}": float(placed[mask, k - 1].mean()) for k in range(1, int(r))}
    out["all"] = {f"exact@{t}": float(curve.per_example["exact"][t].float().mean()) for t in iters}
    return out


def placed_share(puzzles: np.ndarray, rounds: int) -> np.ndarray:
    """(n, rounds): per puzzle, the share of its blanks that 1..rounds rounds of singles place."""
    blanks = (puzzles == 0).sum(1)
    placed = [[((p == 0) & (singles_fill(p, k) > 0)).sum() for k in range(1, rounds + 1)] for p in puzzles]
    return np.array(placed) / blanks[:, None]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--iters", default="30,120", help="comma-separated iteration counts (default 30,120)")
    args = p.parse_args()
    iters = sorted({int(t) for t in args.iters.split(",")})
    for run in args.runs:
        print(json.dumps(by_rounds(run, args.n, iters)))


if __name__ == "__main__":
    main()
