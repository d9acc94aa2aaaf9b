"""The grid of runs and how one run is carried out: train, evaluate, analyze, summarize.

Per task and seed: the six variants (recall x outer norm), trained with the plan's progressive
loss and evaluated up to ``T_max = plan.max_iters``, and one fixed-depth baseline (internal
recall + LayerNorm, ``alpha=0``: last-iteration loss at the training depth ``N``, evaluated at
``N`` only; it needs no stability analysis). Every run of a task is scored on the same examples.

Each step writes its output atomically and is skipped when that output exists, so a killed
reproduction resumes where it stopped (training itself resumes from its last checkpoint).
A run is evaluated as ``looped eval`` does and its eval JSON kept: ``eval.json`` with halting off
and each example's exact match, ``eval-halting.json`` with ``Halting()``. A finished run leaves
``record.json``: everything the claims and the report need, including per-example correctness, so
the report can be regenerated from records alone.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..analysis import analyze_run
from ..config import TrainConfig, model_config, pick_device
from ..evaluation import Halting, eval_result, evaluate
from ..model import RECALLS
from ..runs import WEIGHTS, Run, RunError
from ..tasks import get_task
from ..training import Trainer
from .budgets import NORMS, Budget, TaskPlan

RECORD = "record.json"
EVAL, EVAL_HALTING = "eval.json", "eval-halting.json"  # looped eval's JSON: halting off (scored), on (reported)
DIVERGED, ANALYSIS = "diverged.json", "analysis.json"
ANALYZE_TOL = 1e-5  # relative residual that counts as reaching the fixed point
MAX_WARMUP, WARMUP_SHARE = 200, 10  # warmup: a tenth of the steps, at most 200
CHECKPOINTS_PER_RUN = 20  # so a killed run loses at most a twentieth of its training


BASELINE = ("internal", "layernorm")  # the fixed-depth baseline's block


@dataclass(frozen=True)
class RunSpec:
    plan: TaskPlan
    recall: str
    norm: str
    seed: int
    baseline: bool = False  # fixed depth N, last-iteration loss, evaluated at N only

    @property
    def name(self) -> str:
        kind = "fixed" if self.baseline else f"{self.recall}-{self.norm}"
        return f"{self.plan.task}-{kind}-s{self.seed}"

    @property
    def eval_iters(self) -> int:
        return self.plan.train_iters if self.baseline else self.plan.max_iters


def grid(budget: Budget) -> list[RunSpec]:
    """Every run of ``budget``: per task and seed, recall x outer norm, then the fixed-depth baseline."""
    return [spec for plan in budget.plans for seed in plan.seeds
            for spec in [RunSpec(plan, r, n, seed) for r in RECALLS for n in NORMS] + [RunSpec(plan, *BASELINE, seed, True)]]


def run_all(budget: Budget, out: Path, workers: int = 1, progress: bool = True) -> list[dict]:
    """Carry out every run not yet finished under ``out/runs``; returns all records in grid order."""
    specs = grid(budget)
    todo = [s for s in specs if not (out / "runs" / s.name / RECORD).exists()]
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"reproduce {budget.name}", unit="run",
               disable=not progress, dynamic_ncols=True)
    if workers <= 1:
        for spec in todo:
            execute(spec, out, budget)
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, initializer=_one_worker, initargs=(workers,)) as pool:
            for job in as_completed([pool.submit(execute, s, out, budget) for s in todo]):
                job.result()
                bar.update(1)
    bar.close()
    return [read_record(out / "runs" / s.name) for s in specs]


def _one_worker(workers: int) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def read_record(run: Path) -> dict:
    record = Run(run).read_json(RECORD)
    if "correct" not in record:
        raise RunError(f"{run / RECORD} predates rules v2 (no per-example outcomes); use a new --out")
    return record


def execute(spec: RunSpec, out: Path, budget: Budget) -> dict:
    """Train, evaluate and analyze one run (each step skipped if done). Returns its record."""
    path = out / "runs" / spec.name
    run = Run(path)
    if run.has(RECORD):
        return read_record(path)
    plan = spec.plan
    train(spec, path, budget.compile)
    if not run.has(EVAL_HALTING):  # written last of the two
        for name, result in zip((EVAL, EVAL_HALTING), evaluation(path, spec)):
            run.write_json(name, result)
    analysis = None
    if not spec.baseline:
        if not run.has(ANALYSIS):
            result = analyze_run(path, plan.easy[0], plan.n_analyze, budget.analyze_max_iter, tol=ANALYZE_TOL,
                                 device="cpu", dense_limit=budget.dense_limit)
            run.write_json(ANALYSIS, result)
        analysis = run.read_json(ANALYSIS)
    full, halted = (run.read_json(name) for name in (EVAL, EVAL_HALTING))
    record = make_record(spec, full, halted, analysis) | {"diverged": run.has(DIVERGED)}
    run.write_json(RECORD, record)
    return record


def train(spec: RunSpec, path: Path, compile: bool) -> None:
    """Train (or resume) the run. A loss that turns non-finite ends training for good: the run keeps
    its last good checkpoint, is evaluated and analyzed as such, and ``DIVERGED`` says where it stopped."""
    run = Run(path)
    if run.has(DIVERGED):
        return
    plan = spec.plan
    cfg = TrainConfig(
        seed=spec.seed, steps=plan.steps, batch_size=plan.batch_size, lr=plan.lr,
        warmup_steps=min(MAX_WARMUP, plan.steps // WARMUP_SHARE), train_iters=plan.train_iters, alpha=0.0 if spec.baseline else plan.alpha,
        eval_every=plan.steps, checkpoint_every=max(1, plan.steps // CHECKPOINTS_PER_RUN), augment=plan.augment,
        compile=compile, device="auto",
    )
    if run.exists():
        trainer = Trainer.resume(run.path, cfg.steps)
    else:
        overrides = {**dict(plan.model), "recall": spec.recall, "outer_norm": spec.norm}
        task = get_task(plan.task)
        trainer = Trainer.create(run.path, task, model_config(task, overrides=overrides), cfg)
    try:
        trainer.run(show_progress=False)
    except FloatingPointError as e:
        if not run.has(WEIGHTS):
            raise
        run.write_json(DIVERGED, {"error": str(e)})


def evaluation(path: Path, spec: RunSpec) -> tuple[dict, dict]:
    """The run's eval JSON (``looped eval``'s) on every split, up to ``spec.eval_iters``: with halting off
    and each example's exact match there and at the training depth N; and with ``Halting()``."""
    plan = spec.plan
    run = Run(path)
    model, task, _ = run.load(pick_device("auto"))
    T, splits = spec.eval_iters, list(plan.easy + plan.hard)
    full = evaluate(model, task, splits, T, n=plan.n_eval, halting=None, correct_at=(plan.train_iters, T))
    halted = evaluate(model, task, splits, T, n=plan.n_eval, halting=Halting())
    return eval_result(task, run.path, full, T, 0, None), eval_result(task, run.path, halted, T, 0, Halting())


