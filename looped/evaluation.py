"""Evaluation: accuracy and fixed-point residual at every iteration, and ``looped eval``.

``evaluate`` is the one evaluation of a model over evaluation data. ``eval_result`` serializes it
as the eval JSON: what ``looped eval`` prints (``--json``) and writes (``RUN/eval/eval.json``), and
what ``looped reproduce`` writes per run. One schema for every task::

    {"task": "prefix-sums", "run": "runs/a", "max_iters": T, "seed": 0,
     "halting": null,                     # or {"tol": 0.001, "patience": 10}
     "breadth": {"k": 8, ...},            # only with several trajectories per example (looped.breadth)
     "results": [                         # one entry per split, in the order asked
       {"split": "512",                   # the split's name, as --split takes it
        "n": 1000,                        # examples scored
        "accuracy_by_iteration": {"1": 0.0, ..., "T": 0.99},  # exact match after each iteration
        "residual_by_iteration": {"1": 0.8, ..., "T": 1e-4},  # mean ||h_t - h_{t-1}|| / ||h_t||
        "best_iteration": 90, "best_accuracy": 0.995,         # the first iteration of the best accuracy
        "final_accuracy": 0.99, "final_residual": 1e-4,       # at iteration T
        "mean_iterations_used": 31.5,     # model steps per example (summed over its trajectories); T without halting
        "<metric>_by_iteration": {...}, "best_<metric>": 0.9,  # the task's other metrics, at best_iteration
        "correct_by_iteration": {"T": "0110..."},     # only if asked: each example's exact match, in order,
        "<metric>_correct_by_iteration": {...}}]}     # and each of the task's other metrics (0s and 1s, or numbers)

With halting, an example that halts keeps its last prediction and residual at later iterations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .config import LoopedError, TrainConfig, field_default, pick_device
from .io import atomic_write, write_json
from .breadth import Breadth, iterate_breadth
from .halting import Halting, LoopState, iterate  # noqa: F401 (LoopState, iterate: importable from here too)
from .model import Looped
from .plotting import pyplot
from .runs import Run, RunConfig
from .tasks import Batch, InputError, Task

EVAL_SEED_BASE = 10**12  # evaluation data never shares a seed with training batches
MAX_ELEMENTS = int(os.environ.get("LOOPED_MAX_ELEMENTS", 2_000_000_000))  # examples x length x iterations per call
EVAL_N = 1000  # examples per split, by default


class LimitError(LoopedError):
    """A request would take more memory or time than the configured limit."""


@dataclass(eq=False)
class Curve:
    """One split's evaluation: accuracy and mean relative residual after each iteration ``1..T``.

    ``extra`` holds the task's other metrics (``Task.metrics``) per iteration, by name;
    ``iterations`` (n,) the steps each example used (fewer than ``T`` with halting);
    ``per_example`` {metric: {t: (n,)}} each example's value of every metric after iteration t, for the t
    asked for (``correct``: those of ``exact``); ``replayed`` the Curve of the same pass with a halting rule
    replayed on it (``evaluate(replay=...)``), else None.
    """

    split: str
    accuracy: list[float]
    residual: list[float]
    iterations: torch.Tensor
    extra: dict[str, list[float]] = field(default_factory=dict)
    per_example: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)
    replayed: "Curve | None" = None

    @property
    def correct(self) -> dict[int, torch.Tensor]:
        """{t: (n,) bool} each example's exact match after iteration t, for the t asked for."""
        return self.per_example.get("exact", {})

    @property
    def n(self) -> int:
        return len(self.iterations)

    @property
    def mean_iterations_used(self) -> float:
        return self.iterations.double().mean().item()

    @property
    def best_iteration(self) -> int:
        return max(range(len(self.accuracy)), key=lambda i: (self.accuracy[i], -i)) + 1

    def as_dict(self) -> dict:
        """This split's entry of the eval JSON (the module docstring)."""
        best = self.best_iteration
        by_iteration = lambda values: {str(t + 1): v for t, v in enumerate(values)}  # noqa: E731
        return {
            "split": self.split,
            "n": self.n,
            "accuracy_by_iteration": by_iteration(self.accuracy),
            "residual_by_iteration": by_iteration(self.residual),
            "best_iteration": best,
            "best_accuracy": self.accuracy[best - 1],
            "final_accuracy": self.accuracy[-1],
            "final_residual": self.residual[-1],
            "mean_iterations_used": self.mean_iterations_used,
            **{f"{name}_by_iteration": by_iteration(vals) for name, vals in self.extra.items()},
            **{f"best_{name}": vals[best - 1] for name, vals in self.extra.items()},
            **{("correct" if name == "exact" else f"{name}_correct") + "_by_iteration":
               {str(t): per_example_json(v) for t, v in kept.items()} for name, kept in self.per_example.items()},
        }


