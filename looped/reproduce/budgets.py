"""How big a reproduction is: ``smoke`` (minutes; CI), ``cpu-dev`` and ``cpu`` (a 2-core CPU), ``gpu``.

Every budget runs the paper's block (``--arch paper``) on the same grid under the same rules
(``claims.py``, rules v3): per task and seed, recall {none, external, internal} x norm {pre, peri,
post} (and GRU + peri where a plan sets ``gru``), plus the 15-block fixed-depth baseline (no recall,
post norm, one pass, trained and evaluated at depth 1). A plan fixes, per task, the training recipe,
the easy and hard splits, the evaluation cap ``T_max`` (``max_iters``) and sizes, and the seeds.

* ``cpu-dev`` is the development phase on seeds 0-2: it trains every variant at each of the paper's
  learning rates for the task (``lrs``: 1e-4, 3e-4 and 1e-3, and for sudoku also 3e-3) and records the
  easy accuracy along training (``checkpoints``), to choose the learning rate per task (the best mean easy
  validation accuracy over all variants) and the steps. Its jobs are evaluated on the easy splits only and
  not analyzed; ``looped reproduce`` writes their choices (``development.py``), not verdicts.
* ``cpu`` is the held-out run on seeds 10-12, never run before, at the ``paper-cpu`` sizes (width 64,
  8 heads, batch 64, training depth 30), with the development phase's choices of each task's learning
  rate and steps (``FROZEN``), frozen in this file before the held-out run.
* ``gpu``: the same rules at the paper's sizes (width 256, batch 500, depth 30) for a machine with one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

NORMS = ("pre", "peri", "post")
RECALLS = ("none", "external", "internal")


@dataclass(frozen=True)
class TaskPlan:
    """One task's share of a budget.

    easy / hard: evaluation splits (``easy[0]`` is also the split the stability analysis uses).
    steps, batch_size, train_iters, lrs, width, heads: the recipe (the paper's, scaled); ``lrs`` holds one
    learning rate, or the candidates a development budget compares.
    max_iters: evaluation cap T_max; n_eval examples per split; n_analyze examples analyzed.
    checkpoints: training steps at which a development run records its easy accuracy (empty: none).
    gru: also run GRU residual + peri norm for every recall. internal_wins: C4 needs internal > external here.
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
    lrs: tuple[float, ...] = (1e-3,)
    width: int = 64
    heads: int = 8
    checkpoints: tuple[int, ...] = ()
    gru: bool = False
    internal_wins: bool = False


@dataclass(frozen=True)
class Budget:
    """A named set of task plans. ``analyze_max_iter`` bounds the attractor search; states larger than
    ``dense_limit`` entries get an estimated rather than an exact ``cond(I - J)``. A ``development`` budget
    chooses the held-out run's recipe (``looped reproduce`` writes its choices, not verdicts)."""

    name: str
    plans: tuple[TaskPlan, ...]
    analyze_max_iter: int
    dense_limit: int
    compile: bool
    development: bool = False

    @property
    def internal_wins(self) -> frozenset[str]:
        return frozenset(p.task for p in self.plans if p.internal_wins)


GRID_LRS = (1e-4, 3e-4, 1e-3)  # the paper's learning rates (run_all.bash)
SUDOKU_LRS = GRID_LRS + (3e-3,)  # sudoku's also include 3e-3 (run_sudoku_high_lr.bash)
DEV_SEEDS, HELD_OUT = (0, 1, 2), (10, 11, 12)

SMOKE = Budget("smoke", analyze_max_iter=30, dense_limit=0, compile=False, plans=(
    TaskPlan("prefix-sums", easy=("16",), hard=("32",), seeds=(10,), steps=8, batch_size=16, train_iters=4,
             max_iters=8, n_eval=16, n_analyze=2, width=32),
    TaskPlan("sudoku", easy=("easy",), hard=("hard",), seeds=(10,), steps=3, batch_size=4, train_iters=2,
             max_iters=4, n_eval=4, n_analyze=2, width=32, internal_wins=True),
    TaskPlan("chess", easy=("mate1",), hard=("mate3",), seeds=(10,), steps=3, batch_size=4, train_iters=2,
             max_iters=4, n_eval=8, n_analyze=2, width=32),
))

CPU_DEV = Budget("cpu-dev", analyze_max_iter=300, dense_limit=2048, compile=True, development=True, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("128", "256"), seeds=DEV_SEEDS, steps=2000, batch_size=64,
             train_iters=30, max_iters=300, n_eval=1000, n_analyze=64, lrs=GRID_LRS, checkpoints=(500, 1000, 2000)),
    TaskPlan("sudoku", easy=("easy",), hard=("hard", "hardest"), seeds=DEV_SEEDS, steps=3000, batch_size=64,
             train_iters=30, max_iters=120, n_eval=1000, n_analyze=64, lrs=SUDOKU_LRS,
             checkpoints=(1000, 2000, 3000), internal_wins=True),
    TaskPlan("chess", easy=("mate1",), hard=("mate3", "mate4"), seeds=DEV_SEEDS, steps=3000, batch_size=64,
             train_iters=30, max_iters=120, n_eval=1000, n_analyze=64, lrs=GRID_LRS, checkpoints=(1000, 2000, 3000)),
))

# Held out: the development phase's choices, frozen here before the first held-out run. Learning rate: the
# cpu-dev report's choice on seed 0 (lab/reproduction/v3/grid/DEVELOPMENT.md). Steps: the sizing rule of
# docs/reproduce.md (held_out_cost.py --size), which keeps the learned prefix sums at their development steps.
FROZEN = {"prefix-sums": (3e-4, 2000), "sudoku": (1e-3, 1400), "chess": (1e-3, 2200)}  # task: (lr, steps)
CPU = Budget("cpu", analyze_max_iter=300, dense_limit=2048, compile=True, plans=tuple(
    replace(p, seeds=HELD_OUT, lrs=(FROZEN[p.task][0],), steps=FROZEN[p.task][1], checkpoints=())
    for p in CPU_DEV.plans))

GPU = Budget("gpu", analyze_max_iter=1000, dense_limit=4096, compile=True, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("512",), seeds=HELD_OUT, steps=1280, batch_size=500, train_iters=30,
             max_iters=500, n_eval=1000, n_analyze=64, width=256, gru=True),
    TaskPlan("sudoku", easy=("easy", "medium"), hard=("hard", "harder", "hardest", "search"), seeds=HELD_OUT,
             steps=10000, batch_size=500, train_iters=30, max_iters=300, n_eval=1000, n_analyze=64, width=256, gru=True,
             internal_wins=True),
    TaskPlan("chess", easy=("mate1", "mate2"), hard=("mate3", "mate4", "mate5"), seeds=HELD_OUT, steps=8000,
             batch_size=500, train_iters=30, max_iters=300, n_eval=1000, n_analyze=64, width=256, gru=True),
))

BUDGETS = {b.name: b for b in (SMOKE, CPU_DEV, CPU, GPU)}
