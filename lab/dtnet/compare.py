"""DT-net against the looped transformer on prefix sums: time to 95% on 512 bits, accuracy at equal time.

    python lab/dtnet/compare.py [--minutes 10] [--width 64] [--seeds 0,1,2] [--every 15] [--n 100] [--out DIR]
                               [--keep DIR [--no-train]] [--only NAMES] [--recipe DIR] [--ema DECAY]
                               [--dtnet-compile]

For each seed, two training processes run side by side, one thread each, on the same data: fresh
32-bit strings, batch 128, the same function of (seed, step), AdamW with the same warmup and cosine
schedule over the same wall-time budget. "Ours" is the recipe of the shipped prefix-sums model (``looped/models/prefix-sums``)
(internal recall, LayerNorm, d_model 32, training depth 16, lr 2e-3, weight average 0.995); DT-net
is the DeepThinking recall network (``looped/dtnet.py``) with its published training depth of 30
and learning rate 1e-3, no weight average, and eager steps (on CPU they are faster for it than
compiled ones; ``--dtnet-compile`` compiles them as ours' recipe does). ``--recipe DIR`` takes
ours' recipe from another run folder's config.

Training is never interrupted: each process saves its weights every ``--every`` seconds of
training time. Then both score their snapshots side by side on the same ``--n`` fresh 512-bit
strings (exact match at the best iteration up to ``--cap``, the same cap for both), in time order
up to the first one at or above 95% (the time to 95%), then every ``--stride``-th one after it for
the curve, and the last one (accuracy at equal time).

``--keep DIR`` keeps the snapshots under ``DIR/seed-S/`` (else they go to a temporary directory);
``--no-train`` then scores the kept snapshots again, e.g. with another ``--cap`` or ``--length``.
When ours' recipe keeps a moving average of its weights (``--ema DECAY`` sets or overrides its
decay), the average is scored as a third model, ``ours-ema``, whose snapshots come from the same
training trajectory as ``ours`` (the trained weights). ``--only`` scores a subset, e.g.
``--only ours-ema,dtnet``.

Prints each model's scored snapshots, its time to 95% per seed, the time from which every later
scored snapshot stays at or above 95%, and both final accuracies; writes
``dtnet.json`` and ``dtnet.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import platform
import tempfile
from pathlib import Path

import torch

from looped import runs
from looped.evaluation import EVAL_SEED_BASE, accuracy_curve
from looped.config import config_from_dict
from looped.tasks import get_task
from looped.config import TrainConfig, model_config
from looped.training import Trainer

TARGET = 0.95


def recipes(base: dict, args: argparse.Namespace, seed: int) -> dict[str, tuple[dict, object]]:
    """Name -> (training config fields, model config) for the two models; ours from the run config ``base``."""
    train = {k: v for k, v in base["train"].items() if k in TrainConfig.__dataclass_fields__}
    train.update(minutes=args.minutes, steps=None, seed=seed, eval_every=10**9, checkpoint_every=10**9, device="cpu")
    dtnet = {**train, "train_iters": 30, "lr": 1e-3, "ema": None, "compile": args.dtnet_compile}
    return {
        "ours": ({**train, "ema": train.get("ema") if args.ema is None else args.ema}, config_from_dict(base["model"])),
        f"dtnet-w{args.width}": (dtnet, model_config(get_task("prefix-sums"), "dtnet", {"width": args.width})),
    }


def train_and_snapshot(name: str, train: dict, model_cfg, args: argparse.Namespace, out: Path) -> None:
    torch.set_num_threads(1)
    trainer = Trainer.create(out / name, get_task("prefix-sums"), model_cfg, TrainConfig(**train))
    snaps, averaged, next_snap, diverged = [], [], args.every, None

    def take_snapshots(trainer: Trainer, row: dict) -> None:  # off the training clock
        nonlocal next_snap
        if trainer.elapsed >= next_snap or trainer.progress() >= 1.0:
            when = {"train_s": round(trainer.elapsed, 1), "step": trainer.step}
            snaps.append({**when, "path": str(snapshot(out / name / f"snap-{len(snaps):03d}", trainer.model))})
            if trainer.average is not None:
                averaged.append({**when, "path": str(snapshot(out / name / f"ema-{len(averaged):03d}", trainer.weights()))})
            next_snap += args.every

    try:
        trainer.run(show_progress=False, on_step=take_snapshots)
    except FloatingPointError:
        diverged = trainer.step + 1
    info = {"parameters": trainer.model.num_parameters(), "steps": trainer.step, "diverged_at_step": diverged}
    (out / f"{name}.train.json").write_text(json.dumps({**info, "snapshots": snaps}))
    if averaged:
        (out / f"{name}-ema.train.json").write_text(json.dumps({**info, "snapshots": averaged}))


def snapshot(stem: Path, model: torch.nn.Module) -> Path:
    path = stem.with_suffix(".safetensors")
    runs.write_tensors(path, model.state_dict())
    return path


def score_snapshots(name: str, model_cfg, args: argparse.Namespace, out: Path) -> None:
    """Scores snapshots in time order up to the first one at or above ``TARGET``, then every
    ``--stride``-th one and the last."""
    torch.set_num_threads(1)
    info = json.loads((out / f"{name}.train.json").read_text())
    snaps = info["snapshots"]
    model = model_cfg.build()
    task = get_task("prefix-sums")
    batch = task.generate(task.split(str(args.length)), args.n, seed=EVAL_SEED_BASE)
    curve, hit = [], None
    for i, snap in enumerate(snaps):
        if hit is not None and (i - hit) % args.stride and i != len(snaps) - 1:
            continue
        model.load_state_dict(runs.read_tensors(Path(snap["path"])))
        scored = accuracy_curve(model, task, batch, args.cap)
        acc = max(scored.accuracy)
        best = scored.accuracy.index(acc) + 1
        curve.append({"train_s": snap["train_s"], "step": snap["step"], "accuracy": acc, "best_iter": best,
                      "final_residual": scored.residual[-1]})
        print(f"{name}: {snap['train_s']} s, step {snap['step']}: {acc:.3f} (iteration {best}), "
              f"residual at {args.cap}: {scored.residual[-1]:.2e}", flush=True)
        if hit is None and acc >= TARGET:
            hit = i
    info["curve"] = curve
    (out / f"{name}.json").write_text(json.dumps(info))


def side_by_side(target, jobs: list[tuple]) -> None:
    """Runs ``target(*job)`` for every job at once, one process each."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=job) for job in jobs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()


