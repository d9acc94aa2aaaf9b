"""The development phase of rules v3: what the development seeds choose, computed from their run records.

Per task and learning rate: the mean easy accuracy at ``T_max`` over every job of the grid (each looped
variant and the fixed-depth baseline, every seed), taken over the jobs finished at *every* rate so that
the rates are compared on the same runs. The chosen rate has the highest mean (the lowest rate on a tie);
the baseline counts as a job like any other, since the held-out run trains it at the same rate. Beside it,
along training, the mean and the best variant's easy accuracy at the plan's checkpoints (``DEV_EVAL_N``
examples each), which size the steps; at the chosen rate a task is learned when its best variant's
seed-mean easy accuracy reaches ``LEARNED_EASY`` (``claims.learned``).

``DEVELOPMENT.md``, ``development.json`` and ``development.png`` say what was chosen; ``budgets.py``
freezes it by hand in a commit before the held-out run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_write, json_safe, write_json
from ..machine import describe as machine
from .claims import LEARNED_EASY, RULES, learned, tasks_of
from ..plotting import pyplot
from .report import commit

DEVELOPMENT_MD, DEVELOPMENT_JSON, DEVELOPMENT_PNG = "DEVELOPMENT.md", "development.json", "development.png"


def job_key(r: dict) -> tuple[str, int]:
    """A job's place in the grid apart from its learning rate: (variant, seed)."""
    return r["variant"], r["seed"]


def by_rate(records: list[dict], task: str) -> dict[float, dict[tuple[str, int], dict]]:
    """The task's records by learning rate, then by ``job_key``."""
    out: dict = {}
    for r in records:
        if r["task"] == task:
            out.setdefault(r["lr"], {})[job_key(r)] = r
    return dict(sorted(out.items()))


def along_training(runs: list[dict]) -> dict[int, dict]:
    """Per checkpoint step: the mean easy accuracy over ``runs`` and the best variant's seed mean, over the runs
    that recorded that step."""
    at: dict[int, dict[str, list[float]]] = {}
    for r in runs:
        for step, acc in ((r.get("development") or {}).get("easy_accuracy_by_step") or {}).items():
            at.setdefault(int(step), {}).setdefault(r["variant"], []).append(acc)
    return {step: {"mean": float(np.mean([a for accs in v.values() for a in accs])),
                   "runs": sum(len(accs) for accs in v.values()),
                   "best": max(float(np.mean(accs)) for accs in v.values()),
                   "best_variant": max(v, key=lambda k: np.mean(v[k]))}
            for step, v in sorted(at.items())}


def by_variant(runs) -> dict[str, tuple[float, int]]:
    """Per variant: (mean easy accuracy over its seeds, how many seeds)."""
    accs: dict[str, list[float]] = {}
    for r in runs:
        accs.setdefault(r["variant"], []).append(r["easy_accuracy"])
    return {v: (float(np.mean(a)), len(a)) for v, a in accs.items()}


def task_choice(records: list[dict], task: str) -> dict:
    """The learning-rate comparison and choice for one task (the module docstring)."""
    rates = by_rate(records, task)
    common = set.intersection(*(set(runs) for runs in rates.values())) if rates else set()
    table = {}
    for lr, runs in rates.items():
        compared = [runs[k] for k in sorted(common)]
        ok, best = learned(list(runs.values()), task)
        table[lr] = {"runs": len(runs), "mean_easy": float(np.mean([r["easy_accuracy"] for r in compared]))
                     if compared else None,
                     "best_variant_easy": best, "learned": ok, "steps": sorted({r.get("steps") for r in runs.values()},
                                                                                 key=str),
                     "along_training": along_training(list(runs.values())), "variants": by_variant(runs.values())}
    scored = {lr: row["mean_easy"] for lr, row in table.items() if row["mean_easy"] is not None}
    chosen = max(scored, key=lambda lr: (scored[lr], -lr)) if scored else None
    return {"compared_on": len(common), "seeds": sorted({s for _, s in common}), "rates": table, "chosen_lr": chosen,
            "learned": bool(chosen is not None and table[chosen]["learned"])}


def choices(records: list[dict]) -> dict[str, dict]:
    return {task: task_choice(records, task) for task in tasks_of(records)}


def write_development(out: Path, budget: str, records: list[dict], command: str, expected: int) -> dict[str, dict]:
    """Write ``DEVELOPMENT.md``, ``development.json`` and ``development.png`` under ``out``; returns ``choices``."""
    out.mkdir(parents=True, exist_ok=True)
    chosen, sha = choices(records), commit()
    write_json(out / DEVELOPMENT_JSON, json_safe({"rules": RULES, "budget": budget, "command": command, "commit": sha,
                                                   "machine": machine(), "runs_finished": len(records),
                                                   "runs_expected": expected, "tasks": chosen}))
    curves_plot(chosen, out / DEVELOPMENT_PNG)
    text = markdown(budget, chosen, command, sha, len(records), expected)
    atomic_write(out / DEVELOPMENT_MD, lambda tmp: Path(tmp).write_text(text))
    return chosen