def make_record(spec: RunSpec, full: dict, halted: dict, analysis: dict | None) -> dict:
    """The run's summary: accuracies at ``T_max`` (at N for the baseline), per-example outcomes,
    the oracle and halting accuracies (reported only), and its stability numbers (None for the baseline).
    ``full``, ``halted``: the eval JSON of ``evaluation``."""
    plan = spec.plan
    by_split = {r["split"]: r for r in full["results"]}
    curve = {s: [r["accuracy_by_iteration"][str(t)] for t in range(1, spec.eval_iters + 1)] for s, r in by_split.items()}
    halting = {r["split"]: r["final_accuracy"] for r in halted["results"]}
    correct = lambda s, t: by_split[s]["correct_by_iteration"][str(t)]  # noqa: E731

    def mean(names, value):
        return sum(value(s) for s in names) / len(names)

    return {
        "name": spec.name, "task": plan.task, "recall": spec.recall, "outer_norm": spec.norm, "seed": spec.seed,
        "baseline": spec.baseline, "easy": list(plan.easy), "hard": list(plan.hard),
        "n_eval": min(by_split[s]["n"] for s in plan.hard), "train_iters": plan.train_iters,
        "eval_iters": spec.eval_iters,
        "easy_accuracy": mean(plan.easy, lambda s: curve[s][-1]),
        "hard_accuracy": mean(plan.hard, lambda s: curve[s][-1]),
        "hard_accuracy_at_train_depth": mean(plan.hard, lambda s: curve[s][plan.train_iters - 1]),
        "hard_oracle_accuracy": mean(plan.hard, lambda s: max(curve[s])),
        "hard_halting_accuracy": mean(plan.hard, halting.__getitem__),
        "curves": {s: curve[s] for s in plan.easy + plan.hard},
        "correct": {s: correct(s, spec.eval_iters) for s in plan.easy + plan.hard},
        "correct_at_train_depth": {s: correct(s, plan.train_iters) for s in plan.hard},
        "stability": None if analysis is None else stability_record(analysis),
    }


def stability_record(analysis: dict) -> dict:
    """What the claims read of a run's ``looped analyze`` result, and its attractors per example."""
    att, a, i, g = (analysis[k] for k in ("attractors", "reachability", "input_dependence", "geometry"))
    return {
        "n": analysis["n"],
        "reachable_fraction": att["settled_with_constant_prediction_fraction"],
        "rho_median": att["multiplier_median"],
        "state_norm_growth": a["state_norm_growth_median"],
        "input_dependent_at_fixed_h0": i["autonomy_input_dependent"],
        "sensitivity_median": i["sensitivity_median"],
        "distinct_fraction": i["distinct_attractors"] / analysis["n"],
        "lipschitz_median": g["lipschitz_median"],
        "cond_median": g["cond_median"],
        "backward_converged_fraction": g["backward_converged_fraction"],
        "verdicts": analysis["verdicts"],
        "attractor_shares": {label: s["share"] for label, s in att["shares"].items()},
        "examples": attractor_examples(analysis),
    }


def attractor_examples(analysis: dict) -> list[dict]:
    """Per analysed example: attractor class, period, settle iteration and a compact residual trace
    (one-step and k-step, at log-spaced iterations), so a reader can tell a cycle from slow convergence."""
    per, traces = analysis["per_example"], analysis["traces"]
    return [{"kind": per["kind"][j], "period": per["period"][j], "settled_at": per["settled_at"][j],
             "multiplier": per["multiplier"][j], "prediction_since": per["prediction_since"][j],
             "one_step": traces["one_step"][j], "k_step": traces["k_step"][j]} for j in range(analysis["n"])]
