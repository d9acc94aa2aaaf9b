"""Solving inputs: ``solve`` (the Python API) and ``looped solve`` (``solve_command``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import runs
from .config import pick_device
from .evaluation import Halting, check_budget, iterate
from .model import Looped
from .tasks import InputError, Task, task_class

SOLVE_ITERS_PER_TOKEN, SOLVE_MIN_ITERS = 4, 64  # solve's default budget: max(64, 4 x input length)


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
    model, task, _ = runs.Run(model_dir).load(pick_device(device))
    name = task_spec if task_spec == task.name else task_class(task_spec).name
    if task.name != name:
        raise runs.RunError(f"{model_dir} holds a {task.name} model, not {name}")
    out = []
    for a in solve(model, task, lines, max_iters, halting):
        out.extend(a.lines + [f"# iterations: {a.iterations}"] if verbose else [a.answer])
    return out
