"""Task registry. Adding a task: one file implementing ``Task`` plus one line here."""

from __future__ import annotations

from .base import IGNORE_INDEX, Batch, InputError, Split, Task
from .chess_puzzles import Chess
from .prefix_sums import PrefixSums
from .sudoku import Sudoku

TASKS: dict[str, type[Task]] = {
    PrefixSums.name: PrefixSums,
    Sudoku.name: Sudoku,
    Chess.name: Chess,
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]()
    except KeyError:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None


__all__ = ["Batch", "IGNORE_INDEX", "InputError", "Split", "Task", "TASKS", "get_task"]
