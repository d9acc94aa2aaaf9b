"""Training steps per second of the paper's block (``--arch paper``) beside this project's internal-recall +
LayerNorm block, at the same width on sudoku, in one process with the same batches.

    python lab/performance/paper_block_speed.py [--width 64] [--batch 64] [--depth 30] [--steps 20] [--rounds 3]

Each round times ``--steps`` progressive-loss steps (after two warm-up steps) of each model in turn, on the
same batches and depth draws; the medians over rounds are printed with their ratio (target: the paper's
block at least 0.8x). Times are CPU seconds of the process (``time.process_time``), which other work
on the machine changes little. With ``--profile``, also where the paper's block spends its time (torch profiler).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from looped.config import model_config
from looped.machine import cpu_name
from looped.tasks import get_task
from looped.training import draw_depths, progressive_loss


def steps_per_second(model, task, batches, depths, depth) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    elapsed = 0.0
    for i, (batch, (n, k)) in enumerate(zip(batches, depths)):
        start = time.process_time()
        loss = progressive_loss(model, batch, n, k, depth, 1.0, criterion=task.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        elapsed += time.process_time() - start if i >= 2 else 0.0
    return (len(batches) - 2) / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--depth", type=int, default=30)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    task = get_task("sudoku")
    models = {
        "paper (internal recall, post norm)": model_config(task, "paper", {"d_model": args.width, "n_heads": 8}).build(),
        "looped (internal recall, LayerNorm)": model_config(task, "looped", {"d_model": args.width}).build(),
    }
    sp = task.split("easy")
    batches = [task.train_batch(sp, args.batch, s) for s in range(args.steps + 2)]
    depths = [draw_depths(0, s, args.depth) for s in range(args.steps + 2)]
    print(f"# sudoku, width {args.width}, batch {args.batch}, depth {args.depth}, {args.steps} timed steps x "
          f"{args.rounds} rounds; {torch.get_num_threads()} threads; {cpu_name()}")
    rates = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(steps_per_second(model.train(), task, batches, depths, args.depth))
    for name, r in rates.items():
        print(f"{name:<38} {statistics.median(r):.3f} steps/s  ({sum(x.numel() for x in models[name].parameters()):,} "
              f"parameters)")
    paper, ours = (statistics.median(r) for r in rates.values())
    print(f"paper / looped: {paper / ours:.2f} (target >= 0.8)")
    if args.profile:
        model = next(iter(models.values()))
        with torch.profiler.profile() as prof:
            steps_per_second(model, task, batches[:4], depths[:4], args.depth)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
