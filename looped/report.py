"""What the CLI shows and writes: eval tables, JSON and plots, and solved inputs."""

from __future__ import annotations

from pathlib import Path

from . import runs
from .config import pick_device
from .evaluate import Curve, Halting, evaluate, solve
from .tasks import task_class

DEFAULT_TRAIN_ITERS = 16  # runs whose config has no training section (shipped before it was recorded)
EVAL_DEPTH_FACTOR = 4  # default eval depth: 4x the training depth


def evaluate_run(
    run: Path,
    splits: list[str] | None,
    n: int,
    max_iters: int | None,
    seed: int = 0,
    out: Path | None = None,
    device: str = "auto",
    progress: bool = True,
    compile: bool = False,
    halting: Halting | None = None,
    data: Path | None = None,
) -> dict:
    """Accuracy and residual at every iteration on each split; writes ``eval.json`` and ``eval.png``.

    With ``halting``, each example stops when it halts and keeps its last prediction afterwards.
    ``data``: where the task's files are now, for a run whose data directory has moved.

    Returns the JSON-ready result ``{"task", "run", "results": [...]}``.
    """
    model, task, cfg = runs.load_model(run, pick_device(device))
    task = task if data is None else task.moved_to(data)
    if compile:
        model.compile_step()
    train_iters = cfg.get("train", {}).get("train_iters", DEFAULT_TRAIN_ITERS)
    max_iters = EVAL_DEPTH_FACTOR * train_iters if max_iters is None else max_iters
    curves = evaluate(model, task, splits, max_iters, n=n, seed=seed, halting=halting, progress=progress)
    result = {
        "task": task.name,
        "run": str(run),
        "max_iters": max_iters,
        "seed": seed,
        "halting": None if halting is None else {"tol": halting.tol, "patience": halting.patience},
        "results": [c.as_dict(task.split_key) for c in curves],
    }
    out = Path(out) if out is not None else Path(run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    runs.write_json(out / "eval.json", result)
    plot_curves(curves, task.split_key, out / "eval.png", title=f"{task.name}: {Path(run).name}")
    print_table(curves, task.split_key)
    return result


def print_table(curves: list[Curve], split_key: str) -> None:
    import sys

    print(f"{split_key:>8} {'n':>6} {'best_it':>7} {'best_acc':>8} {'final_acc':>9} {'final_res':>9} {'mean_its':>8}",
          file=sys.stderr)
    for c in curves:
        b = c.best_iteration
        print(
            f"{c.split:>8} {c.n:>6} {b:>7} {c.accuracy[b - 1]:>8.4f} {c.accuracy[-1]:>9.4f} {c.residual[-1]:>9.2e} "
            f"{c.mean_iterations_used:>8.1f}",
            file=sys.stderr,
        )


def plot_curves(curves: list[Curve], split_key: str, path: Path, title: str) -> None:
    """Accuracy (top) and relative residual (bottom, log scale) against iterations, one line per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_res) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for c in curves:
        its = range(1, len(c.accuracy) + 1)
        ax_acc.plot(its, c.accuracy, label=f"{split_key} {c.split}")
        ax_res.plot(its, c.residual, label=f"{split_key} {c.split}")
    ax_acc.set_ylabel("exact-match accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_acc.legend()
    ax_acc.set_title(title)
    ax_res.set_yscale("log")
    ax_res.set_ylabel(r"$\|h_t - h_{t-1}\| / \|h_t\|$")
    ax_res.set_xlabel("iteration")
    fig.tight_layout()
    runs.atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def solve_command(
    task_spec: str, lines: list[str], model_dir: Path | None, max_iters: int | None, halting: Halting | None,
    device: str, verbose: bool,
) -> list[str]:
    """``looped solve``: the answers of the model in ``model_dir`` (default: the shipped one) to ``lines``.

    ``task_spec`` names the task as ``looped train --task`` does; with ``model_dir`` the name the run
    records is enough (the run knows where its task class lives).
    """
    if model_dir is None:
        model_dir = runs.shipped_model(task_class(task_spec).name)
    model, task, _ = runs.load_model(model_dir, pick_device(device))
    name = task_spec if task_spec == task.name else task_class(task_spec).name
    if task.name != name:
        raise runs.RunError(f"{model_dir} holds a {task.name} model, not {name}")
    out = []
    for a in solve(model, task, lines, max_iters, halting):
        out.extend(a.lines + [f"# iterations: {a.iterations}"] if verbose else [a.answer])
    return out
