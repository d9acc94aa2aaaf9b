"""``REPORT.md``, ``summary.json`` and the PNG plots of a reproduction (rules v3), from its run records alone."""

from __future__ import annotations

import math
import subprocess
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..io import atomic_write, json_safe, write_json
from ..machine import describe as machine
from ..plotting import pyplot
from .budgets import NORMS, RECALLS
from .claims import (RULES, Verdict, baselines, c5_runs, grid_runs, learned, recall_outer, relative_hard_accuracy,
                     spearman, stability_score, tasks_of, variant, variants)

CURVES_PNG, SCORE_PNG = "accuracy_vs_iterations.png", "score_vs_accuracy.png"


def commit() -> str | None:
    """The git commit of the code that wrote the report, marked when the checkout has uncommitted changes."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = head.stdout.strip()
    return (sha + (" (with uncommitted changes)" if dirty.stdout.strip() else "")) if sha else None


def summary_run(r: dict) -> dict:
    """A run record without its curves, per-example outcomes and attractor traces, with its stability score."""
    out = {k: v for k, v in r.items() if k not in ("curves", "correct", "correct_at_train_depth")}
    if r.get("stability") is not None:
        out["stability"] = {k: v for k, v in r["stability"].items() if k != "examples"}
        out["stability_score"] = stability_score(r)
    return out


def write_report(out: Path, budget: str, records: list[dict], verdicts: list[Verdict], command: str,
                 expected: int, development: dict | None = None, development_png: str | None = None) -> None:
    """``expected``: the jobs of the budget, so that a report of a partial run says so. ``development``: the
    development phase's ``development.json``, whose easy accuracy along training the report shows for each task
    that is not learned; ``development_png``: the name of its plot, copied into ``out`` by the caller."""
    out.mkdir(parents=True, exist_ok=True)
    sha = commit()
    unlearned = development_of_unlearned(records, development)
    summary = {"rules": RULES, "budget": budget, "command": command, "commit": sha, "machine": machine(),
               "runs_finished": len(records), "runs_expected": expected,
               "verdicts": [asdict(v) for v in verdicts], "runs": [summary_run(r) for r in records]}
    if development is not None:
        summary["development"] = {"budget": development.get("budget"), "commit": development.get("commit"),
                                  "tasks_not_learned": unlearned}
    write_json(out / "summary.json", json_safe(summary))
    curves_plot(records, out / CURVES_PNG)
    score_plot(records, out / SCORE_PNG)
    text = markdown(budget, records, verdicts, command, sha, expected, unlearned_section(unlearned, development_png))
    atomic_write(out / "REPORT.md", lambda tmp: Path(tmp).write_text(text))


def development_of_unlearned(records: list[dict], development: dict | None) -> dict[str, dict]:
    """Per task not learned in ``records`` and present in ``development``: its chosen rate, whether development
    found it learned, and per rate the easy accuracy along training (mean over runs, best variant)."""
    tasks = (development or {}).get("tasks", {})
    return {t: {"chosen_lr": tasks[t]["chosen_lr"], "learned_in_development": tasks[t]["learned"],
                "along_training": {lr: row["along_training"] for lr, row in tasks[t]["rates"].items()}}
            for t in tasks_of(records) if t in tasks and not learned(records, t)[0]}


def unlearned_section(unlearned: dict[str, dict], png: str | None) -> list[str]:
    """Why each task not learned was not: its development runs' easy accuracy along training."""
    if not unlearned:
        return []
    lines = ["## Tasks not learned: development", "",
             "The development runs (development seeds, never judged) at each learning rate: easy accuracy at T_max "
             "along training, the mean over runs / the best variant's seed mean (which variant).", ""]
    for task, d in unlearned.items():
        lines.append(f"- **{task}** (chosen rate {d['chosen_lr']:g}; learned in development: "
                     f"{'yes' if d['learned_in_development'] else 'no'}):")
        for lr, marks in d["along_training"].items():
            lines.append(f"  - lr {float(lr):g}: " + ", ".join(
                f"step {s}: {m['mean']:.3f} / {m['best']:.3f} ({m['best_variant']})" for s, m in marks.items()))
    return lines + ["", f"![development: easy accuracy along training]({png})", ""] if png else lines + [""]


def trained_on(records: list[dict]) -> str:
    """The machines the runs trained on, as their records' clocks name them, with how many runs each."""
    counts = Counter(r.get("clock", {}).get("machine", "not recorded") for r in records)
    return "; ".join(f"{m} ({n} run{'s' if n != 1 else ''})" for m, n in counts.most_common())


