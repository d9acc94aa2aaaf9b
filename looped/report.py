"""What the CLI shows and writes: eval tables, JSON and plots, and solved inputs."""

from __future__ import annotations

from pathlib import Path

from . import evaluate, runs
from .evaluate import EVAL_SEED_BASE, Curve
from .tasks import InputError, get_task
from .config import pick_device


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
    halting: evaluate.Halting | None = None,
) -> dict:
    """Accuracy and residual at every iteration on each split; writes ``eval.json`` and ``eval.png``.

    With ``halting``, each example stops when it halts and keeps its last prediction afterwards.

    Returns the JSON-ready result ``{"task", "run", "results": [...]}``.
    """
    model, task, cfg = runs.load_model(run, pick_device(device))
    if compile:
        model.compile_step()
    if n < 1:
        raise InputError(f"--n must be positive, got {n}")
    train_iters = cfg.get("train", {}).get("train_iters", 16)
    max_iters = 4 * train_iters if max_iters is None else max_iters
    if max_iters < 1:
        raise InputError(f"--max-iters must be positive, got {max_iters}")
    parsed = [task.split(s) for s in (splits or task.eval_splits)]
    curves = []
    for split in parsed:
        evaluate.check_budget(n, task.input_length(split), max_iters)
    for split in parsed:
        batch = task.generate(split, n, seed=EVAL_SEED_BASE + seed)
        metrics, res, used = evaluate.accuracy_curve(model, task, batch, max_iters, progress=progress, halting=halting)
        acc = metrics.pop("exact")
        curves.append(Curve(split=split.name, n=len(batch), accuracy=acc, residual=res,
                            mean_iterations_used=used.double().mean().item(), extra=metrics))
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
    task_name: str, lines: list[str], model_dir: Path, max_iters: int | None, halting: evaluate.Halting | None,
    device: str, verbose: bool,
) -> list[str]:
    """Parse every line first (so one bad line fails before any work), then solve them in order."""
    task = get_task(task_name)
    encoded = []
    for i, line in enumerate(lines, 1):
        try:
            encoded.append(task.parse(line))
        except InputError as e:
            raise InputError(f"line {i}: {e}" if len(lines) > 1 else str(e)) from None
    model, model_task, _ = runs.load_model(model_dir, pick_device(device))
    if model_task.name != task.name:
        raise runs.RunError(f"{model_dir} holds a {model_task.name} model, not {task.name}")
    answers = []
    for line, tokens in zip(lines, encoded):
        length = tokens.shape[0]
        iters = max(64, 4 * length) if max_iters is None else max_iters
        if iters < 1:
            raise InputError(f"--max-iters must be positive, got {iters}")
        evaluate.check_budget(1, length, iters)
        sol = evaluate.solve_inputs(model, task, tokens[None], task.positions(length), iters, halting)
        if verbose:
            answers.extend(task.describe(line, tokens, sol.logits[0]) + [f"# iterations: {int(sol.iterations[0])}"])
        else:
            answers.append(task.decode(line, tokens, sol.logits[0]))
    return answers

