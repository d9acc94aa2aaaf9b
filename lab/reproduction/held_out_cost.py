"""What a held-out budget would cost on this machine, from the development runs: does it fit the issue's budget?

    python lab/reproduction/held_out_cost.py DEV_OUT [--budget cpu] [--hours 24 --cores 2]
    python lab/reproduction/held_out_cost.py DEV_OUT --measure JOB_ID     # one job per task, on one thread

Training: seconds per step of each finished development job (the training clock of its ``metrics.jsonl``, one
thread per job), median per task. Evaluation and analysis: ``--measure`` takes a finished development job and
runs on it what a held-out job adds (the evaluation on easy and hard splits with halting off and on, and the
stability analysis, with the budget's arguments), timing CPU seconds on one thread; the result is kept in
``DEV_OUT/costs/JOB_ID.json``. The projection multiplies by the held-out budget's job count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from looped.io import write_json
from looped.reproduce.budgets import BUDGETS
from looped.reproduce.grid import RECORD, analysis_of, evaluation, job, jobs
from looped.runs import Run


def seconds_per_step(run: Path) -> float:
    """The run's training clock over its steps (the last line of ``metrics.jsonl``)."""
    last = Run(run).read_metrics()[-1]
    return last["elapsed_s"] / last["step"]


def training_rates(dev_out: Path) -> dict[str, list[float]]:
    """Per task: seconds per step of every finished development job (looped variants; the baseline is deeper)."""
    rates: dict[str, list[float]] = {}
    for spec in jobs(BUDGETS["cpu-dev"]):
        run = dev_out / "runs" / spec.name
        if (run / RECORD).exists() and not spec.baseline:
            rates.setdefault(spec.plan.task, []).append(seconds_per_step(run))
    return rates


def measure(dev_out: Path, name: str, budget_name: str) -> dict:
    """CPU seconds of a held-out job's evaluation and analysis, run on the finished development job ``name``."""
    budget, spec = BUDGETS[budget_name], job(BUDGETS["cpu-dev"], name)
    run = dev_out / "runs" / name
    torch.set_num_threads(1)
    start = time.process_time()
    evaluation(run, spec, budget.compile)
    evaluated = time.process_time()
    analysis_of(run, spec, budget)
    result = {"job": name, "task": spec.plan.task, "evaluation_s": evaluated - start,
              "analysis_s": time.process_time() - evaluated}
    (dev_out / "costs").mkdir(exist_ok=True)
    write_json(dev_out / "costs" / f"{name}.json", result)
    return result


def projection(dev_out: Path, budget_name: str) -> list[dict]:
    """Per task of the held-out budget: its jobs and their projected core-hours (None where not measured)."""
    rates = training_rates(dev_out)
    measured = {}
    for path in sorted((dev_out / "costs").glob("*.json")):
        m = json.loads(path.read_text())
        measured.setdefault(m["task"], m)
    rows = []
    for plan in BUDGETS[budget_name].plans:
        specs = [s for s in jobs(BUDGETS[budget_name]) if s.plan.task == plan.task]
        looped_jobs = sum(not s.baseline for s in specs)
        rate = statistics.median(rates[plan.task]) if plan.task in rates else None
        m = measured.get(plan.task)
        train_h = None if rate is None else len(specs) * plan.steps * rate / 3600
        extra_h = None if m is None else (len(specs) * m["evaluation_s"] + looped_jobs * m["analysis_s"]) / 3600
        rows.append({"task": plan.task, "jobs": len(specs), "steps": plan.steps,
                     "s_per_step": rate, "s_per_step_range": (min(rates[plan.task]), max(rates[plan.task]))
                     if rate else None, "dev_jobs_timed": len(rates.get(plan.task, [])),
                     "evaluation_s": m and m["evaluation_s"], "analysis_s": m and m["analysis_s"],
                     "training_core_h": train_h, "evaluation_analysis_core_h": extra_h,
                     "core_h": None if None in (train_h, extra_h) else train_h + extra_h})
    return rows


def table(rows: list[dict], hours: float, cores: int) -> str:
    fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
    lines = ["| task | jobs | steps | s/step (median, range, jobs) | eval s/job | analysis s/job | training core-h | "
             "eval + analysis core-h | total core-h |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        span = "-" if r["s_per_step"] is None else (f"{r['s_per_step']:.3f} ({r['s_per_step_range'][0]:.3f}-"
                                                     f"{r['s_per_step_range'][1]:.3f}, {r['dev_jobs_timed']})")
        lines.append(f"| {r['task']} | {r['jobs']} | {r['steps']} | {span} | {fmt(r['evaluation_s'], '.0f')} | "
                     f"{fmt(r['analysis_s'], '.0f')} | {fmt(r['training_core_h'], '.1f')} | "
                     f"{fmt(r['evaluation_analysis_core_h'], '.1f')} | {fmt(r['core_h'], '.1f')} |")
    known = [r["core_h"] for r in rows if r["core_h"] is not None]
    lines.append(f"\nBudget: {hours:g} h x {cores} cores = {hours * cores:g} core-h; projected so far: "
                 f"{sum(known):.1f} core-h over {len(known)} of {len(rows)} tasks.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dev_out", type=Path)
    p.add_argument("--budget", default="cpu", help="the held-out budget to project (default cpu)")
    p.add_argument("--measure", metavar="JOB_ID", help="time evaluation and analysis on this finished development job")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.dev_out, args.measure, args.budget)))
    print(table(projection(args.dev_out, args.budget), args.hours, args.cores))


if __name__ == "__main__":
    main()