def time_to(curve: list[dict], target: float) -> float | None:
    return next((c["train_s"] for c in curve if c["accuracy"] >= target), None)


def time_to_stay(curve: list[dict], target: float) -> float | None:
    """The first time from which every later scored snapshot is at or above ``target``."""
    since = None
    for c in curve:
        if c["accuracy"] < target:
            since = None
        elif since is None:
            since = c["train_s"]
    return since


def plot(results: dict, length: int, path: Path) -> None:
    """One panel per seed: each model's scored snapshots against training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(3 * len(results) + 1, 3.4), sharey=True, squeeze=False)
    for ax, (seed, models) in zip(axes[0], results.items()):
        for name, r in models.items():
            ax.plot([c["train_s"] / 60 for c in r["curve"]], [c["accuracy"] for c in r["curve"]], marker="o", ms=3,
                    color={"ours": "C1", "ours-ema": "C2"}.get(name, "C0"), label=name)
        ax.axhline(TARGET, color="grey", ls=":", lw=1)
        ax.set(xlabel="training time (min)", title=f"seed {seed}", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel(f"{length}-bit exact match (best iteration)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Prefix sums: snapshots of each model, same data and time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_seed(seed: int, base: dict, args: argparse.Namespace) -> dict:
    """Trains both models side by side on ``seed``'s data, then scores both; returns name -> result."""
    plans = recipes(base, args, seed)
    scored = {name: cfg for name, (_, cfg) in plans.items()}
    if plans["ours"][0]["ema"] is not None:
        scored["ours-ema"] = plans["ours"][1]
    if args.only:
        scored = {name: cfg for name, cfg in scored.items() if name.removesuffix(f"-w{args.width}") in args.only}
        plans = {name: plan for name, plan in plans.items() if any(s.startswith(name) for s in scored)}
    with contextlib.ExitStack() as stack:
        work = args.keep / f"seed-{seed}" if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.no_train:
            if not work.is_dir():
                raise SystemExit(f"error: no kept snapshots in {work}")
        else:
            work.mkdir(parents=True, exist_ok=True)
            side_by_side(train_and_snapshot, [(name, train, cfg, args, work) for name, (train, cfg) in plans.items()])
        side_by_side(score_snapshots, [(name, cfg, args, work) for name, cfg in scored.items()])
        return {name: json.loads((work / f"{name}.json").read_text()) for name in scored}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-time budget of each model")
    p.add_argument("--width", type=int, default=64, help="DT-net width (400 is the published model)")
    p.add_argument("--seeds", default="0", help="comma-separated data and initialization seeds")
    p.add_argument("--every", type=float, default=15.0, help="seconds of training between snapshots")
    p.add_argument("--stride", type=int, default=4, help="after the first hit, score every stride-th snapshot")
    p.add_argument("--n", type=int, default=100, help="512-bit test strings")
    p.add_argument("--length", type=int, default=512)
    p.add_argument("--cap", type=int, default=300, help="most test iterations")
    p.add_argument("--out", type=Path, default=Path("runs/bench_dtnet"))
    p.add_argument("--keep", type=Path, help="keep the snapshots here (default: a temporary directory)")
    p.add_argument("--no-train", action="store_true", help="score the snapshots already under --keep")
    p.add_argument("--only", type=lambda s: s.split(","), help="score only these of ours, ours-ema, dtnet")
    p.add_argument("--recipe", type=Path, default=runs.shipped_model("prefix-sums"),
                   help="a run folder whose config.json gives ours' model and training recipe")
    p.add_argument("--ema", type=float, help="ours keeps a moving average of its weights with this decay "
                   "(default: the recipe's); scored as ours-ema")
    p.add_argument("--dtnet-compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile DT-net's step (default off: eager is faster for it on CPU)")
    args = p.parse_args()
    if args.no_train and args.keep is None:
        p.error("--no-train scores kept snapshots; give --keep DIR")
    try:
        base = runs.Run(args.recipe).read_config_dict()
    except runs.RunError as e:
        p.error(str(e))
    if args.only and not set(args.only) <= {"ours", "ours-ema", "dtnet"}:
        p.error(f"--only takes ours, ours-ema and dtnet, not {','.join(args.only)}")
    seeds = [int(x) for x in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# prefix sums, {args.minutes:g} min each, side by side, 1 thread each; scored on {args.n} "
          f"{args.length}-bit strings, cap {args.cap}; {platform.processor() or platform.machine()}")
    results = {}
    for seed in seeds:
        results[seed] = run_seed(seed, base, args)
        (args.out / "dtnet.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                         "seeds": results}))
    print(f"{'seed':>4} {'model':>12} {'params':>8} {'steps':>6} {'time to 95%':>12} {'stays >=95% from':>16} "
          f"{'final acc':>9}")
    for seed, models in results.items():
        for name, r in models.items():
            times = [time_to(r["curve"], TARGET), time_to_stay(r["curve"], TARGET)]
            first, stay = ("not reached" if t is None else f"{t:.0f} s" for t in times)
            final = r["curve"][-1]["accuracy"] if r["curve"] else float("nan")
            note = f"  (loss diverged at step {r['diverged_at_step']})" if r["diverged_at_step"] else ""
            print(f"{seed:>4} {name:>12} {r['parameters']:>8d} {r['steps']:>6d} {first:>12} {stay:>16} "
                  f"{final:>9.3f}{note}")
    plot(results, args.length, args.out / "dtnet.png")
    print(f"wrote {args.out / 'dtnet.json'} and {args.out / 'dtnet.png'}")


if __name__ == "__main__":
    main()
