"""Per-example scores of runs on the same test inputs, once per run, and paired comparisons from them.

    python lab/paired_eval.py score RUN --iters 16,64 --splits S1,S2 [--metric legal] [--n 2000] --out A.json
    python lab/paired_eval.py pair A.json:64 B.json:16 [--resamples 2000]
    python lab/paired_eval.py table A.json:64 B.json:64 [--spread]
    python lab/paired_eval.py plot A.json [B.json ...] --out curves.png

``score`` evaluates each split (``looped.evaluate``: evaluation seed 0, as ``looped eval`` draws
it) once, up to the largest of ``--iters`` with no halting, and keeps the metric's mean after every
iteration and each input's value at every iteration in ``--iters``. ``pair`` prints, per split both files share,
A at its iteration and B at its own, their difference A - B and a 95% percentile bootstrap interval
that resamples inputs (the pairing is kept; seed 0). ``table`` prints each file's accuracy at its
iteration per split, and with ``--spread`` their mean and spread (largest minus smallest), as for
seeds of one recipe. ``plot`` draws the per-iteration means.
A score file is JSON: {"run", "metric", "train_iters", "splits": {split: {"n", "by_iteration": [...],
"per_example": {"16": "0110..."}}}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from looped import evaluate, runs, stats
from looped.evaluation import bits


def score(run: Path, splits: list[str], iters: list[int], metric: str, n: int) -> dict:
    """``looped.evaluate`` of the run on each split (halting off), keeping ``metric`` per input at ``iters``."""
    model, task, cfg = runs.load_model(run)
    out = {"run": str(run), "metric": metric, "train_iters": cfg.train and cfg.train.train_iters, "splits": {}}
    for curve in evaluate(model, task, splits, max(iters), n=n, halting=None, correct_at=iters):
        means = curve.accuracy if metric == "exact" else curve.extra[metric]
        kept = {str(t): bits(v) for t, v in curve.per_example[metric].items()}
        out["splits"][curve.split] = {"n": curve.n, "by_iteration": means, "per_example": kept}
    return out


def bits_of(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def load(spec: str) -> tuple[dict, str]:
    """A score file and an iteration, from ``FILE.json:ITERATION``."""
    path, t = spec.rsplit(":", 1)
    return json.loads(Path(path).read_text()), t


def pair(a: tuple[dict, str], b: tuple[dict, str], resamples: int) -> list[str]:
    """Markdown rows of A - B on every split both scores hold. a, b: (score, iteration), as ``load`` gives."""
    (da, ta), (db, tb) = a, b
    rng = np.random.default_rng(0)
    lines = [f"{da['metric']}: A = {da['run']} at {ta} iterations, B = {db['run']} at {tb}", "",
             "| split | n | A | B | A - B | 95% interval |", "|---|---|---|---|---|---|"]
    for split, sa in da["splits"].items():
        if split not in db["splits"]:
            continue
        x, y = bits_of(sa["per_example"][ta]), bits_of(db["splits"][split]["per_example"][tb])
        if len(x) != len(y):
            raise SystemExit(f"{split}: {len(x)} inputs in A, {len(y)} in B; score both with the same --n")
        diff = x.astype(float) - y
        lo, hi = stats.paired_interval(x, y, resamples, rng)
        lines.append(f"| {split} | {len(diff)} | {x.mean():.3f} | {y.mean():.3f} | {diff.mean():+.3f} | "
                     f"[{lo:+.3f}, {hi:+.3f}] |")
    return lines


def table(specs: list[str], spread: bool) -> list[str]:
    """Markdown rows: per split, each ``FILE.json:ITERATION``'s accuracy there (and mean, spread)."""
    cols = [load(spec) for spec in specs]
    head = [f"{Path(d['run']).name} at {t}" for d, t in cols] + (["mean", "spread"] if spread else [])
    lines = [f"{cols[0][0]['metric']}", "", "| split | n | " + " | ".join(head) + " |", "|---" * (len(head) + 2) + "|"]
    for split, first in cols[0][0]["splits"].items():
        if not all(split in d["splits"] for d, _ in cols):
            continue
        acc = [bits_of(d["splits"][split]["per_example"][t]).mean() for d, t in cols]
        extra = [f"{np.mean(acc):.3f}", f"{max(acc) - min(acc):.3f}"] if spread else []
        lines.append(f"| {split} | {first['n']} | " + " | ".join([f"{a:.3f}" for a in acc] + extra) + " |")
    return lines


def plot(files: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [json.loads(f.read_text()) for f in files]
    splits = list(data[0]["splits"])
    cols = min(4, len(splits))
    rows = -(-len(splits) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), sharex=True, squeeze=False)
    for ax, split in zip(axes.flat, splits):
        for i, d in enumerate(data):
            curve = d["splits"].get(split, {}).get("by_iteration")
            if not curve:
                continue
            its = np.arange(1, len(curve) + 1)
            label = "/".join(Path(d["run"]).parts[-2:])  # e.g. runs/ch-final-s0, models/chess
            ax.plot(its, curve, color=f"C{i}", marker="o" if len(curve) == 1 else None, label=label)
            if d["train_iters"] and d["train_iters"] <= len(curve):
                ax.plot([d["train_iters"]], [curve[d["train_iters"] - 1]], "o", color=f"C{i}", ms=6)
        ax.set_title(split, fontsize=10)
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("iteration (dot: training depth)")
    for ax in axes[:, 0]:
        ax.set_ylabel(data[0]["metric"])
    for ax in list(axes.flat)[len(splits):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("run", type=Path)
    s.add_argument("--iters", required=True, help="comma-separated iterations to keep per input, e.g. 16,64")
    s.add_argument("--splits", required=True)
    s.add_argument("--metric", default="legal")
    s.add_argument("--n", type=int, default=2000)
    s.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("pair")
    c.add_argument("a", help="FILE.json:ITERATION")
    c.add_argument("b", help="FILE.json:ITERATION")
    c.add_argument("--resamples", type=int, default=2000)
    t = sub.add_parser("table")
    t.add_argument("columns", nargs="+", help="FILE.json:ITERATION")
    t.add_argument("--spread", action="store_true", help="add the columns' mean and spread")
    g = sub.add_parser("plot")
    g.add_argument("files", type=Path, nargs="+")
    g.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.command == "score":
        try:
            iters = sorted({int(t) for t in args.iters.split(",")})
        except ValueError:
            p.error(f"--iters takes comma-separated integers, got {args.iters!r}")
        if iters[0] < 1:
            p.error("--iters must be positive")
        result = score(args.run, args.splits.split(","), iters, args.metric, args.n)
        args.out.write_text(json.dumps(result))
    elif args.command == "pair":
        print("\n".join(pair(load(args.a), load(args.b), args.resamples)))
    elif args.command == "table":
        print("\n".join(table(args.columns, args.spread)))
    else:
        plot(args.files, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
