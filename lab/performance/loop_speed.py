"""Training and evaluation steps per second, the code before the one loop (``looped.iteration``) against now.

    python lab/performance/loop_speed.py --before DIR [--repeats 3] [--threads 1]

DIR is a checkout of the code before (commit ce33033: ``git worktree add DIR ce33033``). For prefix
sums (32 bits, the shipped model's config) and sudoku (the shipped model's config), each code base
runs, in a fresh process: 30 training steps of the progressive loss (depth 16 / 20, batch 128 / 64)
and 40 evaluation iterations with halting on 512 / 500 examples (``looped.evaluate``). The two code
bases run side by side, one process each, ``--repeats`` times; the medians are printed with the median
of the paired ratios (target: no more than 3% slower, a ratio of at least 0.97).

Times are the child's CPU time (``time.process_time``), so that other work on the machine changes them
little; with ``--threads 1`` that is the time the steps took on one core.

    python lab/performance/loop_speed.py --in-process [--repeats 7]

runs the former loops themselves (the oracles of ``tests/test_iteration.py``, as they stood at ce33033)
against today's in one process, alternating, on the shipped models: a training-depth forward and backward
pass (batch 128 / 64, depth 16 / 20) and 40 steps of the halting loop (512 / 500 examples). In one
process both see the same machine, so the paired ratio isolates the loop.
"""

from __future__ import annotations

import argparse
import json
import os
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


def in_process(repeats: int) -> None:
    """Former loops against today's, alternating in this process; prints the medians and paired ratios."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from test_iteration import former_forward, former_halting_loop

    from looped import runs
    from looped.evaluation import Halting
    from looped.halting import iterate
    from looped.machine import cpu_name

    def train_pass(model, batch, depth, former):
        if former:
            logits = former_forward(model, batch.inputs, depth, batch.positions, {depth})[0][depth]
        else:
            logits = model(batch.inputs, iterations=depth, positions=batch.positions,
                           track_residuals=True).logits[depth]  # the oracle tracks residuals too
        logits.float().sum().backward()

    def eval_pass(model, task, batch, former):
        loop = former_halting_loop if former else iterate
        with torch.no_grad():
            for _ in loop(model, task, batch.inputs, batch.positions, 40, Halting()):
                pass

    print(f"# in one process, former loops (ce33033) against today's, {repeats} alternating repeats; "
          f"{torch.get_num_threads()} threads; {cpu_name()}")
    print(f"{'task':<12} {'measure':<18} {'former s':>9} {'now s':>9} {'speed now/former (medians)':>26}")
    for name, (split, depth, batch_size, n) in SETUPS.items():
        model, task, _ = runs.load_model(runs.shipped_model(name))
        train_batch = task.train_batch(task.split(split), batch_size, 0)
        eval_batch = task.generate(task.split(split), n, seed=7)
        for measure, work in (("train_pass", lambda f: train_pass(model, train_batch, depth, f)),
                              ("eval_40_steps", lambda f: eval_pass(model, task, eval_batch, f))):
            work(True), work(False)  # warm-up
            times = {True: [], False: []}
            for _ in range(repeats):
                for former in (True, False):
                    start = time.process_time()
                    work(former)
                    times[former].append(time.process_time() - start)
            former, now = statistics.median(times[True]), statistics.median(times[False])
            print(f"{name:<12} {measure:<18} {former:>9.4f} {now:>9.4f} {former / now:>26.3f}")


def side_by_side(codes: list[Path], task: str, threads: int) -> list[dict]:
    """One child per code base, started together, so that both share whatever else the machine is doing."""
    procs = [subprocess.Popen([sys.executable, __file__, "--child", task], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads)})
             for code in codes]
    outs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"a {task} child failed")
    return [json.loads(out.splitlines()[-1]) for out in outs]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, help="a checkout of the code before (ce33033)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--in-process", action="store_true", help="former loops against today's in one process")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.in_process:
        in_process(args.repeats)
        return
    from looped.machine import cpu_name

    print(f"# {args.threads} thread(s) per child, the two side by side, {args.repeats} repeats; "
          f"{cpu_name()}")
    print(f"{'task':<12} {'measure':<18} {'before':>8} {'after':>8} {'after/before (median of pairs)':>31}")
    for task in SETUPS:
        pairs = [side_by_side([args.before.resolve(), ROOT], task, args.threads) for _ in range(args.repeats)]
        for key in ("train_steps_per_s", "eval_iters_per_s"):
            b = statistics.median(before[key] for before, _ in pairs)
            a = statistics.median(after[key] for _, after in pairs)
            ratio = statistics.median(after[key] / before[key] for before, after in pairs)
            print(f"{task:<12} {key:<18} {b:>8.2f} {a:>8.2f} {ratio:>31.3f}")

if __name__ == "__main__":
    main()
