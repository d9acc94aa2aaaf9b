"""The grid of runs and how one run is carried out: train, evaluate, analyze, summarize.

Each step writes its output atomically and is skipped when that output exists, so a killed
reproduction resumes where it stopped (training itself resumes from its last checkpoint).
A finished run leaves ``record.json``: everything the claims and the report need.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .. import runs
from ..evaluate import EVAL_SEED_BASE, accuracy_curve
from ..analyze import analyze_run
from ..tasks import get_task
from ..train import TrainConfig, Trainer, model_config
from .budgets import NORMS, RECALLS, Budget, TaskPlan

RECORD = "record.json"


@dataclass(frozen=True)
class RunSpec:
    plan: TaskPlan
    recall: str
    norm: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.plan.task}-{self.recall}-{self.norm}-s{self.seed}"


def grid(budget: Budget) -> list[RunSpec]:
    """Every run of ``budget``: tasks x recall x outer norm x seeds."""
    return [RunSpec(plan, recall, norm, seed) for plan in budget.plans for seed in plan.seeds
            for recall in RECALLS for norm in NORMS]


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
    return json.loads((run / RECORD).read_text())


def execute(spec: RunSpec, out: Path, budget: Budget) -> dict:
    """Train, evaluate and analyze one run (each step skipped if done). Returns its record."""
    run = out / "runs" / spec.name
    if (run / RECORD).exists():
        return read_record(run)
    plan = spec.plan
    train(spec, run, budget.compile)
    if not (run / "eval.json").exists():
        runs.write_json(run / "eval.json", runs.json_safe(curves(run, plan)))
    if not (run / "analysis.json").exists():
        analysis = analyze_run(run, plan.easy[0], plan.n_analyze, budget.analyze_max_iter, tol=1e-5, device="cpu",
                               dense_limit=budget.dense_limit)
        analysis.pop("traces")
        runs.write_json(run / "analysis.json", analysis)
    record = make_record(spec, json.loads((run / "eval.json").read_text()),
                         json.loads((run / "analysis.json").read_text()))
    runs.write_json(run / RECORD, record)
    return record


def train(spec: RunSpec, run: Path, compile: bool) -> None:
    plan = spec.plan
    cfg = TrainConfig(
        seed=spec.seed, steps=plan.steps, batch_size=plan.batch_size, lr=plan.lr,
        warmup_steps=min(200, plan.steps // 10), train_iters=plan.train_iters, alpha=plan.alpha,
        eval_every=plan.steps, checkpoint_every=max(1, plan.steps // 20), augment=plan.augment,
        compile=compile, device="auto",
    )
    if (run / runs.CONFIG).exists():
        trainer = Trainer.resume(run, cfg.steps)
    else:
        sizes = {k: v for k, v in (("d_model", plan.d_model), ("n_heads", plan.n_heads)) if v is not None}
        model_cfg = model_config(get_task(plan.task), overrides={**sizes, "recall": spec.recall, "outer_norm": spec.norm})
        trainer = Trainer.create(run, get_task(plan.task), model_cfg, cfg)
    trainer.run(show_progress=False)


def curves(run: Path, plan: TaskPlan) -> dict:
    """Accuracy (and the task's other metrics) at every iteration on every easy and hard split."""
    model, task, _ = runs.load_model(run, "cpu")
    out = {}
    for name in plan.easy + plan.hard:
        batch = task.generate(task.split(name), plan.n_eval, seed=EVAL_SEED_BASE)
        metrics, residual, _ = accuracy_curve(model, task, batch, plan.max_iters)
        out[name] = {"n": len(batch), "accuracy": metrics.pop("exact"), "residual": residual, **metrics}
    return out


def make_record(spec: RunSpec, curves: dict, analysis: dict) -> dict:
    """The run's summary: best accuracies on easy and hard splits, and its stability numbers."""
    plan = spec.plan

    def best(names):
        return sum(max(curves[s]["accuracy"]) for s in names) / len(names)

    a, i, g, v = (analysis[k] for k in ("reachability", "input_dependence", "geometry", "verdicts"))
    return {
        "name": spec.name, "task": plan.task, "recall": spec.recall, "outer_norm": spec.norm, "seed": spec.seed,
        "easy": list(plan.easy), "hard": list(plan.hard),
        "n_eval": min(curves[s]["n"] for s in plan.hard),
        "easy_accuracy": best(plan.easy),
        "hard_accuracy": best(plan.hard),
        "hard_final_accuracy": sum(curves[s]["accuracy"][-1] for s in plan.hard) / len(plan.hard),
        "curves": {s: curves[s]["accuracy"] for s in plan.easy + plan.hard},
        "stability": {
            "n": analysis["n"],
            "reachable_fraction": a["reachable_fraction"],
            "rho_median": a["rho_median"],
            "state_norm_growth": a["state_norm_growth_median"],
            "input_dependent_at_fixed_h0": i["autonomy_input_dependent"],
            "sensitivity_median": i["sensitivity_median"],
            "distinct_fraction": i["distinct_fixed_points"] / analysis["n"],
            "lipschitz_median": g["lipschitz_median"],
            "cond_median": g["cond_median"],
            "backward_converged_fraction": g["backward_converged_fraction"],
            "verdicts": v,
        },
    }
