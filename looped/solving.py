"""Solving inputs: ``solve`` (the Python API) and ``looped solve`` (``solve_command``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import runs
from .config import pick_device
from .breadth import Breadth, iterate_breadth
from .evaluation import check_budget
from .halting import Halting, iterate
from .model import Looped
from .tasks import InputError, Task, task_class

SOLVE_ITERS_PER_TOKEN, SOLVE_MIN_ITERS = 4, 64  # solve's default budget: max(64, 4 x input length)


@dataclass
class Solution:
    """Readout for one batch of inputs. logits (B, L, C); iterations (B,) steps each used."""

    logits: torch.Tensor
    iterations: torch.Tensor


def solve_inputs(model: Looped, task: Task, tokens: torch.Tensor, positions: torch.Tensor | None,
                 max_iters: int, halting: Halting | None, breadth: Breadth | None = None) -> Solution:
    """Iterate each input until it halts (or for ``max_iters``); with ``breadth``, several trajectories per
    input and the chosen one's readout (``iterations`` then sums their steps). Args: tokens (B, L)."""
    device = next(model.parameters()).device
    positions = None if positions is None else positions.to(device)
    tokens = tokens.to(device)
    loop = iterate(model, task, tokens, positions, max_iters, halting) if breadth is None else \
        iterate_breadth(model, task, tokens, positions, max_iters, halting, breadth)
    for state in loop:
        pass
    return Solution(logits=state.logits.cpu(), iterations=state.used.cpu())


@dataclass
class Answer:
    """One solved input: ``answer`` is ``Task.decode``'s line, ``lines`` ``Task.describe``'s."""

    input: str
    answer: str
    lines: list[str]
    iterations: int


BATCH = 256  # inputs of one length solved together


def solve(model: Looped, task: Task, inputs: list[str], max_iters: int | None = None,
          halting: Halting | None = Halting(), batch_size: int = BATCH, progress: bool = False,
          breadth: int | Breadth = 1, select: str = "verify") -> list[Answer]:
    """Parse every input first (one bad input fails before any work), then solve them in batches of equal
    length, each input leaving its batch once it halts.

    max_iters: per input (per trajectory); default ``max(64, 4 x its length)``. halting: None runs ``max_iters``.
    batch_size: inputs solved together. progress: a bar over the inputs. breadth, select: trajectories per
    input and how one answer is chosen (``looped.breadth``; a ``Breadth`` sets every option).
    Returns answers in input order; ``iterations`` counts the model steps of all of an input's trajectories.
    """
    breadth = breadth if isinstance(breadth, Breadth) else Breadth(k=breadth, select=select)
    encoded = []
    for i, text in enumerate(inputs, 1):
        try:
            encoded.append(task.parse(text))
        except InputError as e:
            raise InputError(f"line {i}: {e}" if len(inputs) > 1 else str(e)) from None
    if max_iters is not None and max_iters < 1:
        raise InputError(f"max_iters must be positive, got {max_iters}", cli=f"--max-iters must be positive, got {max_iters}")
    by_length: dict[int, list[int]] = {}
    for i, tokens in enumerate(encoded):
        by_length.setdefault(tokens.shape[0], []).append(i)
    answers: list[Answer | None] = [None] * len(inputs)
    with tqdm(total=len(inputs), disable=not progress, unit=" inputs", desc="solve") as bar:
        for length, members in by_length.items():
            iters = max(SOLVE_MIN_ITERS, SOLVE_ITERS_PER_TOKEN * length) if max_iters is None else max_iters
            check_budget(breadth.k, length, iters)
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                sol = solve_inputs(model, task, torch.stack([encoded[i] for i in chunk]), task.positions(length), iters,
                                   halting, None if breadth.k == 1 else breadth)
                for j, i in enumerate(chunk):
                    logits = sol.logits[j]
                    answers[i] = Answer(inputs[i], task.decode(inputs[i], encoded[i], logits),
                                        task.describe(inputs[i], encoded[i], logits), int(sol.iterations[j]))
                bar.update(len(chunk))
    return answers


def solve_command(
    task_spec: str, lines: list[str], model_dir: Path | None, max_iters: int | None, halting: Halting | None,
    device: str, verbose: bool, breadth: Breadth = Breadth(),
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
    for a in solve(model, task, lines, max_iters, halting, progress=len(lines) > 1, breadth=breadth):
        out.extend(a.lines + [f"# iterations: {a.iterations}"] if verbose else [a.answer])
    return out