def bits(ok: torch.Tensor) -> str:
    """(N,) bool -> a string of 0s and 1s (compact in JSON)."""
    return "".join("1" if v else "0" for v in ok.tolist())


def per_example_json(values: torch.Tensor) -> str | list[float]:
    """Per-example values for the eval JSON: a string of 0s and 1s when they are all 0 or 1, else a list."""
    return bits(values) if bool(((values == 0) | (values == 1)).all()) else values.double().tolist()


class Tally:
    """The sums behind one ``Curve``, chunk by chunk: each metric and the residual after every iteration, the
    steps each example used, and the per-example values at the iterations in ``kept``."""

    def __init__(self, max_iters: int, correct_at: Sequence[int]):
        self.sums: dict[str, torch.Tensor] = {}
        self.resid = torch.zeros(max_iters, dtype=torch.float64)
        self.used: list[torch.Tensor] = []
        self.kept: dict[int, list[dict]] = {t: [] for t in sorted(set(correct_at))}  # t -> [{metric: (chunk,)}]
        self.last: tuple[dict, tuple[dict, torch.Tensor]] | None = None  # the last scores, and their sums

    def add(self, t: int, scores: dict[str, torch.Tensor], residual: torch.Tensor) -> None:
        """One chunk's per-example metrics ``scores`` and residuals (chunk,) after iteration t."""
        values, r = {k: v.double().sum().cpu() for k, v in scores.items()}, residual.double().sum().cpu()
        for name, v in values.items():
            self.sums.setdefault(name, torch.zeros(len(self.resid), dtype=torch.float64))[t - 1] += v
        self.resid[t - 1] += r
        if t in self.kept:
            self.kept[t].append({k: v.cpu() for k, v in scores.items()})
        self.last = scores, (values, r)

    def end_chunk(self, t: int, used: torch.Tensor) -> None:
        """The chunk stopped after iteration t: every later iteration repeats its last values."""
        scores, (values, r) = self.last
        for name, v in values.items():
            self.sums[name][t:] += v
        self.resid[t:] += r
        for later in (s for s in self.kept if s > t):
            self.kept[later].append({k: v.cpu() for k, v in scores.items()})
        self.used.append(used.cpu())

    def curve(self, split: str, n: int) -> Curve:
        metrics = {name: (s / n).tolist() for name, s in self.sums.items()}
        per_example = {name: {t: torch.cat([c[name] for c in v]) for t, v in self.kept.items()}
                       for name in (self.sums if self.kept else ())}
        return Curve(split=split, accuracy=metrics.pop("exact"), residual=(self.resid / n).tolist(),
                     iterations=torch.cat(self.used), extra=metrics, per_example=per_example)


