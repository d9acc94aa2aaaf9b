"""The grid of runs, each an independent job with a stable id, and how one is carried out: train,
evaluate, analyze, summarize.

Per task, seed and learning rate: the paper's block in every variant of the budget (recall x norm,
and GRU + peri where the plan sets it), trained with the progressive loss and evaluated up to
``T_max = plan.max_iters``; and the 15-block fixed-depth baseline (no recall, post norm,
last-iteration loss at depth 1, evaluated at depth 1; it needs no stability analysis). Every run of a
task is scored on the same examples.

A job's id names it (``prefix-sums-internal-post-add-s10``; ``-lr0.0003`` before the seed where a plan
compares learning rates), ``looped reproduce --list`` prints them and ``--only ID`` runs one. Each step
writes its output atomically and is skipped when that output exists, so jobs are idempotent and a
killed one resumes where it stopped (training from its last checkpoint); two processes may run
different jobs into one folder. A finished job leaves ``record.json``: everything the claims and the
report need, per-example correctness and the attractor of every analysed example included; a
development budget's job, only what the development phase compares (its easy accuracy). Every record also
keeps its ``clock``: the machine and the training seconds per step, the one part that differs between reruns.
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
from ..presets import schedule
from ..evaluation import Halting, eval_result, evaluate
from ..machine import describe
from ..runs import WEIGHTS, Run, RunError
from ..model import Looped
from ..tasks import InputError, Task, get_task
from ..training import Trainer
from .budgets import NORMS, RECALLS, Budget, TaskPlan
from .claims import RULES

RECORD = "record.json"
EVAL, EVAL_HALTING = "eval.json", "eval-halting.json"  # looped eval's JSON: halting off (scored), on (reported)
DIVERGED, ANALYSIS, DEV = "diverged.json", "analysis.json", "development.json"
ANALYZE_TOL = 1e-5  # relative k-step residual that counts as settled
CHECKPOINTS_PER_RUN = 20  # so a killed run loses at most a twentieth of its training
BASELINE_BLOCKS, BASELINE_NORM = 15, "post"
DEV_EVAL_N = 500  # examples of the easy accuracy a development run records along training


@dataclass(frozen=True)
class RunSpec:
    plan: TaskPlan
    recall: str
    norm: str
    residual: str
    seed: int
    lr: float
    baseline: bool = False  # 15 blocks, one pass, no recall

    @property
    def name(self) -> str:
        """The job's stable id."""
        kind = "fixed" if self.baseline else f"{self.recall}-{self.norm}-{self.residual}"
        lr = f"-lr{self.lr:g}" if len(self.plan.lrs) > 1 else ""
        return f"{self.plan.task}-{kind}{lr}-s{self.seed}"

    @property
    def train_iters(self) -> int:
        return 1 if self.baseline else self.plan.train_iters

    @property
    def eval_iters(self) -> int:
        return 1 if self.baseline else self.plan.max_iters


def variants(plan: TaskPlan) -> list[tuple[str, str, str]]:
    """(recall, norm, residual) of every looped variant of the plan."""
    out = [(r, n, "add") for r in RECALLS for n in NORMS]
    return out + ([(r, "peri", "gru") for r in RECALLS] if plan.gru else [])


def jobs(budget: Budget) -> list[RunSpec]:
    """Every job of ``budget``, in a fixed order: per task, learning rate and seed, the variants, then the baseline."""
    return [spec for plan in budget.plans for lr in plan.lrs for seed in plan.seeds
            for spec in [RunSpec(plan, *v, seed, lr) for v in variants(plan)]
            + [RunSpec(plan, "none", BASELINE_NORM, "add", seed, lr, baseline=True)]]


def job(budget: Budget, name: str) -> RunSpec:
    """The job with id ``name``. Raises ``InputError`` naming the budget's ids."""
    for spec in jobs(budget):
        if spec.name == name:
            return spec
    raise InputError(f"no job {name!r} in the {budget.name} budget; looped reproduce --budget {budget.name} --list "
                     f"prints its {len(jobs(budget))} ids")


def run_all(budget: Budget, out: Path, workers: int = 1, progress: bool = True,
            only: list[str] | None = None) -> list[dict]:
    """Carry out every job not yet finished under ``out/runs`` (or the jobs ``only``); returns the records of
    every finished job, in grid order."""
    specs = jobs(budget) if only is None else [job(budget, name) for name in only]
    todo = [s for s in specs if not (out / "runs" / s.name / RECORD).exists()]
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"reproduce {budget.name}", unit=" runs",
               disable=not progress, dynamic_ncols=True)
    if workers <= 1:
        for spec in todo:
            execute(spec, out, budget)
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, initializer=_one_worker, initargs=(workers,)) as pool:
            for future in as_completed([pool.submit(execute, s, out, budget) for s in todo]):
                future.result()
                bar.update(1)
    bar.close()
    return finished(budget, out)


def finished(budget: Budget, out: Path) -> list[dict]:
    """The records of every finished job of ``budget`` under ``out``, in grid order."""
    return [read_record(out / "runs" / s.name) for s in jobs(budget) if (out / "runs" / s.name / RECORD).exists()]


