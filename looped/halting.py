"""The loop of evaluation and solving: a model iterated on a batch of inputs, each input stopping once it
halts (adaptive test-time compute), with the halted inputs leaving the batch; or every input run to the cap
with the halting rule replayed beside it, so that one pass gives both."""

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
    latest values, frozen once it halts; used (B,) the iterations each used so far. replayed: with
    ``iterate(replay=...)``, the state the same loop would have with that halting rule."""

    logits: torch.Tensor
    residual: torch.Tensor
    used: torch.Tensor
    live: int  # samples still iterating
    replayed: "LoopState | None" = None


class Halter:
    """The halting rule's per-sample state: the last prediction (at first, the one at ``h_0``) and how many
    steps in a row it has not changed."""

    def __init__(self, halting: Halting, start: torch.Tensor):
        self.halting, self.last = halting, start.clone()
        self.unchanged = torch.zeros(start.shape[0], dtype=torch.long, device=start.device)

    def done(self, ids: torch.Tensor, pred: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """(b,) bool: which samples ``ids`` halt at this step, given their predictions and residuals."""
        same = (pred == self.last[ids]).flatten(1).all(1)
        self.unchanged[ids] = torch.where(same, self.unchanged[ids] + 1, 0)
        self.last[ids] = pred
        return (residual < self.halting.tol) | (self.unchanged[ids] >= self.halting.patience)


class Replay:
    """A halting rule replayed on a loop that runs every sample to the cap: ``step`` returns the ``LoopState``
    that loop would have with the rule on. Start: the logits (B, L, C) at ``h_0`` and their predictions."""

    def __init__(self, halting: Halting, logits: torch.Tensor, prediction: torch.Tensor):
        B, dev = logits.shape[0], logits.device
        self.halter = Halter(halting, prediction)
        used = torch.zeros(B, dtype=torch.long, device=dev)
        self.state = LoopState(logits.clone(), torch.zeros(B, device=dev), used, B)
        self.on = torch.ones(B, dtype=torch.bool, device=dev)

    def step(self, task: Task, tokens: torch.Tensor, logits: torch.Tensor, residual: torch.Tensor) -> LoopState:
        """Take one step of every sample (logits (B, L, C), residual (B,)) into the samples not yet halted."""
        ids, state = self.on.nonzero().squeeze(1), self.state
        state.logits[ids], state.residual[ids] = logits[ids], residual[ids].to(state.residual.dtype)
        state.used[ids] += 1
        done = self.halter.done(ids, task.predict(tokens[ids], logits[ids]), residual[ids])
        self.on[ids[done]] = False
        state.live = int(self.on.sum())
        return state


@torch.no_grad()
def iterate(model: Looped, task: Task, tokens: torch.Tensor, positions: torch.Tensor | None,
            max_iters: int, halting: Halting | None = None, state: torch.Tensor | None = None,
            stop: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
            replay: Halting | None = None) -> Iterator[LoopState]:
    """Run the loop on ``tokens`` (B, L) for up to ``max_iters`` steps, yielding a ``LoopState`` after each.

    state: the initial state (default the model's ``h_0``). stop: a further stopping rule,
    ``stop(ids, prediction) -> (b,) bool`` for the live samples ``ids`` and their current predictions.
    replay: run every sample to ``max_iters`` and keep, in ``LoopState.replayed``, what ``halting=replay``
    would give (the same decisions, from the same steps of the same samples); not with ``halting`` or ``stop``.
    """
    if replay is not None and (halting is not None or stop is not None):
        raise ValueError("replay runs every sample to the cap: it takes neither halting nor stop")
    x = model.embed_input(tokens, positions)
    h = model.initial_state(x) if state is None else state
    B, dev = tokens.shape[0], tokens.device
    loop = LoopState(model.readout(h), torch.zeros(B, device=dev), torch.zeros(B, dtype=torch.long, device=dev), B)
    halter = None if halting is None else Halter(halting, task.predict(tokens, loop.logits))
    replayed = None if replay is None else Replay(replay, loop.logits, task.predict(tokens, loop.logits))
    for step in iteration.iterate(model.step, h, x, max_iters):
        ids, r = step.rows[step.live], step.residual[step.live]
        logits = model.readout(step.h[step.live])
        loop.logits[ids], loop.residual[ids] = logits, r.to(loop.residual.dtype)
        loop.used[ids] += 1
        if halting is not None or stop is not None:
            pred = task.predict(tokens[ids], logits)
            done = torch.zeros(len(ids), dtype=torch.bool, device=dev) if stop is None else stop(ids, pred)
            if halter is not None:
                done |= halter.done(ids, pred, r)
            step.done = step.live.clone()
            step.done[step.live] = done
        if replayed is not None:  # every sample is live, in order
            loop.replayed = replayed.step(task, tokens, logits, r)
        loop.live -= 0 if step.done is None else int(step.done.sum())
        yield loop
