"""Rules v3 development: how many steps a task needs. One job of the ``cpu-dev`` budget (a development seed),
trained for longer, recording the easy accuracy at ``T_max`` (halting off, 500 examples) at the given steps,
then evaluated on its easy split like every development job of the grid.

    python lab/reproduction/development_curve.py run chess --steps 12000 --marks 1500,3000,6000,9000,12000 OUT
    python lab/reproduction/development_curve.py plot OUT lab/reproduction/v3

Resumable: rerun the same command. The accuracy at a mark is that of a run whose schedule is the whole
``--steps`` (warmup over a tenth, x0.1 at 60%), not of a run trained for the mark's steps alone.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from looped.reproduce.budgets import CPU_DEV, DEV_SEEDS  # noqa: E402
from looped.reproduce.grid import DEV, RunSpec, execute  # noqa: E402
from looped.runs import Run  # noqa: E402


def run(args: argparse.Namespace) -> None:
    plan = next(p for p in CPU_DEV.plans if p.task == args.task)
    if args.lr not in plan.lrs:
        raise SystemExit(f"--lr must be one of the development learning rates {plan.lrs}")
    plan = replace(plan, steps=args.steps, checkpoints=tuple(args.marks), seeds=(args.seed,))  # ids name the lr
    recall, norm = args.variant.split("/")
    spec = RunSpec(plan, recall, norm, "add", args.seed, args.lr)
    record = execute(spec, args.out, CPU_DEV)
    print(json.dumps({"name": spec.name, "steps": args.steps, "easy_accuracy": record["easy_accuracy"],
                      "development": record["development"]}))


def plot(args: argparse.Namespace) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    drops = set()
    for path in sorted(args.out.glob("runs/*/" + DEV)):
        run = Run(path.parent)
        by_step = run.read_json(DEV)["easy_accuracy_by_step"]
        steps = sorted(int(s) for s in by_step)
        model, train = run.config.model, run.config.train
        ax.plot(steps, [by_step[str(s)] for s in steps], marker="o",
                label=f"{model.recall}/{model.norm}, lr {train.lr:g}, seed {train.seed}")
        drops |= {(round(at * train.steps), train.decay_factor) for at in train.decay_at}
    for step, factor in sorted(drops):
        ax.axvline(step, color="k", linestyle=":", label=f"learning rate x{factor:g} (step {step:,})")
    ax.axhline(0.5, color="grey", linestyle="--", label="learned (0.5)")
    ax.set(xlabel="training step", ylabel="easy accuracy at T_max (500 examples)", ylim=(0, 1),
           title=f"Rules v3 development, {args.title}: easy accuracy along training")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    args.dest.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.dest / "development_curve.png", dpi=120)
    print(args.dest / "development_curve.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train one development job for --steps, recording the easy accuracy at --marks")
    r.add_argument("task", choices=[plan.task for plan in CPU_DEV.plans])
    r.add_argument("out", type=Path)
    r.add_argument("--steps", type=int, required=True)
    r.add_argument("--marks", type=lambda s: [int(x) for x in s.split(",")], required=True)
    r.add_argument("--variant", default="internal/post", help="recall/norm (default: internal/post)")
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--seed", type=int, choices=DEV_SEEDS, default=0)
    r.set_defaults(func=run)
    q = sub.add_parser("plot", help="draw every development curve under OUT into DEST/development_curve.png")
    q.add_argument("out", type=Path)
    q.add_argument("dest", type=Path)
    q.add_argument("--title", default="chess", help="what the runs are, for the plot's title (default: %(default)s)")
    q.set_defaults(func=plot)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