def _one_worker(workers: int) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def read_record(run: Path) -> dict:
    record = Run(run).read_json(RECORD)
    if record.get("rules") != RULES:
        raise RunError(f"{run / RECORD} was written under other rules; use a new --out")
    return record


def execute(spec: RunSpec, out: Path, budget: Budget) -> dict:
    """Train, evaluate and (unless a development budget's) analyze one job, each step skipped if done.
    Returns its record."""
    path = out / "runs" / spec.name
    run = Run(path)
    if run.has(RECORD):
        return read_record(path)
    if budget.compile:
        torch.compiler.reset()  # a fresh cache per job: compiled as if it ran alone, never past the recompile limit
    train(spec, path, budget.compile)
    record = development_record(spec, run, budget.compile) if budget.development else judged_record(spec, run, budget)
    record |= {"diverged": run.has(DIVERGED), "clock": {"machine": describe(), "seconds_per_step": seconds_per_step(run)}}
    run.write_json(RECORD, record)
    return record


def seconds_per_step(run: Run) -> float:
    """The training clock (one process, as ``metrics.jsonl`` logs it) over the steps trained."""
    last = run.read_metrics()[-1]
    return last["elapsed_s"] / last["step"]


def judged_record(spec: RunSpec, run: Run, budget: Budget) -> dict:
    """Evaluate on every split with halting off and on, analyze on easy data (not the baseline), summarize."""
    if not run.has(EVAL_HALTING):  # written last of the two
        for name, result in zip((EVAL, EVAL_HALTING), evaluation(run.path, spec, budget.compile)):
            run.write_json(name, result)
    analysis = None
    if not spec.baseline:
        if not run.has(ANALYSIS):
            run.write_json(ANALYSIS, analysis_of(run.path, spec, budget))
        analysis = run.read_json(ANALYSIS)
    full, halted = (run.read_json(name) for name in (EVAL, EVAL_HALTING))
    return make_record(spec, full, halted, analysis, run.read_json(DEV) if run.has(DEV) else None)


def analysis_of(path: Path, spec: RunSpec, budget: Budget) -> dict:
    """``looped analyze``'s result for the job's model on its first easy split, with the budget's arguments."""
    return analyze_run(path, spec.plan.easy[0], spec.plan.n_analyze, budget.analyze_max_iter, tol=ANALYZE_TOL,
                       device="cpu", dense_limit=budget.dense_limit)


def development_record(spec: RunSpec, run: Run, compile: bool) -> dict:
    """What the development phase compares: the easy accuracy at ``T_max`` (``n_eval`` examples, halting off) and
    along training. No hard split, halting or stability analysis: development runs are never judged."""
    plan = spec.plan
    if not run.has(EVAL):
        model, task = trained(run, compile)
        curves = evaluate(model, task, list(plan.easy), spec.eval_iters, n=plan.n_eval, halting=None)
        run.write_json(EVAL, eval_result(task, run.path, curves, spec.eval_iters, 0, None))
    full = run.read_json(EVAL)
    curve = curves_of(full, spec.eval_iters)
    return identity(spec) | {
        "n_eval": min(r["n"] for r in full["results"]),
        "easy_accuracy": sum(curve[s][-1] for s in plan.easy) / len(plan.easy), "curves": curve,
        "development": run.read_json(DEV) if run.has(DEV) else None,
    }