def markdown(budget: str, chosen: dict[str, dict], command: str, sha: str | None, finished: int, expected: int) -> str:
    partial = "" if finished == expected else f" **Partial: {finished} of {expected} runs finished.**"
    lines = [f"# Development (`{budget}` budget, rules v{RULES})", "",
             f"Command: `{command}`. Commit: `{sha or 'unknown'}`. Machine: {machine()}.{partial} Development seeds "
             "only: nothing here is judged. Per task, the learning rate with the highest mean easy accuracy at T_max "
             "over every job of the grid (looped variants and the fixed-depth baseline), compared on the jobs finished "
             f"at every rate; a task is learned at a rate when its best variant's seed-mean easy accuracy is at least "
             f"{LEARNED_EASY}.", "",
             "| task | learning rate | runs | mean easy (compared runs) | best variant's easy | learned | chosen |",
             "|---|---|---|---|---|---|---|"]
    for task, c in chosen.items():
        for lr, row in c["rates"].items():
            mean = "-" if row["mean_easy"] is None else f"{row['mean_easy']:.3f}"
            lines.append(f"| {task} | {lr:g} | {row['runs']} | {mean} | {row['best_variant_easy']:.3f} | "
                         f"{'yes' if row['learned'] else 'no'} | {'**yes**' if lr == c['chosen_lr'] else ''} |")
    lines += ["", "Rates are compared on the same (variant, seed) jobs: " + "; ".join(
        f"{task} {c['compared_on']} (seeds {', '.join(map(str, c['seeds'])) or '-'})" for task, c in chosen.items()) + ".",
        ""] + variant_table(chosen) + [
        "## Easy accuracy along training", "",
        "At each checkpoint: the mean over the rate's runs that recorded it (how many), and the best variant's seed "
        "mean (which variant).", ""]
    for task, c in chosen.items():
        for lr, row in c["rates"].items():
            marks = row["along_training"]
            if marks:
                lines.append(f"- {task}, {lr:g}: " + ", ".join(
                    f"step {s}: {m['mean']:.3f} ({m['runs']}) / {m['best']:.3f} ({m['best_variant']})" for s, m in marks.items()))
    return "\n".join(lines + ["", f"![easy accuracy along training]({DEVELOPMENT_PNG})", ""])


def variant_table(chosen: dict[str, dict]) -> list[str]:
    """Per task and variant, the easy accuracy at T_max at each rate: mean over the finished seeds (how many)."""
    lines = ["## Easy accuracy at T_max by variant", "", "Mean over the finished development seeds (their number).", ""]
    for task, c in chosen.items():
        rates = list(c["rates"])
        lines += [f"| {task} | " + " | ".join(f"lr {lr:g}" for lr in rates) + " |", "|---|" + "---|" * len(rates)]
        for v in sorted({v for row in c["rates"].values() for v in row["variants"]}):
            cells = [row["variants"].get(v) for row in c["rates"].values()]
            lines.append(f"| {v} | " + " | ".join("-" if x is None else f"{x[0]:.3f} ({x[1]})" for x in cells) + " |")
        lines.append("")
    return lines


def curves_plot(chosen: dict[str, dict], path: Path) -> None:
    """Per task: easy accuracy against training steps, per learning rate the mean over runs (solid) and the
    best variant (dashed), with the learned line."""
    plt = pyplot()
    fig, axes = plt.subplots(1, max(1, len(chosen)), figsize=(5.5 * max(1, len(chosen)), 4), squeeze=False)
    rates = sorted({lr for c in chosen.values() for lr in c["rates"]})  # one colour per rate in every panel
    for ax, (task, c) in zip(axes[0], chosen.items()):
        for lr, row in c["rates"].items():
            i = rates.index(lr)
            marks = row["along_training"]
            steps = list(marks)
            runs = max((marks[s]["runs"] for s in steps), default=0)
            ax.plot(steps, [marks[s]["mean"] for s in steps], color=f"C{i}", marker="o",
                    label=f"lr {lr:g}: mean, n = {runs}")
            ax.plot(steps, [marks[s]["best"] for s in steps], color=f"C{i}", ls="--", marker="^",
                    label=f"lr {lr:g}: best variant")
        ax.axhline(LEARNED_EASY, color="grey", ls=":", label=f"learned ({LEARNED_EASY})")
        ax.set(title=task, xlabel="training step", ylabel="easy accuracy at T_max", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7)
    fig.suptitle("Development: easy accuracy along training (development seeds)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
