"""Test-time compute: accuracy and fixed-point residual at every iteration, and solving inputs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .model import LoopedTransformer, relative_residual
from .tasks import Batch, Task

EVAL_SEED_BASE = 10**12  # evaluation data never shares a seed with training batches
MAX_ELEMENTS = int(os.environ.get("LOOPED_MAX_ELEMENTS", 2_000_000_000))  # examples x length x iterations per call


class LimitError(ValueError):
    """A request would take more memory or time than the configured limit."""


@dataclass
class Curve:
    """Accuracy and mean relative residual after each iteration ``1..T`` on one split.

    ``extra`` holds the task's other metrics (``Task.metrics``) per iteration, by name.
    """

    split: str
    n: int
    accuracy: list[float]
    residual: list[float]
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
            **{f"{name}_by_iteration": {str(t + 1): v for t, v in enumerate(vals)} for name, vals in self.extra.items()},
            **{f"best_{name}": vals[best - 1] for name, vals in self.extra.items()},
        }


@torch.no_grad()
def accuracy_curve(
    model: LoopedTransformer, task: Task, batch: Batch, max_iters: int, chunk: int = 500, progress: bool = False
) -> tuple[dict[str, list[float]], list[float]]:
    """The task's metrics (``exact`` first) and the mean relative residual after every iteration.

    Args: batch with inputs (N, L); max_iters T. Returns ({metric: T values}, T residuals).
    Examples are processed in chunks, and only the current state is kept.
    """
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    resid = torch.zeros(max_iters, dtype=torch.float64)
    n = len(batch)
    bar = tqdm(total=n * max_iters, disable=not progress, unit="it", unit_scale=True, leave=False)
    for start in range(0, n, chunk):
        part = batch.slice(start, start + chunk).to(device)
        x_emb = model.embed_input(part.inputs, part.positions)
        h = model.initial_state(x_emb)
        for t in range(max_iters):
            h_next = model.step(h, x_emb)
            resid[t] += relative_residual(h_next, h).double().sum().cpu()
            h = h_next
            for name, values in task.metrics(part.inputs, model.readout(h), part.targets).items():
                sums.setdefault(name, torch.zeros(max_iters, dtype=torch.float64))[t] += values.double().sum().cpu()
        bar.update(len(part) * max_iters)
    bar.close()
    return {name: (s / n).tolist() for name, s in sums.items()}, (resid / n).tolist()


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


@torch.no_grad()
def solve_inputs(
    model: LoopedTransformer, tokens: torch.Tensor, positions: torch.Tensor | None, max_iters: int, tol: float
) -> Solution:
    """Iterate each input until its relative residual falls below ``tol`` (or ``max_iters``).

    Args: tokens (B, L). Returns a ``Solution``; each row keeps the prediction of the step it stopped at.
    """
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    x_emb = model.embed_input(tokens, None if positions is None else positions.to(device))
    h = model.initial_state(x_emb)
    B = tokens.shape[0]
    used = torch.full((B,), max_iters, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    logits = model.readout(h)
    for t in range(1, max_iters + 1):
        h_next = model.step(h, x_emb)
        r = relative_residual(h_next, h).cpu()
        h = h_next
        live = ~done
        logits[live.to(device)] = model.readout(h[live.to(device)])
        newly = live & (r < tol)
        used[newly] = t
        done |= newly
        if done.all():
            break
    return Solution(logits=logits.cpu(), iterations=used)
