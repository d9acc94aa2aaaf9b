"""Test-time compute in breadth on hard sudokus: records of every trajectory, then each strategy's answers.

    python lab/sudoku/breadth.py record --model DIR --split search --seed 2 --n 1000 --vary views --k 16 --out F.json.gz
    python lab/sudoku/breadth.py depth  --model DIR --split search --seed 2 --n 1000 --max-iters 2048 --out F.json.gz
    python lab/sudoku/breadth.py qqwing --model DIR --n 250 --k 16 --out F.json.gz
    python lab/sudoku/breadth.py report OUT_DIR FILE...

``record`` runs ``--k`` trajectories per puzzle (``looped.breadth.trajectories``: views or restarts) in one
batch with adaptive halting up to ``--cap`` iterations each, and keeps per trajectory the iterations it
used, its final answer (in the puzzle's frame) and the first iteration at which the sudoku checker
accepted its answer. Every strategy with ``k' <= k`` trajectories is then exact arithmetic on these
records, as ``looped.breadth`` would run it (trajectories are taken in order, trajectory 0 being the
plain model):

* ``verify``: all k' run together and the puzzle stops at the first step t* at which one is accepted:
  steps ``sum_j min(used_j, t*)``, the answer the earliest accepted one (accepted means solved: every
  puzzle has one solution); with none accepted, a vote;
* ``vote``: every trajectory runs to its own halt: steps ``sum_j used_j``, the answer most give (ties to
  the earliest).

``depth`` is depth alone: the model with halting off, the accuracy after every iteration up to
``--max-iters`` (steps per puzzle = the iteration). ``qqwing`` generates puzzles of each Debian qqwing
difficulty class at run time and records depth and views-with-checker on them. ``report`` prints the
page's tables (accuracy with 95% Wilson intervals; breadth against depth alone at equal steps with a
paired 95% interval) and draws accuracy against steps per puzzle.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from looped import runs, stats
from looped.analysis import wilson
from looped.breadth import Breadth, back_predictions, trajectories
from looped.evaluation import EVAL_SEED_BASE, accuracy_curve, bits
from looped.halting import Halting, iterate
from looped.tasks import Batch

CAP = 324  # iterations per trajectory (the sudoku page's cap)
KS = (1, 2, 4, 8, 16)


@torch.no_grad()
def record(model, task, batch: Batch, k: int, vary: str, noise: float, cap: int, chunk: int = 125) -> dict:
    """Per trajectory j and puzzle i: used[j][i], correct[j][i] (its final answer), accepted_at[j][i] (the first
    iteration at which the checker accepted its answer, 0: never) and answer hashes (for votes)."""
    out = {"used": [], "correct": [], "accepted_at": [], "answer": []}
    for start in range(0, len(batch), chunk):
        part = batch.slice(start, start + chunk)
        tokens, N = part.inputs, len(part)
        inputs, h0, backs = trajectories(model, task, tokens, part.positions, Breadth(k=k, vary=vary, noise=noise))
        accepted = torch.zeros(k * N, dtype=torch.long)

        def watch(ids, pred):  # records the first step each trajectory's answer is accepted; stops nothing
            of = ids % N
            back = back_predictions(task, tokens, of, ids // N, pred, backs) if vary == "views" else pred
            ok = task.verify(tokens[of], back) & (accepted[ids] == 0)
            accepted[ids[ok]] = watch.t
            return torch.zeros(len(ids), dtype=torch.bool)

        watch.t = 1  # the step whose predictions the rule sees
        for t, state in enumerate(iterate(model, task, inputs, part.positions, cap, Halting(), state=h0, stop=watch), 1):
            watch.t = t + 1
        final = torch.stack([back(state.logits[j * N : (j + 1) * N]) if back else state.logits[j * N : (j + 1) * N]
                             for j, back in enumerate(backs)])  # (k, N, 81, 9)
        pred = final.argmax(-1)
        weights = torch.from_numpy(np.random.default_rng(0).integers(1, 2**31, 81))
        out["used"].append(state.used.view(k, N))
        out["correct"].append((pred == part.targets[None]).all(-1))
        out["accepted_at"].append(accepted.view(k, N))  # the iteration (1-based); 0: never
        out["answer"].append((pred * weights).sum(-1))
    return {key: torch.cat(v, dim=1).tolist() for key, v in out.items()}


def strategy(rec: dict, k: int, select: str) -> tuple[np.ndarray, np.ndarray]:
    """(correct (N,) bool, steps (N,)) of ``select`` with the first ``k`` trajectories of ``rec``."""
    used = np.array(rec["used"][:k], dtype=float)
    correct = np.array(rec["correct"][:k], dtype=bool)
    accepted = np.array(rec["accepted_at"][:k], dtype=float)
    answer = np.array(rec["answer"][:k])
    votes = (answer[:, None, :] == answer[None, :, :]).sum(1)  # (k, N): trajectories agreeing with each
    top = votes.argmax(0)
    voted = correct[top, np.arange(used.shape[1])]
    if select == "vote":
        return voted, used.sum(0)
    when = np.where(accepted > 0, accepted, np.inf).min(0)  # t*: the first step any is accepted
    found = np.isfinite(when)
    steps = np.where(found, np.minimum(used, when[None]).sum(0), used.sum(0))
    return np.where(found, True, voted), steps


def load_model(path: str):
    model, task, _ = runs.load_model(Path(path))
    return model, task


def cmd_record(args) -> dict:
    model, task = load_model(args.model)
    batch = task.generate(task.split(args.split), args.n, seed=EVAL_SEED_BASE + args.seed)
    rec = record(model, task, batch, args.k, args.vary, args.noise, args.cap)
    return {"kind": "record", "split": args.split, "seed": args.seed, "n": len(batch), "vary": args.vary,
            "noise": args.noise, "k": args.k, "cap": args.cap, "model": args.model, **rec}


def cmd_depth(args) -> dict:
    model, task = load_model(args.model)
    batch = task.generate(task.split(args.split), args.n, seed=EVAL_SEED_BASE + args.seed)
    marks = sorted({t for t in [*range(16, 513, 16), *range(640, 4097, 128), 324] if t <= args.max_iters}
                   | {args.max_iters})
    curve = accuracy_curve(model, task, batch, args.max_iters, correct_at=marks, split=args.split)
    return {"kind": "depth", "split": args.split, "seed": args.seed, "n": len(batch), "model": args.model,
            "accuracy": curve.accuracy, "correct": {str(t): bits(v) for t, v in curve.correct.items()}}


def qqwing_puzzles(difficulty: str, n: int, seed: int) -> list[str]:
    """``n`` unique-solution puzzles of a qqwing difficulty class (qqwing draws from its own random seed)."""
    exe = shutil.which("qqwing")
    if exe is None:
        raise SystemExit("qqwing is not installed (Debian package qqwing); the qqwing table is skipped")
    out = subprocess.run([exe, "--generate", str(n), "--difficulty", difficulty, "--one-line", "--solution"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out


def cmd_qqwing(args) -> dict:
    from looped.tasks.sudoku.task import encode

    model, task = load_model(args.model)
    result = {"kind": "qqwing", "k": args.k, "cap": args.cap, "model": args.model, "classes": {}}
    for difficulty in ("simple", "easy", "intermediate", "expert"):
        lines = qqwing_puzzles(difficulty, args.n, args.seed)
        puzzles, solutions = lines[0::2], lines[1::2]
        grid = lambda s: np.array([0 if c == "." else int(c) for c in s], dtype=np.int64)  # noqa: E731
        batch = encode(np.stack([grid(p) for p in puzzles]), np.stack([grid(s) for s in solutions]))
        result["classes"][difficulty] = record(model, task, batch, args.k, "views", 0.0, args.cap)
        result["classes"][difficulty]["n"] = len(batch)
    return result


def accuracy_row(correct: np.ndarray) -> str:
    lo, hi = wilson(int(correct.sum()), len(correct))
    return f"{correct.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def report(out: Path, files: list[Path]) -> None:
    data = [json.loads(gzip.decompress(f.read_bytes())) for f in files]
    records = [d for d in data if d["kind"] == "record"]
    depths = {d["split"]: d for d in data if d["kind"] == "depth"}
    qqwing = [{**d["classes"][c], "split": f"qqwing {c}", "seed": None, "vary": "views", "k": d["k"]}
              for d in data if d["kind"] == "qqwing" for c in d["classes"]]
    for split in dict.fromkeys(r["split"] for r in records + qqwing):
        depth = depths.get(split)
        first = next(r for r in records + qqwing if r["split"] == split)
        source = "generated by qqwing at run time" if first["seed"] is None else f"evaluation seed {first['seed']}"
        print(f"\n### {split}: {first['n']} puzzles ({source})\n")
        print("| strategy | k | steps per puzzle | accuracy [95%] | depth alone at the same steps | breadth - depth [95%] |")
        print("|---|---|---|---|---|---|")
        for rec in (r for r in records + qqwing if r["split"] == split):
            for select in ("verify", "vote"):
                for k in (kk for kk in KS if kk <= rec["k"]):
                    if k == 1 and (select == "vote" or rec["vary"] != "views"):
                        continue
                    correct, steps = strategy(rec, k, select)
                    name = "depth alone, halting" if k == 1 else f"{rec['vary']} + {select}"
                    row = f"| {name} | {k} | {steps.mean():.0f} | {accuracy_row(correct)} |"
                    if depth is not None:
                        t, base = _depth_correct(depth, steps.mean())
                        lo, hi = stats.paired_interval(correct, base)
                        row += f" {base.mean():.3f} (at {t}) | {correct.mean() - base.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] |"
                    else:
                        row += " - | - |"
                    print(row)
    out.mkdir(parents=True, exist_ok=True)
    _plot(out, records, depths)


def _depth_correct(depth: dict, steps: float) -> tuple[int, np.ndarray]:
    """(t, per puzzle correct after t iterations of depth alone), t the kept iteration nearest to ``steps``
    (kept: every 16th to 512, every 128th to 4096, and 324)."""
    marks = sorted(int(m) for m in depth["correct"])
    t = min(marks, key=lambda m: abs(m - steps))
    return t, np.frombuffer(depth["correct"][str(t)].encode(), dtype=np.uint8) == ord("1")


def _plot(out: Path, records: list[dict], depths: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(r["split"] for r in records))
    fig, axes = plt.subplots(1, len(splits), figsize=(6.5 * len(splits), 4.6), squeeze=False)
    for ax, split in zip(axes[0], splits):
        if split in depths:
            acc = depths[split]["accuracy"]
            ax.plot(range(1, len(acc) + 1), acc, color="k", lw=1.5, label="depth alone (halting off)")
        for c, rec in enumerate(r for r in records if r["split"] == split):
            for select, ls, marker in (("verify", "-", "o"), ("vote", "--", "s")):
                ks = [k for k in KS if k <= rec["k"]]
                pts = [strategy(rec, k, select) for k in ks]
                ax.plot([s.mean() for _, s in pts], [c_.mean() for c_, _ in pts], ls=ls, marker=marker,
                        color=f"C{c}", label=f"{rec['vary']} + {select}, k = {ks[0]}..{ks[-1]}")
        ax.set_xscale("log")
        ax.set_xlabel("model steps per puzzle (sum over trajectories)")
        ax.set_ylabel("exact-grid accuracy")
        ax.set_title(f"{split}")
        ax.grid(alpha=0.3)
    handles = {}  # every strategy of every panel, once
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Sudoku: accuracy against test-time compute, in depth and in breadth")
    fig.tight_layout()
    fig.savefig(out / "breadth.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("record", "depth", "qqwing"):
        s = sub.add_parser(name)
        s.add_argument("--model", default=str(runs.shipped_model("sudoku")))
        s.add_argument("--split", default="search")
        s.add_argument("--seed", type=int, default=2)
        s.add_argument("--n", type=int, default=1000)
        s.add_argument("--k", type=int, default=16)
        s.add_argument("--vary", default="views")
        s.add_argument("--noise", type=float, default=0.1)
        s.add_argument("--cap", type=int, default=CAP)
        s.add_argument("--max-iters", type=int, default=2048)
        s.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("out", type=Path)
    r.add_argument("files", type=Path, nargs="+")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.command == "report":
        report(args.out, args.files)
        return 0
    result = {"record": cmd_record, "depth": cmd_depth, "qqwing": cmd_qqwing}[args.command](args)
    args.out.write_bytes(gzip.compress(json.dumps(result).encode(), mtime=0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
