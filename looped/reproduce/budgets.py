"""How big a reproduction is: ``smoke`` (minutes; CI), ``cpu`` (about 10.5 hours on 2 cores), ``gpu``.

A budget fixes, per task, the training recipe, the easy and hard splits, the evaluation depth
``T_max`` (``max_iters``) and sizes, and the seeds. Every budget runs the same grid (recall x outer
norm x seeds x tasks, plus a fixed-depth baseline per task and seed) under the same rules
(``claims.py``). Seeds 0-2 were the development run, so ``cpu`` and ``gpu`` use fresh seeds 3-5
and every run counts as held out; smoke uses seed 3 for the same reason.

**cpu**, sized for rules v2: at least 3 seeds, 1,000 examples per split and two hard splits per
task, so a paired difference of two accuracies has a 95% half-width of at most
``1.96 * sqrt(1 / 2000) = 0.044``; sudoku trains 3,000 steps as the 3,000-step study
(lab/sudoku/). Cost measured with short timing runs, one thread per run as
``--workers 2`` gives (a machine shared with other jobs, so approximate), per training step with
the progressive loss / with the baseline's last-iteration loss, and per example-iteration of
evaluation:

=============  ==============  =================  ==========================  ====================
task           step (s)        baseline step (s)  eval (s / example-iter)     one run / baseline
=============  ==============  =================  ==========================  ====================
prefix-sums    0.367           0.380              1.84e-3 at length 512       1050 s / 800 s
sudoku         0.515           1.339              6.4e-4                      1890 s / 4070 s
chess          0.713           1.239              1.33e-3                     420 s / 420 s
=============  ==============  =================  ==========================  ====================

(each run also pays a torch.compile warm-up of 50-135 s, a stability analysis of 20-80 s, and a
second evaluation with adaptive halting, reported only: on prefix sums at 32-256 bits and T = 160,
7% of the first for an untrained model and 58% for the shipped one, as halted examples leave the batch).
Over 3 seeds x 7 runs: prefix sums 5.9, sudoku 12.8, chess 2.5 core-hours, about 10.5 hours on
two workers. Chess is cut to 300 steps to stay within that; at 3,000 steps it was not learned
(best easy accuracy 0.34), so it is expected to come out as not learned.

The chess plans attend along ranks, files and diagonals only (``LINES_ONLY``, no whole-board group),
with the squares loss that the reproduction's exact top-2 score needs. The chess recipe search
found both (lab/chess/validation.md, "What looped reproduce can use"): the legal-move loss
leaves exact top-2 near zero, and lines-only attention beats the task's default groups on exact
top-2 at iteration 32 on held-out mate in 1 / in 2, by +0.147 / +0.030 at the cpu plan's 300 steps
and +0.090 / +0.086 at 2,500 (``lab/chess/repro_groups.sh``), at the same cost per step. Width,
depth, steps and loss stay the plans' own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tasks.chess.board import LINES_ONLY

NORMS = ("none", "layernorm")  # the outer norms the grid compares (rmsnorm is left out)


@dataclass(frozen=True)
class TaskPlan:
    """One task's share of a budget.

    easy / hard: evaluation splits (``easy[0]`` is also the split the stability analysis uses).
    steps, batch_size, train_iters, alpha, lr, augment: the training recipe.
    max_iters: evaluation depth; n_eval examples per split; n_analyze examples analyzed.
    model: ``LoopedConfig`` fields that replace the task's defaults, as (name, value) pairs
    (width, heads, attention groups).
    internal_wins: C4 requires internal recall to beat input recall on this task (the paper reports it
    on sudoku); elsewhere internal recall need only not be clearly worse.
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
    model: tuple[tuple[str, object], ...] = ()
    internal_wins: bool = False


@dataclass(frozen=True)
class Budget:
    """A named set of task plans. ``analyze_max_iter`` bounds the fixed-point solver; states larger than
    ``dense_limit`` entries get an estimated rather than an exact ``cond(I - J_h)``."""

    name: str
    plans: tuple[TaskPlan, ...]
    analyze_max_iter: int
    dense_limit: int
    compile: bool

    @property
    def internal_wins(self) -> frozenset[str]:
        """The tasks on which C4 needs internal recall to beat input recall."""
        return frozenset(p.task for p in self.plans if p.internal_wins)


SMALL = (("d_model", 8), ("n_heads", 2))  # smoke: a model that trains in seconds
WIDE = (("d_model", 128), ("n_heads", 8))
LINES = (("groups", LINES_ONLY),)  # chess: attention along lines only (docstring)

# One fresh seed (not a development seed), so its runs count as held out for C5.
SMOKE = Budget("smoke", analyze_max_iter=30, dense_limit=0, compile=False, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("64",), seeds=(3,), steps=30, batch_size=32, train_iters=6,
             max_iters=24, n_eval=32, n_analyze=2, model=SMALL),
    TaskPlan("sudoku", easy=("easy",), hard=("hard",), seeds=(3,), steps=4, batch_size=8, train_iters=3,
             max_iters=6, n_eval=8, n_analyze=2, model=SMALL, internal_wins=True),
    TaskPlan("chess", easy=("mate1",), hard=("mate3",), seeds=(3,), steps=4, batch_size=8, train_iters=3,
             max_iters=6, n_eval=16, n_analyze=2, model=SMALL + LINES),
))

FRESH_SEEDS = (3, 4, 5)  # never run before at the cpu or gpu budget

CPU = Budget("cpu", analyze_max_iter=300, dense_limit=2048, compile=True, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("128", "256"), seeds=FRESH_SEEDS, steps=2000, batch_size=128,
             train_iters=16, max_iters=160, n_eval=1000, n_analyze=12),
    TaskPlan("sudoku", easy=("easy",), hard=("hard", "hardest"), seeds=FRESH_SEEDS, steps=3000, batch_size=64,
             train_iters=20, max_iters=100, n_eval=1000, n_analyze=6, augment=True, internal_wins=True),
    TaskPlan("chess", easy=("mate1",), hard=("mate3", "mate4"), seeds=FRESH_SEEDS, steps=300, batch_size=64,
             train_iters=8, max_iters=24, n_eval=1000, n_analyze=4, model=LINES),
))

GPU = Budget("gpu", analyze_max_iter=1000, dense_limit=4096, compile=True, plans=(
    TaskPlan("prefix-sums", easy=("32",), hard=("512", "1024"), seeds=FRESH_SEEDS, steps=20000, batch_size=256,
             train_iters=30, max_iters=1200, n_eval=1000, n_analyze=32, model=(("d_model", 64),)),
    TaskPlan("sudoku", easy=("easy", "medium"), hard=("hard", "harder", "hardest", "search"), seeds=FRESH_SEEDS,
             steps=30000, batch_size=256, train_iters=30, max_iters=300, n_eval=1000, n_analyze=16, augment=True,
             model=WIDE, internal_wins=True),
    TaskPlan("chess", easy=("mate1", "mate2"), hard=("mate3", "mate4", "mate5"), seeds=FRESH_SEEDS, steps=30000,
             batch_size=256, train_iters=20, max_iters=100, n_eval=2000, n_analyze=16, model=WIDE + LINES),
))

BUDGETS = {b.name: b for b in (SMOKE, CPU, GPU)}
