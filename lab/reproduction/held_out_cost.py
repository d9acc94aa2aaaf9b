"""What a held-out budget would cost on this machine, from the development runs: does it fit the issue's budget?

    python lab/reproduction/held_out_cost.py DEV_OUT [--budget cpu] [--hours 24 --cores 2]
    python lab/reproduction/held_out_cost.py DEV_OUT --measure JOB_ID     # one job per task, on one thread
    python lab/reproduction/held_out_cost.py DEV_OUT --size               # the steps the sizing rule gives

Training: seconds per step of each finished development job (the training clock its record keeps, one
thread per job), median per task. Evaluation and analysis: ``--measure`` takes a finished development job and
runs on it what a held-out job adds (the evaluation on easy and hard splits with halting off and on, and the
stability analysis, with the budget's arguments), timing CPU seconds on one thread; the result is kept in
``DEV_OUT/costs/JOB_ID.json``. The projection multiplies by the held-out budget's job count.

``--size`` applies the sizing rule of docs/reproduce.md to the projection, with each task's ``learned`` from
``DEV_OUT/development.json`` (``looped reproduce --budget cpu-dev --report`` writes it): the steps to freeze in
``budgets.py``.
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
from looped.reproduce import read_development
from looped.reproduce.grid import RECORD, analysis_of, evaluation, job, jobs, seconds_per_step
from looped.runs import METRICS, Run
from looped.tasks import InputError


def training_rates(dev_out: Path) -> dict[str, list[float]]:
    """Per task: seconds per step of every finished development job (looped variants; the baseline is deeper),
    from its record, or from its ``metrics.jsonl`` for a record written before records kept it."""
    rates: dict[str, list[float]] = {}
    for spec in jobs(BUDGETS["cpu-dev"]):
        run = Run(dev_out / "runs" / spec.name)
        if not run.has(RECORD) or spec.baseline:
            continue
        rate = run.read_json(RECORD).get("clock", {}).get("seconds_per_step")
        if rate is None and run.has(METRICS):
            rate = seconds_per_step(run)
        if rate is not None:
            rates.setdefault(spec.plan.task, []).append(rate)
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
        per_step_h = None if rate is None else len(specs) * rate / 3600
        train_h = None if rate is None else plan.steps * per_step_h
        extra_h = None if m is None else (len(specs) * m["evaluation_s"] + looped_jobs * m["analysis_s"]) / 3600
        rows.append({"task": plan.task, "jobs": len(specs), "steps": plan.steps,
                     "training_core_h_per_step": per_step_h,
                     "s_per_step": rate, "s_per_step_range": (min(rates[plan.task]), max(rates[plan.task]))
                     if rate else None, "dev_jobs_timed": len(rates.get(plan.task, [])),
                     "evaluation_s": m and m["evaluation_s"], "analysis_s": m and m["analysis_s"],
                     "training_core_h": train_h, "evaluation_analysis_core_h": extra_h,
                     "core_h": None if None in (train_h, extra_h) else train_h + extra_h})
    return rows


STEP_QUANTUM = 100  # sized steps are rounded down to a multiple of this


def size_steps(rows: list[dict], learned: dict[str, bool], budget_core_h: float, dev_steps: dict[str, int]) -> dict:
    """The sizing rule of docs/reproduce.md on projection ``rows``.

    A learned task keeps its development steps. The others share what the learned tasks leave of
    ``budget_core_h`` in equal core-hours: each gets the steps its share pays for after its evaluation and
    analysis, rounded down to ``STEP_QUANTUM``, never above its development steps. A share left unused by that
    cap is not passed on (the rule does not say to; fewer steps make a verdict harder to reach, as rules v3
    resolve such choices). A task whose share does not pay for ``STEP_QUANTUM`` steps gets 0: it is not run.

    Returns ``{"tasks": {task: {"learned", "steps", "share_core_h", "core_h"}}, "core_h", "overrun_core_h"}``.
    """
    learned_h = sum(cost(r, dev_steps[r["task"]]) for r in rows if learned[r["task"]])
    others = [r for r in rows if not learned[r["task"]]]
    share = (budget_core_h - learned_h) / len(others) if others else None
    tasks = {}
    for r in rows:
        task = r["task"]
        if learned[task]:
            steps = dev_steps[task]
        else:
            affordable = (share - r["evaluation_analysis_core_h"]) / r["training_core_h_per_step"]
            steps = min(dev_steps[task], max(0, int(affordable // STEP_QUANTUM) * STEP_QUANTUM))
        tasks[task] = {"learned": learned[task], "steps": steps, "share_core_h": None if learned[task] else share,
                       "core_h": cost(r, steps) if steps else 0.0}
    total = sum(t["core_h"] for t in tasks.values())
    return {"tasks": tasks, "core_h": total, "overrun_core_h": max(0.0, total - budget_core_h)}


def cost(row: dict, steps: int) -> float:
    """A task's projected core-hours at ``steps`` training steps a job."""
    return steps * row["training_core_h_per_step"] + row["evaluation_analysis_core_h"]


def learned_in_development(dev_out: Path) -> dict[str, bool]:
    """Per task: learned at its chosen learning rate, as ``development.json`` says."""
    try:
        chosen = read_development(dev_out)
    except InputError as e:
        raise SystemExit(str(e)) from None
    return {task: c["learned"] for task, c in chosen["tasks"].items()}


def sizing_table(sized: dict, budget_core_h: float) -> str:
    lines = ["| task | learned in development | share core-h | steps | projected core-h |", "|---|---|---|---|---|"]
    for task, t in sized["tasks"].items():
        share = "-" if t["share_core_h"] is None else f"{t['share_core_h']:.1f}"
        lines.append(f"| {task} | {'yes' if t['learned'] else 'no'} | {share} | {t['steps']} | {t['core_h']:.1f} |")
    lines.append(f"\nProjected: {sized['core_h']:.1f} of {budget_core_h:g} core-h; "
                 f"overrun {sized['overrun_core_h']:.1f}.")
    return "\n".join(lines)


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
    p.add_argument("--size", action="store_true", help="apply the sizing rule to the projection")
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.dev_out, args.measure, args.budget)))
    rows = projection(args.dev_out, args.budget)
    print(table(rows, args.hours, args.cores))
    if args.size:
        if any(r["core_h"] is None for r in rows):
            raise SystemExit("--size needs every task's step time and measured evaluation and analysis")
        dev_steps = {p.task: p.steps for p in BUDGETS["cpu-dev"].plans}
        sized = size_steps(rows, learned_in_development(args.dev_out), args.hours * args.cores, dev_steps)
        print("\n" + sizing_table(sized, args.hours * args.cores))


if __name__ == "__main__":
    main()
