"""Training throughput and memory against loop depth: our trainer vs. naive full backpropagation.

    python lab/performance/training.py [--steps S] [--batch B] [--depths 16,64,256] [--window W]

Each setting runs in a fresh process (so peak RSS is its own) on prefix sums (32 bits, d_model 32):

* ``ours``: the progressive loss (alpha 1) with a no-grad prefix and at most ``--window`` steps with
  gradient, so memory does not grow with the depth N;
* ``naive``: plain last-iteration loss, backpropagating through all N iterations every step.

Prints samples/s and peak RSS per depth, the speed ratio ours/naive, and RSS(N_max)/RSS(N_min) for
ours (target: at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def child(mode: str, depth: int, steps: int, batch: int, window: int) -> dict:
    from looped.model import LoopedConfig, LoopedTransformer
    from looped.tasks import get_task
    from looped.training import draw_depths, progressive_loss

    torch.manual_seed(0)
    task = get_task("prefix-sums")
    model = LoopedTransformer(LoopedConfig(d_model=32, n_heads=4, recall="internal", outer_norm="layernorm"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed = 0.0
    for step in range(steps + 2):  # two warm-up steps are not timed
        b = task.generate(task.split("32"), batch, seed=step)
        t0 = time.perf_counter()
        if mode == "ours":
            n, k = draw_depths(0, step, depth, window)
            loss = progressive_loss(model, b, n, k, depth, alpha=1.0, grad_window=window)
        else:
            loss = progressive_loss(model, b, 0, depth, depth, alpha=0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:
            elapsed += time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"samples_per_s": steps * batch / elapsed, "peak_rss_mb": peak / 1024, "after_setup_mb": base / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--depths", default="16,64,256")
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--child", nargs=2, metavar=("MODE", "DEPTH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.steps, args.batch, args.window)))
        return
    from looped.machine import cpu_name

    depths = [int(d) for d in args.depths.split(",")]
    print(f"# prefix sums 32 bits, d_model 32, batch {args.batch}, {args.steps} timed steps, window {args.window}; "
          f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'depth':>6} {'mode':>6} {'samples/s':>10} {'peak RSS MB':>12} {'RSS after setup MB':>19}")
    results = {}
    for depth in depths:
        for mode in ("ours", "naive"):
            cmd = [sys.executable, __file__, "--child", mode, str(depth), "--steps", str(args.steps),
                   "--batch", str(args.batch), "--window", str(args.window)]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            results[depth, mode] = r
            print(f"{depth:>6} {mode:>6} {r['samples_per_s']:>10.0f} {r['peak_rss_mb']:>12.0f} {r['after_setup_mb']:>19.0f}")
    for depth in depths:
        ratio = results[depth, "ours"]["samples_per_s"] / results[depth, "naive"]["samples_per_s"]
        print(f"depth {depth}: ours {ratio:.2f}x the samples/s of naive")
    lo, hi = results[depths[0], "ours"]["peak_rss_mb"], results[depths[-1], "ours"]["peak_rss_mb"]
    print(f"ours: peak RSS at depth {depths[-1]} / depth {depths[0]} = {hi / lo:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
