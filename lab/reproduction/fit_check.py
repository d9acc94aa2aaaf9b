"""Does a development run memorize or underfit? Its accuracy on positions it trained on against held-out ones.

    python lab/reproduction/fit_check.py RUN --split mate1 --n 1000 --iters 30

Both sets are scored with the task's exact metric after ``--iters`` iterations, halting off: the training set is
drawn from the run's training pool (``Task.train_batch``, with replacement), the held-out set is the split's
evaluation set, the one ``looped eval`` scores. Far higher on the training set: memorizing; about equal: underfitting.
"""

from __future__ import annotations

import argparse
import json

from looped.evaluation import EVAL_SEED_BASE, accuracy_curve
from looped.runs import load_model
from looped.training import TRAIN_ACC_SEED


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--split", required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--iters", type=int, default=30)
    args = p.parse_args()
    model, task, _ = load_model(args.run)
    split = task.split(args.split)
    sets = {"training": task.train_batch(split, args.n, seed=TRAIN_ACC_SEED),
            "held_out": task.generate(split, args.n, seed=EVAL_SEED_BASE)}  # looped eval's set
    out = {name: accuracy_curve(model, task, batch, args.iters, halting=None).accuracy[-1] for name, batch in sets.items()}
    print(json.dumps({"run": args.run, "split": args.split, "n": args.n, "iters": args.iters} | out))


if __name__ == "__main__":
    main()