@torch.no_grad()
def accuracy_curve(
    model: Looped, task: Task, batch: Batch, max_iters: int, chunk: int = 500, progress: bool = False,
    halting: Halting | None = None, correct_at: Sequence[int] = (), split: str = "", breadth: Breadth | None = None,
    replay: Halting | None = None,
) -> Curve:
    """The ``Curve`` of one batch: the task's metrics and the mean relative residual after every iteration.

    Args: batch with inputs (N, L); max_iters T; halting: per-example stopping (None: all run T steps);
    correct_at: iterations at which to keep each example's value of every metric; split: the Curve's name;
    breadth: several trajectories per example and the answer chosen among them after each iteration
    (``iterations`` then counts the model steps of all of an example's trajectories); replay: with halting
    off, the Curve's ``replayed`` is what ``halting=replay`` gives, from the same pass.
    A halted example keeps its last prediction and residual. Examples are processed in chunks.
    """
    if any(not 1 <= t <= max_iters for t in correct_at):
        raise InputError(f"iterations {tuple(correct_at)} must lie in 1..{max_iters}")
    if replay is not None and (halting is not None or breadth is not None):
        raise InputError("a halting rule is replayed on a pass without halting or breadth")
    device = next(model.parameters()).device
    tallies = [Tally(max_iters, correct_at) for _ in range(1 if replay is None else 2)]
    n = len(batch)
    bar = tqdm(total=n * max_iters, disable=not progress, unit=" example-iterations", unit_scale=True, leave=False,
               desc=f"eval {split}".strip())
    for start in range(0, n, chunk):
        part = batch.slice(start, start + chunk).to(device)
        if breadth is None:
            loop = iterate(model, task, part.inputs, part.positions, max_iters, halting, replay=replay)
        else:
            loop = iterate_breadth(model, task, part.inputs, part.positions, max_iters, halting, breadth)
        for t, state in enumerate(loop, 1):
            for tally, view in zip(tallies, (state, state.replayed)):
                tally.add(t, task.metrics(part.inputs, view.logits, part.targets), view.residual)
            bar.update(len(part))
        for tally, view in zip(tallies, (state, state.replayed)):
            tally.end_chunk(t, view.used)
        bar.update(len(part) * (max_iters - t))
    bar.close()
    curve = tallies[0].curve(split, n)
    curve.replayed = tallies[1].curve(split, n) if replay is not None else None
    return curve


def check_budget(n: int, length: int, iterations: int) -> None:
    cost = n * length * iterations
    if cost > MAX_ELEMENTS:
        raise LimitError(
            f"{n} examples x {length} tokens x {iterations} iterations = {cost:.3g} token-steps exceeds the "
            f"limit of {MAX_ELEMENTS:.3g}; lower --n or --max-iters, or set LOOPED_MAX_ELEMENTS"
        )


def evaluate(
    model: Looped, task: Task, splits: str | list[str] | None, max_iters: int, n: int = EVAL_N, seed: int = 0,
    halting: Halting | None = Halting(), progress: bool = False, correct_at: Sequence[int] = (),
    breadth: int | Breadth = 1, select: str = "verify", replay: Halting | None = None,
) -> list[Curve]:
    """Accuracy and mean relative residual after every iteration ``1..max_iters`` on each split.

    Args:
        model: a looped model (its device is used); task: the ``Task`` it was trained on.
        splits: split names, one name, or None for ``task.eval_splits``.
        max_iters: T, the iterations to run. n: examples per split (all of a split that holds fewer).
        seed: which evaluation set; never shared with training data.
        halting: per-example stopping (default ``Halting()``, as ``looped eval``); None runs every example T steps.
        correct_at: iterations at which each ``Curve`` keeps every example's value of every metric.
        breadth, select: trajectories per example and how one answer is chosen (``looped.breadth``; a
            ``Breadth`` sets every option); ``iterations`` then counts the steps of all of an example's trajectories.
        replay: with ``halting=None``, each Curve's ``replayed`` is the Curve this halting rule gives, read off the
            same pass (halted examples stay in the batch, so it costs no model steps).
    Returns: one ``Curve`` per split, in order.
    """
    breadth = breadth if isinstance(breadth, Breadth) else Breadth(k=breadth, select=select)
    breadth = None if breadth.k == 1 else breadth
    if n < 1:
        raise InputError(f"n (examples per split) must be positive, got {n}")
    if max_iters < 1:
        raise InputError(f"max_iters must be positive, got {max_iters}")
    names = task.eval_splits if splits is None else [splits] if isinstance(splits, str) else splits
    parsed = [task.split(s) for s in names]
    for split in parsed:
        check_budget(n * (1 if breadth is None else breadth.k), task.input_length(split), max_iters)
    return [accuracy_curve(model, task, task.generate(split, n, seed=EVAL_SEED_BASE + seed), max_iters,
                           progress=progress, halting=halting, correct_at=correct_at, split=split.name, breadth=breadth,
                           replay=replay)
            for split in parsed]


