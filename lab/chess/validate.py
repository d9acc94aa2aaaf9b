"""Validation of a chess run on the training tier only (mate in 1-2), for choosing a recipe.

Usage: python lab/chess/validate.py RUN [RUN ...] [--max-iters T] [--json OUT]
       python lab/chess/validate.py --plot JSONL PNG   # accuracy against iterations of every run in JSONL
       python lab/chess/validate.py --table JSONL [NAME ...]   # validation.md's validation table rows
       python lab/chess/validate.py --pair JSONL:NAME JSONL:NAME   # a paired table at each run's last iteration

Splits, all from the generated mate-in-1/2 puzzles (never mate 3-5, never the rated bands):

* ``val-mate1``, ``val-mate2``: every held-out position of the tier (``Chess`` holds one in ten out
  of training by a hash of its encoding);
* ``val-mate2-deep``: the held-out mate-in-2 positions whose stored engine search depth is at least
  ``DEEP`` (the depth at which Stockfish first reported the mate with the solution move), the
  hardest part of the tier: the within-tier signal for gains from iterating longer;
* ``train-mate2``: as many mate-in-2 training positions (seeded draw), to see the train/validation gap.

Prints, per split, best-legal-move accuracy at the training depth N, at 2N, at 4N (the depth
target), with a paired 95% bootstrap interval of the 4N - N gain, at the best iteration and at the
last one, and the relative residual at the last. ``--json`` also keeps each puzzle's result at the
last iteration, for paired comparisons of runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from looped import Batch, runs, stats
from looped.evaluation import accuracy_curve, bits
from looped.tasks.chess import board, task as cp

DEEP = 7


def validation_sets(n_train: int = 1000) -> dict[str, np.ndarray]:
    """Row indices into ``cp.generated()`` of each validation split."""
    data = cp.generated()
    held, mate, depth = data["held"], data["mate"], data["depth"]
    train2 = np.flatnonzero(~held & (mate == 2))
    return {
        "val-mate1": np.flatnonzero(held & (mate == 1)),
        "val-mate2": np.flatnonzero(held & (mate == 2)),
        "val-mate2-deep": np.flatnonzero(held & (mate == 2) & (depth >= DEEP)),
        "train-mate2": np.sort(np.random.default_rng(0).choice(train2, size=min(n_train, len(train2)), replace=False)),
    }


def at(acc: list[float], t: int) -> float:
    """Accuracy after iteration ``t`` (the last one if ``t`` is beyond it)."""
    return acc[min(t, len(acc)) - 1]


def validate(run: Path, max_iters: int | None) -> dict:
    torch.set_num_threads(1)
    model, task, cfg = runs.load_model(run)
    n_train = cfg.train.train_iters
    T = max_iters or 4 * n_train
    out = {"run": str(run), "train_iters": n_train, "max_iters": T, "steps": cfg.train.steps,
           "elapsed_s": (runs.Run(run).read_metrics() or [{}])[-1].get("elapsed_s"), "splits": {}}
    data = cp.generated()
    for name, idx in validation_sets().items():
        batch = Batch(torch.from_numpy(data["tokens"][idx]), board.targets_for(data["move"][idx]), board.RANKS_FILES)
        marks = sorted({min(t, T) for t in (n_train, 4 * n_train, T)})
        curve = accuracy_curve(model, task, batch, T, correct_at=marks, split=name)
        acc, ok = curve.extra["legal"], curve.per_example["legal"]
        best = max(range(T), key=lambda i: (acc[i], -i)) + 1
        out["splits"][name] = {
            "n": len(idx), "at_N": at(acc, n_train), "at_2N": at(acc, 2 * n_train), "at_4N": at(acc, 4 * n_train),
            "best": acc[best - 1], "best_iteration": best, "last": acc[-1],
            "residual_last": curve.residual[-1], "legal_by_iteration": [round(a, 4) for a in acc],
            "gain_4N_over_N_interval": list(stats.paired_interval(ok[min(4 * n_train, T)].numpy(),
                                                                  ok[min(n_train, T)].numpy())),
            "correct_last": bits(ok[T]),  # per puzzle, for paired runs
        }
    return out


PLOTTED = ("val-mate1", "val-mate2", "val-mate2-deep")
LOSSES = {  # the validation table's loss column, per run name
    "base": "squares", "masked": "legal moves", "n4-masked": "legal moves", "n16-masked": "legal moves",
    "lines-masked": "legal moves, lines only", "king16-masked": "legal moves, king neighbourhood",
    "king8-masked": "legal moves, king neighbourhood", "king16-squares": "squares, king neighbourhood",
    "models/chess": "squares",
}


def records(jsonl: Path) -> dict[str, dict]:
    """The runs of a --json file by name (the run directory's name; ``models/chess`` as written)."""
    out = {}
    for line in jsonl.read_text().splitlines():
        r = json.loads(line)
        out[r["run"] if r["run"].startswith("models/") else Path(r["run"]).name] = r
    return out


def table(jsonl: Path, names: list[str]) -> list[str]:
    """Validation-table rows: the run's settings, then one row per split."""
    runs_ = records(jsonl)
    lines = ["| run | N | loss | steps | CPU s | wall s | split | at N | at 4N | 4N - N [95%] | best (iteration) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names or list(runs_):
        r = runs_[name]
        cpu = "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.0f}"
        head = f"| {name} | {r['train_iters']} | {LOSSES.get(name, '-')} | {r['steps']} | {cpu} | {r['elapsed_s']:.0f} |"
        for i, (split, v) in enumerate(r["splits"].items()):
            lo, hi = v["gain_4N_over_N_interval"]
            lines.append((head if i == 0 else "| | | | | | |") + f" {split} ({v['n']}) | {v['at_N']:.3f} | "
                         f"{v['at_4N']:.3f} | {v['at_4N'] - v['at_N']:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
                         f"{v['best']:.3f} ({v['best_iteration']}) |")
    return lines


def pair(a: str, b: str) -> list[str]:
    """A paired table of two runs (``JSONL:NAME`` each) at their last iterations, on the splits both hold."""
    (fa, na), (fb, nb) = a.rsplit(":", 1), b.rsplit(":", 1)
    ra, rb = records(Path(fa))[na], records(Path(fb))[nb]
    lines = ["| split | A | B | A - B | 95% interval |", "|---|---|---|---|---|"]
    for split in PLOTTED:
        x, y = (np.frombuffer(r["splits"][split]["correct_last"].encode(), np.uint8) == ord("1") for r in (ra, rb))
        lo, hi = stats.paired_interval(x, y)
        lines.append(f"| {split} | {x.mean():.3f} | {y.mean():.3f} | {x.mean() - y.mean():+.3f} | [{lo:+.3f}, {hi:+.3f}] |")
    return lines


def plot(jsonl: Path, png: Path) -> None:
    """Best legal move against iterations (log scale) on the validation splits, one line per run of
    ``jsonl``; a dot marks each run's training depth N, and runs not trained here are dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(16.5, 5))
    for ax, split in zip(axes, PLOTTED):
        for i, r in enumerate(rows):
            acc, n = r["splits"][split]["legal_by_iteration"], r["train_iters"]
            name = Path(r["run"]).name if r["run"].startswith("runs/") else r["run"]
            its = range(1, len(acc) + 1)
            ls = "-" if r["run"].startswith("runs/") else "--"
            ax.plot(its, acc, ls, color=f"C{i}", label=f"{name} (N {n}, {r['steps']:,} steps)")
            ax.plot([n], [acc[n - 1]], "o", color=f"C{i}", ms=7)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{split}: best legal move")
        ax.set_xlabel("iteration (dot: training depth N)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="*")
    p.add_argument("--max-iters", type=int, default=None, help="default: 4x the training depth")
    p.add_argument("--json", type=Path, default=None, help="append one JSON line per run here")
    p.add_argument("--plot", type=Path, nargs=2, metavar=("JSONL", "PNG"), default=None,
                   help="draw the runs of JSONL (as --json writes it) into PNG, and run nothing")
    p.add_argument("--table", type=Path, default=None, metavar="JSONL",
                   help="print the validation table of JSONL's runs (or of the RUN names given), and run nothing")
    p.add_argument("--pair", nargs=2, default=None, metavar=("JSONL:A", "JSONL:B"),
                   help="print the paired table A - B at each run's last iteration, and run nothing")
    args = p.parse_args(argv)
    if args.table or args.pair:
        print("\n".join(table(args.table, [str(r) for r in args.runs]) if args.table else pair(*args.pair)))
        return 0
    if args.plot:
        plot(*args.plot)
        return 0
    if not args.runs:
        p.error("give RUN [RUN ...] or --plot JSONL PNG")
    for run in args.runs:
        r = validate(run, args.max_iters)
        print(f"{run}  (N={r['train_iters']}, steps={r['steps']}, train {r['elapsed_s']} s)")
        print(f"{'split':>15} {'n':>5} {'at N':>6} {'at 2N':>6} {'at 4N':>6} {'4N - N [95%]':>22} {'best (it)':>11} "
              f"{'last':>6} {'resid':>8}")
        for s, v in r["splits"].items():
            lo, hi = v["gain_4N_over_N_interval"]
            gain = f"{v['at_4N'] - v['at_N']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            print(f"{s:>15} {v['n']:>5} {v['at_N']:>6.3f} {v['at_2N']:>6.3f} {v['at_4N']:>6.3f} {gain:>22} "
                  f"{v['best']:>6.3f} ({v['best_iteration']:>2}) {v['last']:>6.3f} {v['residual_last']:>8.1e}")
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(r) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