def markdown(budget: str, records: list[dict], verdicts: list[Verdict], command: str, sha: str | None,
             expected: int, development: list[str] = ()) -> str:
    seeds = sorted({r["seed"] for r in records})
    partial = "" if len(records) == expected else f" **Partial: {len(records)} of {expected} runs finished.**"
    lines = [
        f"# Reproduction: Stability and Generalization in Looped Transformers (`{budget}` budget, rules v{RULES})", "",
        f"Command: `{command}`. Commit: `{sha or 'unknown'}`. Machine: {machine()}. Runs trained on: "
        f"{trained_on(records)}. Seeds: {', '.join(map(str, seeds))}. "
        f"{len(records)} runs.{partial} The paper's block (`--arch paper`); \"outer normalization\" is `post`. Data: this "
        "project's offline generators and puzzles (the paper's sets are downloaded at run time and cannot be fetched "
        "here). Hard accuracy is exact match at the evaluation cap T_max, halting off, averaged over the hard splits; "
        "differences are seed-averaged with 95% intervals from a two-level bootstrap (seeds, then examples, paired). "
        "Stability is analyzed on easy data only, on the attractor. The rules are in `looped/reproduce/claims.py`.", "",
        "## Claims", "", "| claim | verdict | evidence |", "|---|---|---|",
    ]
    lines += [f"| **{v.claim}** {v.statement} | **{v.verdict}** | {v.evidence} |" for v in verdicts]
    lines += ["", "## Tasks", "", "| task | learned | best variant's easy accuracy at T_max (mean over seeds) |", "|---|---|---|"]
    for t in tasks_of(records):
        ok, easy = learned(records, t)
        lines.append(f"| {t} | {'yes' if ok else '**no**'} | {easy:.3f} |")
    lines += ["", "A task is learned when that accuracy is at least 0.5; claims are judged on learned tasks only.", ""]
    lines += list(development)
    lines += paper_table(records) + attractor_table(records)
    for t in tasks_of(records):
        lines += task_section(records, t)
    lines += ["## Plots", "", f"![accuracy against iterations]({CURVES_PNG})", "",
              f"![stability score against hard accuracy]({SCORE_PNG})", ""]
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} +- {(max(values) - min(values)) / 2:.3f}"


def paper_table(records: list[dict]) -> list[str]:
    """Shaped like the paper's tables: rows norm x recall, columns tasks; easy / hard accuracy, seed mean +- half
    the spread."""
    tasks = tasks_of(records)
    rows = sorted({variant(r) for r in grid_runs(records)}, key=lambda v: (NORMS.index(v[1]) if v[1] in NORMS else 9,
                                                                         v[2], RECALLS.index(v[0])))
    lines = ["## Accuracy by variant (easy / hard at T_max; seed mean +- half the spread)", "",
             "| norm | residual | recall | " + " | ".join(tasks) + " |", "|---|---|---|" + "---|" * len(tasks)]
    for recall, norm, residual in rows:
        cells = []
        for t in tasks:
            runs = variants(records, t).get((recall, norm, residual), {})
            cells.append(f"{_spread([r['easy_accuracy'] for r in runs.values()])} / "
                         f"{_spread([r['hard_accuracy'] for r in runs.values()])}")
        lines.append(f"| {norm} | {residual} | {recall} | " + " | ".join(cells) + " |")
    cells = [f"{_spread([r['easy_accuracy'] for r in baselines(records, t).values()])} / "
             f"{_spread([r['hard_accuracy'] for r in baselines(records, t).values()])}" for t in tasks]
    lines += ["| 15 blocks, fixed depth | add | none | " + " | ".join(cells) + " |", ""]
    return lines


def attractor_table(records: list[dict]) -> list[str]:
    """The share of each attractor class over the analysed examples of each variant and task."""
    lines = ["## Attractors on easy data (share of analysed examples, over seeds)", "",
             "| task | variant | runs | classes |", "|---|---|---|---|"]
    for t in tasks_of(records):
        for v, runs in variants(records, t).items():
            counts, total = Counter(), 0
            for r in runs.values():
                for e in (r["stability"] or {}).get("examples", []):
                    counts[{"fixed": "fixed point", "cycle": f"{e['period']}-cycle"}.get(e["kind"], e["kind"])] += 1
                    total += 1
            shares = ", ".join(f"{k} {c / total:.0%}" for k, c in counts.most_common()) if total else "-"
            lines.append(f"| {t} | {'/'.join(v)} | {len(runs)} | {shares} |")
    return lines + [""]