def eval_result(task: Task, run: Path | str, curves: list[Curve], max_iters: int, seed: int,
                halting: Halting | None, breadth: Breadth | None = None) -> dict:
    """The eval JSON of ``curves`` (the module docstring)."""
    return {
        "task": task.name,
        "run": str(run),
        "max_iters": max_iters,
        "seed": seed,
        "halting": None if halting is None else {"tol": halting.tol, "patience": halting.patience},
        **({} if breadth is None or breadth.k == 1 else {"breadth": breadth.describe()}),
        "results": [c.as_dict() for c in curves],
    }


EVAL_DEPTH_FACTOR = 4  # default eval depth: 4x the training depth


def training_depth(cfg: RunConfig) -> int:
    """The training depth N a run records; for a model shipped without its training config, the default."""
    return (cfg.train.train_iters if cfg.train is not None else field_default(TrainConfig, "train_iters"))


def evaluate_run(
    run: Path,
    splits: list[str] | None,
    n: int = EVAL_N,
    max_iters: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    device: str = "auto",
    progress: bool = True,
    compile: bool = False,
    halting: Halting | None = Halting(),
    data: Path | None = None,
    breadth: Breadth = Breadth(),
) -> tuple[dict, list[Curve], Path]:
    """``looped eval``: ``evaluate`` on a run directory; writes ``eval.json`` and ``eval.png`` to ``out``
    (default ``RUN/eval``). ``max_iters`` default: ``EVAL_DEPTH_FACTOR`` times the training depth.

    ``data``: where the task's files are now, for a run whose data directory has moved.
    Returns the eval JSON (the module docstring), the curves and the folder written to.
    """
    run_dir = Run(run)
    model, task, cfg = run_dir.load(pick_device(device))
    task = task if data is None else task.moved_to(data)
    if compile:
        model.compile_step()
    max_iters = EVAL_DEPTH_FACTOR * training_depth(cfg) if max_iters is None else max_iters
    curves = evaluate(model, task, splits, max_iters, n=n, seed=seed, halting=halting, progress=progress, breadth=breadth)
    result = eval_result(task, run, curves, max_iters, seed, halting, breadth)
    out = run_dir.folder("eval") if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval.json", result)
    plot_curves(curves, out / "eval.png", title=f"{task.name}: {Path(run).name}")
    return result, curves, out


def table(curves: list[Curve]) -> list[str]:
    """The eval table: per split, examples, best iteration and accuracy, final accuracy and residual, and
    the mean iterations used."""
    lines = [f"{'split':>8} {'n':>6} {'best_it':>7} {'best_acc':>8} {'final_acc':>9} {'final_res':>9} {'mean_its':>8}"]
    for c in curves:
        b = c.best_iteration
        lines.append(f"{c.split:>8} {c.n:>6} {b:>7} {c.accuracy[b - 1]:>8.4f} {c.accuracy[-1]:>9.4f} "
                     f"{c.residual[-1]:>9.2e} {c.mean_iterations_used:>8.1f}")
    return lines


RISING_WINDOW = 0.1  # a curve still rises when its last tenth of iterations gained accuracy


def still_rising(curve: Curve) -> bool:
    """Whether the accuracy gained over the last ``RISING_WINDOW`` of the iterations (more might help)."""
    T = len(curve.accuracy)
    back = max(1, int(RISING_WINDOW * T))
    return T > back and curve.accuracy[-1] > curve.accuracy[T - 1 - back]


def plot_curves(curves: list[Curve], path: Path, title: str) -> None:
    """Accuracy (top) and relative residual (bottom, log scale) against iterations, one line per split; the
    legend stands beside the plots, never on the curves."""
    plt = pyplot()
    fig, (ax_acc, ax_res) = plt.subplots(2, 1, figsize=(8.5, 6), sharex=True)
    for i, c in enumerate(curves):
        its = range(1, len(c.accuracy) + 1)
        ax_acc.plot(its, c.accuracy, color=f"C{i % 10}", label=c.split)
        ax_res.plot(its, c.residual, color=f"C{i % 10}")
    ax_acc.set_ylabel("exact-match accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_acc.legend(title="split", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax_acc.set_title(title)
    ax_res.set_yscale("log")
    ax_res.set_ylabel(r"$\|h_t - h_{t-1}\| / \|h_t\|$")
    ax_res.set_xlabel("iteration")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
