"""Breadth on chess: the table of the sudoku page's chess section, from ``looped eval --json`` outputs.

    python lab/chess/breadth.py LABEL=EVAL.json ...

Each EVAL.json is ``looped eval looped/models/chess --split mate3,mate4,mate5 --n 1000 --json`` with one
breadth setting (or none). Prints, per setting and split, the model steps per puzzle (all trajectories),
the exact-move accuracy (the top from- and to-squares are the solution's, what the verifier checks) and
the best-legal-move accuracy, each at the evaluation cap with its 95% Wilson interval.
"""

from __future__ import annotations

import json
import sys

from looped.analysis import wilson


def cell(p: float, n: int) -> str:
    lo, hi = wilson(round(p * n), n)
    return f"{p:.3f} [{lo:.3f}, {hi:.3f}]"


def main(args: list[str]) -> None:
    print("| setting | split | n | steps per puzzle | exact move [95%] | best legal move [95%] |")
    print("|---|---|---|---|---|---|")
    for arg in args:
        label, path = arg.split("=", 1)
        d = json.loads(open(path).read())
        T = str(d["max_iters"])
        for r in d["results"]:
            print(f"| {label} | {r['split']} | {r['n']} | {r['mean_iterations_used']:.1f} | "
                  f"{cell(r['final_accuracy'], r['n'])} | {cell(r['legal_by_iteration'][T], r['n'])} |")


if __name__ == "__main__":
    main(sys.argv[1:])