def train_config(spec: RunSpec, compile: bool) -> TrainConfig:
    plan = spec.plan
    return TrainConfig(
        seed=spec.seed, steps=plan.steps, batch_size=plan.batch_size, lr=spec.lr, weight_decay=0.01, grad_clip=1.0,
        **schedule(plan.steps), train_iters=spec.train_iters, alpha=0.0 if spec.baseline else 1.0, eval_every=plan.steps,
        checkpoint_every=max(1, plan.steps // CHECKPOINTS_PER_RUN), compile=compile, device="auto")


def train(spec: RunSpec, path: Path, compile: bool) -> None:
    """Train (or resume) the job. A loss that turns non-finite ends training for good: the run keeps its last
    good checkpoint, is evaluated and analyzed as such, and ``DIVERGED`` says where it stopped. A development
    plan's checkpoints record the easy accuracy along training in ``DEV``."""
    run = Run(path)
    if run.has(DIVERGED):
        return
    plan, cfg = spec.plan, train_config(spec, compile)
    if run.exists():
        trainer = Trainer.resume(path, cfg.steps)
    else:
        task = get_task(plan.task)
        overrides = {"d_model": plan.width, "n_heads": plan.heads, "recall": spec.recall, "norm": spec.norm,
                     "residual": spec.residual, "blocks": BASELINE_BLOCKS if spec.baseline else 1}
        trainer = Trainer.create(path, task, model_config(task, "paper", overrides), cfg)
    marks = () if spec.baseline else plan.checkpoints
    try:
        trainer.run(show_progress=False, on_step=lambda t, row: _development(t, spec, run) if t.step in marks else None)
    except FloatingPointError as e:
        if not run.has(WEIGHTS):
            raise
        run.write_json(DIVERGED, {"error": str(e)})


def _development(trainer: Trainer, spec: RunSpec, run: Run) -> None:
    """Record the easy accuracy at T_max at this step (a development plan's checkpoints)."""
    seen = run.read_json(DEV) if run.has(DEV) else {"easy_accuracy_by_step": {}}
    model = trainer.weights().eval()
    curves = evaluate(model, trainer.task, list(spec.plan.easy), spec.eval_iters, n=DEV_EVAL_N, halting=None)
    model.train()
    seen["easy_accuracy_by_step"][str(trainer.step)] = sum(c.accuracy[-1] for c in curves) / len(curves)
    run.write_json(DEV, seen)


def evaluation(path: Path, spec: RunSpec, compile: bool) -> tuple[dict, dict]:
    """The job's eval JSON (``looped eval``'s) on every split, up to ``spec.eval_iters``: with halting off and
    each example's exact match there and at the training depth; and with ``Halting()``, replayed on the same pass."""
    plan = spec.plan
    model, task = trained(Run(path), compile)
    T, splits = spec.eval_iters, list(plan.easy + plan.hard)
    full = evaluate(model, task, splits, T, n=plan.n_eval, halting=None, correct_at=sorted({spec.train_iters, T}),
                    replay=Halting())
    halted = [c.replayed for c in full]
    return eval_result(task, path, full, T, 0, None), eval_result(task, path, halted, T, 0, Halting())


def trained(run: Run, compile: bool) -> tuple[Looped, Task]:
    """The run's model (its step compiled when ``compile``) and task."""
    model, task, _ = run.load(pick_device("auto"))
    if compile:
        model.compile_step()
    return model, task


def curves_of(result: dict, iters: int) -> dict[str, list[float]]:
    """Per split of an eval JSON: the accuracy at iterations 1..``iters``."""
    return {r["split"]: [r["accuracy_by_iteration"][str(t)] for t in range(1, iters + 1)] for r in result["results"]}


def identity(spec: RunSpec) -> dict:
    """The fields that name a job and its recipe, in every record."""
    plan = spec.plan
    kind = "fixed" if spec.baseline else f"{spec.recall}/{spec.norm}/{spec.residual}"
    return {"rules": RULES, "name": spec.name, "task": plan.task, "recall": spec.recall, "norm": spec.norm,
            "residual": spec.residual, "variant": kind, "seed": spec.seed, "lr": spec.lr, "steps": plan.steps,
            "baseline": spec.baseline, "easy": list(plan.easy), "train_iters": spec.train_iters,
            "eval_iters": spec.eval_iters}


def make_record(spec: RunSpec, full: dict, halted: dict, analysis: dict | None, development: dict | None) -> dict:
    """The job's summary: accuracies at ``T_max`` (at depth 1 for the baseline), per-example outcomes, the
    oracle and halting accuracies (reported only), and its stability (None for the baseline)."""
    plan = spec.plan
    by_split = {r["split"]: r for r in full["results"]}
    curve = curves_of(full, spec.eval_iters)
    halting = {r["split"]: r["final_accuracy"] for r in halted["results"]}
    correct = lambda s, t: by_split[s]["correct_by_iteration"][str(t)]  # noqa: E731

    def mean(names, value):
        return sum(value(s) for s in names) / len(names)

    depth = spec.train_iters
    return identity(spec) | {
        "hard": list(plan.hard), "n_eval": min(by_split[s]["n"] for s in plan.hard),
        "easy_accuracy": mean(plan.easy, lambda s: curve[s][-1]),
        "hard_accuracy": mean(plan.hard, lambda s: curve[s][-1]),
        "hard_accuracy_at_train_depth": mean(plan.hard, lambda s: curve[s][depth - 1]),
        "hard_oracle_accuracy": mean(plan.hard, lambda s: max(curve[s])),
        "hard_halting_accuracy": mean(plan.hard, halting.__getitem__),
        "curves": {s: curve[s] for s in plan.easy + plan.hard},
        "correct": {s: correct(s, spec.eval_iters) for s in plan.easy + plan.hard},
        "correct_at_train_depth": {s: correct(s, depth) for s in plan.hard},
        "development": development,
        "stability": None if analysis is None else stability_record(analysis),
    }


def stability_record(analysis: dict) -> dict:
    """What the claims read of a job's ``looped analyze`` result, and its attractors per example."""
    att, a, i, g = (analysis[k] for k in ("attractors", "reachability", "input_dependence", "geometry"))
    return {
        "n": analysis["n"],
        "verdicts": analysis["verdicts"],
        "settled_fraction": att["settled_with_constant_prediction_fraction"],
        "multiplier_median": att["multiplier_median"],
        "state_norm_growth": a["state_norm_growth_median"],
        "sensitivity_median": i["sensitivity_median"],
        "precision_median": i["precision_median"],
        "input_dependent_at_fixed_h0": i["autonomy_input_dependent"],
        "distinct_fraction": i["distinct_attractors"] / analysis["n"],
        "lipschitz_median": g["lipschitz_median"],
        "cond_median": g["cond_median"],
        "backward_converged_fraction": g["backward_converged_fraction"],
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
