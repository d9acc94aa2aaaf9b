"""The sudoku task (``task.py``) and its numba solver, generator and difficulty measure (``logic.py``)."""

from .task import Sudoku

__all__ = ["Sudoku"]
