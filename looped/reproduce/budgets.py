"""How big a reproduction is: ``smoke`` (minutes; CI), ``cpu`` (about 6 hours on 2 cores), ``gpu``.

A budget fixes, per task, the training recipe, the easy and hard splits, the evaluation depth and
sizes, and the seeds. Every budget runs the same grid: recall x outer norm x seeds x tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

RECALLS = ("none", "input", "internal")
NORMS = ("none", "layernorm")


@dataclass(frozen=True)
class TaskPlan:
    """One task's share of a budget.

    easy / hard: evaluation splits (``easy[0]`` is also the split the stability analysis uses).
    steps, batch_size, train_iters, alpha, lr, augment: the training recipe.
    max_iters: evaluation depth; n_eval examples per split; n_analyze examples analyzed.
    d_model, n_heads: model width (None: the task's default).
    """

    task: str
    easy: tuple[str, ...]
    hard: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int
    batch_size: int
    train_iters: int
    max_iters: int
    n_eval: int
    n_analyze: int
    alpha: float = 1.0
    lr: float = 2e-3
    augment: bool = False
    d_model: int | None = None
    n_heads: int | None = None


@dataclass(frozen=True)
class Budget:
    """A named set of task plans. ``analyze_max_iter`` bounds the fixed-point solver; states larger than
    ``dense_limit`` entries get an estimated rather than an exact ``cond(I - J_h)``."""

    name: str
    plans: tuple[TaskPlan, ...]
    analyze_max_iter: int
    dense_limit: int
    compile: bool


# One seed, and it is not the development seed, so every run counts as held out for C5.
SMOKE = Budget("smoke", analyze_max_iter=30, dense_limit=0, compile=False, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("64",), seeds=(1,), steps=30, batch_size=32, train_iters=6,
             max_iters=24, n_eval=32, n_analyze=2, d_model=8, n_heads=2),
    TaskPlan("sudoku", easy=("easy",), hard=("hard",), seeds=(1,), steps=4, batch_size=8, train_iters=3,
             max_iters=6, n_eval=8, n_analyze=2, d_model=8, n_heads=2),
    TaskPlan("chess", easy=("mate1",), hard=("mate3",), seeds=(1,), steps=4, batch_size=8, train_iters=3,
             max_iters=6, n_eval=16, n_analyze=2, d_model=8, n_heads=2),
))

CPU = Budget("cpu", analyze_max_iter=300, dense_limit=2048, compile=True, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("128", "512"), seeds=(0, 1, 2), steps=2000, batch_size=128,
             train_iters=16, max_iters=300, n_eval=200, n_analyze=12),
    TaskPlan("sudoku", easy=("easy", "medium"), hard=("hard", "hardest"), seeds=(0, 1), steps=1200,
             batch_size=64, train_iters=20, max_iters=100, n_eval=200, n_analyze=6, augment=True),
    TaskPlan("chess", easy=("mate1", "mate2"), hard=("mate3", "mate4", "mate5"), seeds=(0, 1), steps=3000,
             batch_size=64, train_iters=8, max_iters=40, n_eval=300, n_analyze=6),
))

GPU = Budget("gpu", analyze_max_iter=1000, dense_limit=4096, compile=True, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("512", "1024"), seeds=(0, 1, 2, 3), steps=20000, batch_size=256,
             train_iters=30, max_iters=1200, n_eval=1000, n_analyze=32, d_model=64),
    TaskPlan("sudoku", easy=("easy", "medium"), hard=("hard", "harder", "hardest", "search"), seeds=(0, 1, 2),
             steps=30000, batch_size=256, train_iters=30, max_iters=300, n_eval=1000, n_analyze=16, augment=True,
             d_model=128, n_heads=8),
    TaskPlan("chess", easy=("mate1", "mate2"), hard=("mate3", "mate4", "mate5"), seeds=(0, 1, 2), steps=30000,
             batch_size=256, train_iters=20, max_iters=100, n_eval=2000, n_analyze=16, d_model=128,
             n_heads=8),
))

BUDGETS = {b.name: b for b in (SMOKE, CPU, GPU)}
