"""Test-time compute: accuracy and fixed-point residual at every iteration, and solving inputs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .model import Looped, relative_residual
from .tasks import Batch, InputError, Task

EVAL_SEED_BASE = 10**12  # evaluation data never shares a seed with training batches
MAX_ELEMENTS = int(os.environ.get("LOOPED_MAX_ELEMENTS", 2_000_000_000))  # examples x length x iterations per call
COMPACT_AT = 0.75  # halting: drop finished samples from the batch once at most this share is still live


class LimitError(ValueError):
    """A request would take more memory or time than the configured limit."""


@dataclass
class Curve:
    """Accuracy and mean relative residual after each iteration ``1..T`` on one split.

    ``extra`` holds the task's other metrics (``Task.metrics``) per iteration, by name;
    ``mean_iterations_used`` the mean steps per sample (fewer than ``T`` with halting).
    """

    split: str
    n: int
    accuracy: list[float]
    residual: list[float]
    mean_iterations_used: float
    extra: dict[str, list[float]] = field(default_factory=dict)

    @property
    def best_iteration(self) -> int:
        return max(range(len(self.accuracy)), key=lambda i: (self.accuracy[i], -i)) + 1

    def as_dict(self, split_key: str) -> dict:
        key_value = int(self.split) if split_key == "length" else self.split
        best = self.best_iteration
        return {
            split_key: key_value,
            "n": self.n,
            "accuracy_by_iteration": {str(t + 1): a for t, a in enumerate(self.accuracy)},
            "residual_by_iteration": {str(t + 1): r for t, r in enumerate(self.residual)},
            "best_iteration": best,
            "best_accuracy": self.accuracy[best - 1],
            "final_accuracy": self.accuracy[-1],
            "final_residual": self.residual[-1],
            "mean_iterations_used": self.mean_iterations_used,
            **{f"{name}_by_iteration": {str(t + 1): v for t, v in enumerate(vals)} for name, vals in self.extra.items()},
            **{f"best_{name}": vals[best - 1] for name, vals in self.extra.items()},
        }


@dataclass(frozen=True)
class Halting:
    """When a sample stops iterating: its relative residual falls below ``tol``, or its prediction
    has not changed for ``patience`` steps. Halted samples leave the batch, so they stop costing
    compute; the batch is compacted once a quarter of it has halted (few distinct shapes)."""

    tol: float = 1e-3
    patience: int = 10

    def __post_init__(self) -> None:
        if not self.tol > 0:
            raise InputError(f"halting tolerance must be positive, got {self.tol}")
        if self.patience < 1:
            raise InputError(f"halting patience must be a positive integer, got {self.patience}")


@dataclass
class LoopState:
    """What ``iterate`` exposes after each step. logits (B, L, C) and residual (B,) hold each sample's
    latest values, frozen once it halts; used (B,) the iterations each used so far."""

    logits: torch.Tensor
    residual: torch.Tensor
    used: torch.Tensor
    live: int  # samples still iterating


@torch.no_grad()
def iterate(model: Looped, task: Task, tokens: torch.Tensor, positions: torch.Tensor | None,
            max_iters: int, halting: Halting | None = None) -> Iterator[LoopState]:
    """Run the loop on ``tokens`` (B, L) for up to ``max_iters`` steps, yielding a ``LoopState`` after each."""
    x = model.embed_input(tokens, positions)
    h = model.initial_state(x)
    B, dev = tokens.shape[0], tokens.device
    state = LoopState(model.readout(h), torch.zeros(B, device=dev), torch.zeros(B, dtype=torch.long, device=dev), B)
    rows = torch.arange(B, device=dev)  # the samples in the working batch (h, x)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    last = task.predict(tokens, state.logits)
    unchanged = torch.zeros(B, dtype=torch.long, device=dev)
    for _ in range(max_iters):
        h_next = model.step(h, x)
        r = relative_residual(h_next, h)
        h = h_next
        on = active[rows]  # working-batch entries that have not halted yet
        ids = rows[on]
        logits = model.readout(h[on])
        state.logits[ids], state.residual[ids] = logits, r[on].to(state.residual.dtype)
        state.used[ids] += 1
        if halting is not None:
            pred = task.predict(tokens[ids], logits)
            unchanged[ids] = torch.where((pred == last[ids]).flatten(1).all(1), unchanged[ids] + 1, 0)
            last[ids] = pred
            active[ids[(r[on] < halting.tol) | (unchanged[ids] >= halting.patience)]] = False
            keep = active[rows]
            if int(keep.sum()) <= COMPACT_AT * len(rows):
                rows, h, x = rows[keep], h[keep], x[keep]
        state.live = int(active.sum())
        yield state
        if state.live == 0:
            return


@torch.no_grad()
def accuracy_curve(
    model: Looped, task: Task, batch: Batch, max_iters: int, chunk: int = 500, progress: bool = False,
    halting: Halting | None = None,
) -> tuple[dict[str, list[float]], list[float], torch.Tensor]:
    """The task's metrics (``exact`` first) and the mean relative residual after every iteration.

    Args: batch with inputs (N, L); max_iters T; halting: per-sample stopping (None: all run T steps).
    Returns ({metric: T values}, T residuals, (N,) iterations each sample used). A halted sample
    keeps its last prediction and residual. Examples are processed in chunks; only states are kept.
    """
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    resid = torch.zeros(max_iters, dtype=torch.float64)
    used = []
    n = len(batch)
    bar = tqdm(total=n * max_iters, disable=not progress, unit="it", unit_scale=True, leave=False)
    for start in range(0, n, chunk):
        part = batch.slice(start, start + chunk).to(device)
        for t, state in enumerate(iterate(model, task, part.inputs, part.positions, max_iters, halting)):
            values = {k: v.double().sum().cpu() for k, v in task.metrics(part.inputs, state.logits, part.targets).items()}
            r = state.residual.double().sum().cpu()
            for name, v in values.items():
                sums.setdefault(name, torch.zeros(max_iters, dtype=torch.float64))[t] += v
            resid[t] += r
            bar.update(len(part))
        for name, v in values.items():  # all halted early: every later iteration repeats the last values
            sums[name][t + 1 :] += v
        resid[t + 1 :] += r
        used.append(state.used.cpu())
        bar.update(len(part) * (max_iters - t - 1))
    bar.close()
    return {name: (s / n).tolist() for name, s in sums.items()}, (resid / n).tolist(), torch.cat(used)


def check_budget(n: int, length: int, iterations: int) -> None:
    cost = n * length * iterations
    if cost > MAX_ELEMENTS:
        raise LimitError(
            f"{n} examples x {length} tokens x {iterations} iterations = {cost:.3g} token-steps exceeds the "
            f"limit of {MAX_ELEMENTS:.3g}; lower --n or --max-iters, or set LOOPED_MAX_ELEMENTS"
        )


@dataclass
class Solution:
    """Readout for one batch of inputs. logits (B, L, C); iterations (B,) steps each used."""

    logits: torch.Tensor
    iterations: torch.Tensor


def solve_inputs(model: Looped, task: Task, tokens: torch.Tensor, positions: torch.Tensor | None,
                 max_iters: int, halting: Halting | None) -> Solution:
    """Iterate each input until it halts (or for ``max_iters``). Args: tokens (B, L)."""
    device = next(model.parameters()).device
    positions = None if positions is None else positions.to(device)
    for state in iterate(model, task, tokens.to(device), positions, max_iters, halting):
        pass
    return Solution(logits=state.logits.cpu(), iterations=state.used.cpu())


def evaluate(
    model: Looped, task: Task, splits: str | list[str] | None, max_iters: int, n: int = 1000, seed: int = 0,
    halting: Halting | None = None, progress: bool = False,
) -> list[Curve]:
    """Accuracy and mean relative residual after every iteration ``1..max_iters`` on each split.

    Args:
        model: a looped model (its device is used); task: the ``Task`` it was trained on.
        splits: split names, one name, or None for ``task.eval_splits``.
        max_iters: T, the iterations to run. n: examples per split (all of a split that holds fewer).
        seed: which evaluation set; never shared with training data.
        halting: per-example stopping; None runs every example T steps.
    Returns: one ``Curve`` per split, in order.
    """
    if n < 1:
        raise InputError(f"n (examples per split) must be positive, got {n}")
    if max_iters < 1:
        raise InputError(f"max_iters must be positive, got {max_iters}")
    names = task.eval_splits if splits is None else [splits] if isinstance(splits, str) else splits
    parsed = [task.split(s) for s in names]
    for split in parsed:
        check_budget(n, task.input_length(split), max_iters)
    curves = []
    for split in parsed:
        batch = task.generate(split, n, seed=EVAL_SEED_BASE + seed)
        metrics, res, used = accuracy_curve(model, task, batch, max_iters, progress=progress, halting=halting)
        acc = metrics.pop("exact")
        curves.append(Curve(split=split.name, n=len(batch), accuracy=acc, residual=res,
                            mean_iterations_used=used.double().mean().item(), extra=metrics))
    return curves


SOLVE_ITERS_PER_TOKEN, SOLVE_MIN_ITERS = 4, 64  # solve's default budget: max(64, 4 x input length)


@dataclass
class Answer:
    """One solved input: ``answer`` is ``Task.decode``'s line, ``lines`` ``Task.describe``'s."""

    input: str
    answer: str
    lines: list[str]
    iterations: int


def solve(model: Looped, task: Task, inputs: list[str], max_iters: int | None = None,
          halting: Halting | None = Halting()) -> list[Answer]:
    """Parse every input first (one bad input fails before any work), then solve each in turn.

    max_iters: per input; default ``max(64, 4 x its length)``. halting: None runs ``max_iters``.
    """
    encoded = []
    for i, text in enumerate(inputs, 1):
        try:
            encoded.append(task.parse(text))
        except InputError as e:
            raise InputError(f"line {i}: {e}" if len(inputs) > 1 else str(e)) from None
    answers = []
    for text, tokens in zip(inputs, encoded):
        length = tokens.shape[0]
        iters = max(SOLVE_MIN_ITERS, SOLVE_ITERS_PER_TOKEN * length) if max_iters is None else max_iters
        if iters < 1:
            raise InputError(f"max_iters must be positive, got {iters}")
        check_budget(1, length, iters)
        sol = solve_inputs(model, task, tokens[None], task.positions(length), iters, halting)
        logits = sol.logits[0]
        answers.append(Answer(text, task.decode(text, tokens, logits), task.describe(text, tokens, logits),
                              int(sol.iterations[0])))
    return answers


@dataclass
class Outcomes:
    """Per-example exact match on one batch, without halting, and where ``Halting`` would stop.

    accuracy: T floats (after iterations 1..T); correct: {t: (N,) bool} at the requested iterations;
    halted: (N,) bool correctness where each sample would halt; halted_at: (N,) its iteration.
    """

    accuracy: list[float]
    correct: dict[int, torch.Tensor]
    halted: torch.Tensor
    halted_at: torch.Tensor


@torch.no_grad()
def outcomes(model: Looped, task: Task, batch: Batch, max_iters: int, at: tuple[int, ...],
             halting: Halting | None = None, chunk: int = 500) -> Outcomes:
    """Run every sample of ``batch`` (inputs (N, L)) for ``max_iters`` steps and score it after each.

    ``halting`` (default ``Halting()``) is applied along the same trajectories after the fact, as
    ``iterate`` would: a sample halts at the first step whose residual is below ``tol`` or whose
    prediction has not changed for ``patience`` steps, and keeps that step's prediction.
    """
    halting = halting or Halting()
    if any(not 1 <= t <= max_iters for t in at):
        raise InputError(f"iterations {at} must lie in 1..{max_iters}")
    device = next(model.parameters()).device
    sums = torch.zeros(max_iters, dtype=torch.float64)
    kept: dict[int, list[torch.Tensor]] = {t: [] for t in at}
    halted, halted_at = [], []
    for start in range(0, len(batch), chunk):
        part = batch.slice(start, start + chunk).to(device)
        x = model.embed_input(part.inputs, part.positions)
        h = model.initial_state(x)
        last = task.predict(part.inputs, model.readout(h))
        unchanged = torch.zeros(len(part), dtype=torch.long, device=device)
        stop = torch.zeros(len(part), dtype=torch.long, device=device)  # 0: not halted yet
        ok_stop = torch.zeros(len(part), dtype=torch.bool, device=device)
        for t in range(1, max_iters + 1):
            h_next = model.step(h, x)
            r = relative_residual(h_next, h)
            h = h_next
            pred = task.predict(part.inputs, model.readout(h))
            ok = task.score(pred, part.targets)
            sums[t - 1] += ok.double().sum().cpu()
            if t in kept:
                kept[t].append(ok.cpu())
            unchanged = torch.where((pred == last).flatten(1).all(1), unchanged + 1, 0)
            last = pred
            now = (stop == 0) & ((r < halting.tol) | (unchanged >= halting.patience) | (t == max_iters))
            stop[now], ok_stop[now] = t, ok[now]
        halted.append(ok_stop.cpu())
        halted_at.append(stop.cpu())
    return Outcomes((sums / len(batch)).tolist(), {t: torch.cat(v) for t, v in kept.items()},
                    torch.cat(halted), torch.cat(halted_at))
