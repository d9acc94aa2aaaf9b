"""Test-time compute in breadth: several trajectories per input, run as one batch, and one answer chosen.

A looped model spends test-time compute in depth (more iterations). ``Breadth`` adds trajectories:

* ``vary="views"``: each trajectory solves the input under one of the task's validity-preserving
  symmetries (``Task.view``; sudoku: digit relabelling, band/stack and row/column permutations,
  transpose), and its logits are mapped back to the input's frame;
* ``vary="restarts"``: each trajectory starts from the model's ``h_0`` plus Gaussian noise of
  ``noise`` times its scale (trajectory 0 has none);
* ``select="verify"``: the answer of a trajectory the task's checker accepts (``Task.verify``; a sudoku
  that is valid and keeps the givens), and an input stops as soon as one of its trajectories is
  accepted; where none is, or the task has no checker, a vote;
* ``select="vote"``: the answer most trajectories give (weighted equally, by confidence, the mean
  largest class probability, or by residual, ``-log10`` of the final relative residual), ties to the
  earliest trajectory.

All ``k x N`` trajectories run as one batch through ``evaluation.iterate``, each leaving it when it
halts. Compute is counted as model steps per input: the sum of the iterations of its trajectories
(depth x breadth), so that a breadth-k result can be set beside a depth-only one at equal steps.
With ``k = 1`` the answers are exactly those without breadth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .halting import Halting, LoopState, iterate
from .model import Looped
from .tasks import InputError, Task

VARY = ("views", "restarts")
SELECT = ("verify", "vote")
WEIGHTS = ("equal", "confidence", "residual")


@dataclass(frozen=True)
class Breadth:
    """k trajectories per input, how they differ (``vary``), and how one answer is chosen (``select``,
    ``weight`` for votes); ``noise`` scales the restarts' noise, ``seed`` draws views and noise."""

    k: int = 1
    vary: str = "views"
    select: str = "verify"
    weight: str = "equal"
    noise: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InputError(f"breadth must be a positive integer, got {self.k}", cli=f"--breadth must be positive, got {self.k}")
        for name, allowed in (("vary", VARY), ("select", SELECT), ("weight", WEIGHTS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not self.noise >= 0:
            raise InputError(f"noise must not be negative, got {self.noise}")

    def describe(self) -> dict:
        return {"k": self.k, "vary": self.vary, "select": self.select, "weight": self.weight, "noise": self.noise,
                "seed": self.seed}


def trajectories(model: Looped, task: Task, tokens: torch.Tensor, positions: torch.Tensor | None,
                 breadth: Breadth) -> tuple[torch.Tensor, torch.Tensor, list]:
    """The inputs of all trajectories (k N, L), trajectory-major, their initial states, and each view's map of
    logits back to the inputs' frame."""
    inputs, backs = [], []
    for j in range(breadth.k):
        got = task.view(tokens, j, breadth.seed) if breadth.vary == "views" else (tokens, None)
        if got is None:
            raise InputError(f"task {task.name} has no view {j}; use vary='restarts'",
                             cli=f"task {task.name} has fewer views than --breadth {breadth.k}; use --vary restarts")
        inputs.append(got[0])
        backs.append(got[1])
    inputs = torch.cat(inputs)
    with torch.no_grad():
        h0 = model.initial_state(model.embed_input(inputs, positions))
    if breadth.vary == "restarts" and breadth.k > 1 and breadth.noise > 0:
        g = torch.Generator().manual_seed(breadth.seed)
        noise = torch.randn(h0.shape, generator=g, dtype=h0.dtype).to(h0.device)
        scale = h0.flatten(1).norm(dim=1).view(-1, *[1] * (h0.dim() - 1)) / h0[0].numel() ** 0.5
        noise[: len(tokens)] = 0  # trajectory 0 starts where the model does
        h0 = h0 + breadth.noise * scale * noise
    return inputs, h0, backs


def choose(task: Task, tokens: torch.Tensor, logits: torch.Tensor, residual: torch.Tensor, verified: torch.Tensor,
           breadth: Breadth) -> torch.Tensor:
    """(N,) the trajectory chosen for each input. Args: logits (k, N, L, C) in the inputs' frame; residual,
    verified (k, N)."""
    k, N = logits.shape[:2]
    if breadth.select == "verify":
        first = verified.float().argmax(0)  # the earliest accepted trajectory
        found = verified.any(0)
    pred = task.predict(tokens.repeat(k, 1), logits.flatten(0, 1)).view(k, N, -1)
    same = (pred[:, None] == pred[None]).all(-1)  # (k, k, N): trajectories a and b give the same answer
    if breadth.weight == "confidence":
        w = logits.float().softmax(-1).amax(-1).mean(-1)
    elif breadth.weight == "residual":
        w = -residual.double().clamp_min(1e-12).log10()
    else:
        w = torch.ones(k, N)
    score = (same.float() * w.float()[None]).sum(1)  # (k, N): the weight behind each trajectory's answer
    best = score.argmax(0)  # ties go to the earliest trajectory
    return torch.where(found, first, best) if breadth.select == "verify" else best


@torch.no_grad()
def iterate_breadth(model: Looped, task: Task, tokens: torch.Tensor, positions: torch.Tensor | None,
                    max_iters: int, halting: Halting | None, breadth: Breadth) -> Iterator[LoopState]:
    """As ``evaluation.iterate``, with ``breadth.k`` trajectories per input: after each step, the chosen
    trajectory's logits (N, L, C) and residual, the steps used per input summed over its trajectories, and
    the trajectories still live."""
    N = tokens.shape[0]
    inputs, h0, backs = trajectories(model, task, tokens, positions, breadth)
    verifying = breadth.select == "verify" and breadth.k > 1 and task.verify(tokens[:1], task.predict(
        tokens[:1], model.readout(h0[:1]))) is not None
    solved = torch.zeros(N, dtype=torch.bool, device=tokens.device)

    def stop(ids: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        inputs_of = ids % N
        back = back_predictions(task, tokens, inputs_of, ids // N, pred, backs) if breadth.vary == "views" else pred
        ok = task.verify(tokens[inputs_of], back)
        solved[inputs_of[ok]] = True
        return solved[inputs_of]

    for state in iterate(model, task, inputs, positions, max_iters, halting, state=h0, stop=stop if verifying else None):
        logits = torch.stack([back(state.logits[j * N : (j + 1) * N]) if back else state.logits[j * N : (j + 1) * N]
                              for j, back in enumerate(backs)])
        residual = state.residual.view(breadth.k, N)
        verified = torch.stack([task.verify(tokens, task.predict(tokens, lg)) if verifying else
                                torch.zeros(N, dtype=torch.bool, device=tokens.device) for lg in logits])
        pick = choose(task, tokens, logits, residual, verified, breadth)
        rows = torch.arange(N, device=tokens.device)
        yield LoopState(logits[pick, rows], residual[pick, rows], state.used.view(breadth.k, N).sum(0), state.live)


def back_predictions(task, tokens, inputs_of, view_of, pred, backs) -> torch.Tensor:
    """Predictions of view trajectories in their inputs' frame (through the logits map of each view)."""
    out = pred.clone()
    C = task.num_classes
    for j, back in enumerate(backs):
        sel = view_of == j
        if back is None or not bool(sel.any()) or j == 0:
            continue
        onehot = torch.nn.functional.one_hot(pred[sel].clamp(0, C - 1), C).float()
        full = torch.zeros(len(tokens), *onehot.shape[1:], device=onehot.device)
        full[inputs_of[sel]] = onehot
        out[sel] = task.predict(tokens[inputs_of[sel]], back(full)[inputs_of[sel]])
    return out