def task_section(records: list[dict], task: str) -> list[str]:
    rs = [r for r in records if r["task"] == task]
    first = rs[0]
    lines = [f"## {task}", "",
             f"Easy splits {', '.join(first['easy'])}; hard splits {', '.join(first['hard'])}; {first['n_eval']} examples "
             f"per split; training depth {max(r['train_iters'] for r in rs)}; T_max {max(r['eval_iters'] for r in rs)}. "
             "Per variant, mean (min-max) over seeds. *Judged*: easy and hard accuracy at T_max. *Reported only*: hard "
             "accuracy at the training depth, the best over iterations (oracle) and where adaptive halting stops.", "",
             "| variant | easy | hard (T_max) | hard at N | hard oracle | hard halting | reachable | input-dependent | "
             "smooth | stability score |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v, runs in variants(records, task).items():
        group = list(runs.values())
        count = lambda key: f"{sum(bool(r['stability']['verdicts'][key]) for r in group)}/{len(group)}"  # noqa: E731
        lines.append(f"| {'/'.join(v)} | {_range(group, 'easy_accuracy')} | {_range(group, 'hard_accuracy')} | "
                     f"{_range(group, 'hard_accuracy_at_train_depth')} | {_range(group, 'hard_oracle_accuracy')} | "
                     f"{_range(group, 'hard_halting_accuracy')} | {count('reachable')} | {count('input_dependent')} | "
                     f"{count('smooth_and_backprop_stable')} | {_range_values([stability_score(r) for r in group])} |")
    base = list(baselines(records, task).values())
    if base:
        lines.append(f"| 15 blocks, fixed depth | {_range(base, 'easy_accuracy')} | {_range(base, 'hard_accuracy')} | - | "
                     f"- | - | - | - | - | - |")
    lines.append("")
    diverged = [r["name"] for r in rs if r.get("diverged")]
    if diverged:
        lines += [f"Loss turned non-finite in {', '.join(diverged)}; each is scored with its last good checkpoint.", ""]
    return lines


def _range(group: list[dict], key: str) -> str:
    return _range_values([r[key] for r in group])


def _range_values(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def curves_plot(records: list[dict], path: Path) -> None:
    """Per task: seed-mean accuracy against iterations on the first easy and the last hard split, with the band
    of the seeds' min and max; the fixed-depth baseline as a point at depth 1."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    tasks = tasks_of(records)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 3.8 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        rs = [r for r in records if r["task"] == task]
        keys = list(variants(records, task))
        for ax, split in zip(row, (rs[0]["easy"][0], rs[0]["hard"][-1])):
            for c, key in enumerate(keys):
                group = list(variants(records, task)[key].values())
                curves = np.array([r["curves"][split] for r in group])
                xs = np.arange(1, curves.shape[1] + 1)
                color = f"C{c % 10}"
                ls = "-" if key[1] == "post" else "--" if key[1] == "peri" else ":"
                ax.plot(xs, curves.mean(0), color=color, lw=1.8, ls=ls, label="/".join(key))
                ax.fill_between(xs, curves.min(0), curves.max(0), color=color, alpha=0.15)
            base = list(baselines(records, task).values())
            if base:
                ax.plot([1], [np.mean([r["curves"][split][-1] for r in base])], "k*", ms=12, label="15 blocks, fixed depth")
            ax.axvline(max(r["train_iters"] for r in rs), color="grey", ls=":", lw=1)
            ax.set_title(f"{task}: split {split} ({'easy' if split in rs[0]['easy'] else 'hard'})")
            ax.set_xlabel("iteration (dotted line: training depth)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("exact-match accuracy")
            ax.set_ylim(-0.02, 1.02)
        row[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Accuracy against iterations: mean over seeds, band from the lowest to the highest seed "
                 "(line style: post solid, peri dashed, pre dotted)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)


def score_plot(records: list[dict], path: Path) -> None:
    """C5's runs: stability score against hard accuracy / task best, and the label baseline beside it."""
    plt = pyplot()
    held = c5_runs(records)
    note = "held-out runs of learned tasks"
    if not held:
        held, note = [r for r in grid_runs(records) if r.get("stability")], "no held-out learned run: every run"
    rel = np.array(relative_hard_accuracy(held)) if held else np.zeros(0)
    score = np.array([stability_score(r) for r in held])
    label = np.array([float(recall_outer(r)) for r in held])
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(held))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    markers = dict(zip(tasks_of(held), "osD^vP"))
    for ax, xs, title in ((axes[0], score, f"stability score (easy data): Spearman {_sp(score, rel)}"),
                          (axes[1], label + jitter, f"label (recall + post = 1): Spearman {_sp(label, rel)}")):
        for i, r in enumerate(held):
            ax.scatter(xs[i], rel[i], s=60, alpha=0.7, marker=markers[r["task"]], edgecolor="k",
                       color="C3" if recall_outer(r) else "C0" if r["recall"] != "none" else "C7")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("hard accuracy at T_max / the task's best run")
        ax.grid(alpha=0.3)
    axes[1].set_xticks([0, 1], ["other", "recall + post"])
    for label_, color in (("recall + post", "C3"), ("other recall", "C0"), ("no recall", "C7")):
        axes[1].scatter([], [], s=60, color=color, edgecolor="k", label=label_)
    for t, m in markers.items():
        axes[1].scatter([], [], s=60, color="white", edgecolor="k", marker=m, label=t)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"C5: {note} ({len(held)})")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)


def _sp(a: np.ndarray, b: np.ndarray) -> str:
    v = spearman(a, b) if len(a) > 2 else math.nan
    return "n/a" if math.isnan(v) else f"{v:.2f}"
