"""Evaluation loops of the paper's block, eager against ``compile_step`` (as ``looped reproduce`` evaluates).

    python lab/performance/compiled_eval.py --task prefix-sums --split 256 --iters 50 --n 50 [--repeats 2]

One process, one thread: two copies of one randomly initialized block at the ``paper-cpu`` sizes (width 64,
8 heads, internal recall, post norm), one with its step compiled, evaluate the same examples for ``--iters``
iterations with halting off, alternating, ``--repeats`` times. Prints each pass's CPU seconds and
token-iterations a second, and the median ratio. Both copies' accuracies are printed too: they must agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from looped.config import model_config
from looped.evaluation import evaluate
from looped.machine import cpu_name
from looped.tasks import get_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="prefix-sums")
    p.add_argument("--split", default="256")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    task = get_task(args.task)
    cfg = model_config(task, "paper", {"d_model": 64, "n_heads": 8, "recall": "internal", "norm": "post"})
    torch.manual_seed(0)
    eager = cfg.build().eval()
    compiled = cfg.build().eval()
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step()
    evaluate(compiled, task, [args.split], 2, n=args.n, halting=None)  # compiles
    tokens = args.n * task.input_length(task.split(args.split)) * args.iters
    seconds: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.repeats):
        for name, model in (("eager", eager), ("compiled", compiled)):
            start = time.process_time()
            curve = evaluate(model, task, [args.split], args.iters, n=args.n, halting=None)[0]
            seconds[name].append(time.process_time() - start)
            print(f"{name}: {seconds[name][-1]:.2f} CPU s, {tokens / seconds[name][-1]:,.0f} token-iterations/s, "
                  f"accuracy {curve.accuracy[-1]:.3f}", flush=True)
    ratio = statistics.median(e / c for e, c in zip(seconds["eager"], seconds["compiled"]))
    print(f"{args.task} {args.split}, {args.n} examples x {args.iters} iterations, one thread, {cpu_name()}, "
          f"torch {torch.__version__}: compiled is {ratio:.2f}x as fast as eager (median of {args.repeats})")


if __name__ == "__main__":
    main()
