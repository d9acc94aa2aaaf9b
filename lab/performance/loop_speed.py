"""Training and evaluation steps per second, the code before the one loop (``looped.iteration``) against now.

    python lab/performance/loop_speed.py --before DIR [--repeats 3] [--threads 2]

DIR is a checkout of the code before (commit ce33033: ``git worktree add DIR ce33033``). For prefix
sums (32 bits, the shipped model's config) and sudoku (the shipped model's config), each code base
runs, in a fresh process: 30 training steps of the progressive loss (depth 16 / 20, batch 128 / 64)
and 40 evaluation iterations with halting on 512 / 500 examples (``looped.evaluate``). The two code
bases alternate, ``--repeats`` times each; the median of each is printed with their ratio (target:
no more than 3% slower, a ratio of at least 0.97).

Times are the child's CPU time (``time.process_time``), so that other work on the machine changes them
little; with ``--threads 1`` that is the time the steps took on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUPS = {"prefix-sums": ("32", 16, 128, 512), "sudoku": ("easy", 20, 64, 500)}  # split, depth N, batch, eval n


def child(task_name: str) -> dict:
    import torch

    from looped import runs

    # The code before had looped/train.py and looped/evaluate.py. Choose by file, not by trying the import:
    # an editable install of the code after would otherwise supply the new module names.
    if (Path(os.environ["PYTHONPATH"]) / "looped" / "training.py").exists():
        from looped.evaluation import Halting, evaluate
        from looped.training import draw_depths, progressive_loss
    else:
        from looped.evaluate import Halting, evaluate
        from looped.train import draw_depths, progressive_loss
    split, depth, batch_size, n = SETUPS[task_name]
    model, task, _ = runs.load_model(runs.shipped_model(task_name))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sp = task.split(split)
    steps, elapsed = 30, 0.0
    for step in range(steps + 3):  # three warm-up steps
        batch = task.train_batch(sp, batch_size, step)
        n_, k = draw_depths(0, step, depth)
        start = time.process_time()
        loss = progressive_loss(model, batch, n_, k, depth, 1.0, criterion=task.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        elapsed += (time.process_time() - start) if step >= 3 else 0.0
    model.eval()
    start = time.process_time()
    evaluate(model, task, [split], 40, n=n, halting=Halting())
    return {"train_steps_per_s": steps / elapsed, "eval_iters_per_s": 40 / (time.process_time() - start)}


def run(code: Path, task: str, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--child", task], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, help="a checkout of the code before (ce33033)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    print(f"# {args.threads} threads, {args.repeats} alternating repeats each; {platform.processor() or platform.machine()}")
    print(f"{'task':<12} {'measure':<18} {'before':>8} {'after':>8} {'after/before':>13}")
    for task in SETUPS:
        results = {"before": [], "after": []}
        for _ in range(args.repeats):
            results["before"].append(run(args.before.resolve(), task, args.threads))
            results["after"].append(run(ROOT, task, args.threads))
        for key in ("train_steps_per_s", "eval_iters_per_s"):
            b = statistics.median(r[key] for r in results["before"])
            a = statistics.median(r[key] for r in results["after"])
            print(f"{task:<12} {key:<18} {b:>8.2f} {a:>8.2f} {a / b:>13.3f}")


if __name__ == "__main__":
    main()
