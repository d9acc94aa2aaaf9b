"""The loop of evaluation and solving: a model iterated on a batch of inputs, each input stopping once it
halts (adaptive test-time compute), with the halted inputs leaving the batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from . import iteration
from .model import Looped
from .tasks import InputError, Task


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
            max_iters: int, halting: Halting | None = None, state: torch.Tensor | None = None,
            stop: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> Iterator[LoopState]:
    """Run the loop on ``tokens`` (B, L) for up to ``max_iters`` steps, yielding a ``LoopState`` after each.

    state: the initial state (default the model's ``h_0``). stop: a further stopping rule,
    ``stop(ids, prediction) -> (b,) bool`` for the live samples ``ids`` and their current predictions.
    """
    x = model.embed_input(tokens, positions)
    h = model.initial_state(x) if state is None else state
    B, dev = tokens.shape[0], tokens.device
    loop = LoopState(model.readout(h), torch.zeros(B, device=dev), torch.zeros(B, dtype=torch.long, device=dev), B)
    last = task.predict(tokens, loop.logits)
    unchanged = torch.zeros(B, dtype=torch.long, device=dev)
    for step in iteration.iterate(model.step, h, x, max_iters):
        ids, r = step.rows[step.live], step.residual[step.live]
        logits = model.readout(step.h[step.live])
        loop.logits[ids], loop.residual[ids] = logits, r.to(loop.residual.dtype)
        loop.used[ids] += 1
        if halting is not None or stop is not None:
            pred = task.predict(tokens[ids], logits)
            done = torch.zeros(len(ids), dtype=torch.bool, device=dev) if stop is None else stop(ids, pred)
            if halting is not None:
                unchanged[ids] = torch.where((pred == last[ids]).flatten(1).all(1), unchanged[ids] + 1, 0)
                last[ids] = pred
                done |= (r < halting.tol) | (unchanged[ids] >= halting.patience)
            step.done = step.live.clone()
            step.done[step.live] = done
        loop.live -= 0 if step.done is None else int(step.done.sum())
        yield loop
