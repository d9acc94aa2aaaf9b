"""``REPORT.md``, ``summary.json`` and the PNG plots of a reproduction, from its run records alone."""

from __future__ import annotations

import math
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write, json_safe, write_json
from ..model import RECALLS
from .budgets import NORMS
from .claims import (RECALL_NORM, RULES, Verdict, baselines, c5_runs, grid_runs, learned, relative_hard_accuracy,
                     spearman, stability_score, tasks_of)

VARIANTS = [(r, n) for r in RECALLS for n in NORMS]
CURVES_PNG, SCORE_PNG = "accuracy_vs_iterations.png", "score_vs_accuracy.png"
Z95 = 1.96  # the plots' normal 95% band


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {torch.get_num_threads()} threads{gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def commit() -> str | None:
    """The git commit of the code that wrote the report, marked when the checkout has uncommitted
    changes (None outside a git checkout)."""
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
    """A run record without its curves and per-example outcomes, with its stability score."""
    return {k: v for k, v in r.items() if k not in ("curves", "correct", "correct_at_train_depth")} | {
        "stability_score": None if r.get("stability") is None else stability_score(r)}


def write_report(out: Path, budget: str, records: list[dict], verdicts: list[Verdict], command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sha = commit()
    summary = {"rules": RULES, "budget": budget, "command": command, "commit": sha, "machine": machine(),
               "verdicts": [asdict(v) for v in verdicts], "runs": [summary_run(r) for r in records]}
    write_json(out / "summary.json", json_safe(summary))
    curves_plot(records, out / CURVES_PNG)
    score_plot(records, out / SCORE_PNG)
    text = markdown(budget, records, verdicts, command, sha)
    atomic_write(out / "REPORT.md", lambda tmp: Path(tmp).write_text(text))


def markdown(budget: str, records: list[dict], verdicts: list[Verdict], command: str, sha: str | None) -> str:
    seeds = sorted({r["seed"] for r in records})
    tasks = tasks_of(records)
    lines = [
        f"# Reproduction: Stability and Generalization in Looped Transformers (`{budget}` budget, rules v{RULES})", "",
        f"Command: `{command}`. Commit: `{sha or 'unknown'}`. Machine: {machine()}. Seeds: {', '.join(map(str, seeds))}. "
        f"{len(records)} runs: recall {{{', '.join(RECALLS)}}} x outer norm {{{', '.join(NORMS)}}} x seeds x tasks "
        f"({', '.join(tasks)}), plus one fixed-depth baseline per task and seed. Stability is analyzed on easy data "
        "only. Hard accuracy is exact match at the evaluation cap T_max, halting off, averaged over the hard splits; "
        "differences are seed-averaged with 95% paired bootstrap intervals over examples. The rules are in "
        "`looped/reproduce/claims.py`.", "",
        "## Claims", "", "| claim | verdict | evidence |", "|---|---|---|",
    ]
    lines += [f"| **{v.claim}** {v.statement} | **{v.verdict}** | {v.evidence} |" for v in verdicts]
    lines += ["", "## Tasks", "", "| task | learned | best variant's easy accuracy at T_max (mean over seeds) |",
              "|---|---|---|"]
    for t in tasks:
        ok, easy = learned(records, t)
        lines.append(f"| {t} | {'yes' if ok else '**no**'} | {easy:.3f} |")
    lines += ["", "A task is learned when that accuracy is at least 0.5; claims are judged on learned tasks only.", ""]
    for t in tasks:
        lines += task_section(records, t)
    lines += ["## Plots", "", f"![accuracy against iterations]({CURVES_PNG})", "",
              f"![stability score against hard accuracy]({SCORE_PNG})", ""]
    return "\n".join(lines)


def task_section(records: list[dict], task: str) -> list[str]:
    rs = [r for r in records if r["task"] == task]
    first = rs[0]
    lines = [f"## {task}", "",
             f"Easy splits {', '.join(first['easy'])}; hard splits {', '.join(first['hard'])}; {first['n_eval']} examples "
             f"per split; training depth N = {first['train_iters']}; T_max = "
             f"{max(r['eval_iters'] for r in rs)}. Mean (min-max) over seeds. *Judged*: easy and hard accuracy at "
             "T_max. *Reported only*: hard accuracy at N, the best over iterations (oracle) and where adaptive halting "
             "stops. Stability columns count runs judged so by `looped analyze` on easy data.", "",
             "| recall | outer norm | easy | hard (T_max) | hard at N | hard oracle | hard halting | reachable | "
             "input-dependent | smooth | stability score |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for recall, norm in VARIANTS:
        group = [r for r in grid_runs(rs) if r["recall"] == recall and r["outer_norm"] == norm]
        if not group:
            continue
        count = lambda key: f"{sum(r['stability']['verdicts'][key] for r in group)}/{len(group)}"  # noqa: E731
        lines.append(f"| {recall} | {norm} | {_spread(group, 'easy_accuracy')} | {_spread(group, 'hard_accuracy')} | "
                     f"{_spread(group, 'hard_accuracy_at_train_depth')} | {_spread(group, 'hard_oracle_accuracy')} | "
                     f"{_spread(group, 'hard_halting_accuracy')} | {count('reachable')} | {count('input_dependent')} | "
                     f"{count('smooth_and_backprop_stable')} | "
                     f"{_spread_values([stability_score(r) for r in group])} |")
    base = list(baselines(records, task).values())
    if base:
        lines.append(f"| fixed depth N (internal) | layernorm | {_spread(base, 'easy_accuracy')} (at N) | "
                     f"{_spread(base, 'hard_accuracy')} (at N) | {_spread(base, 'hard_accuracy_at_train_depth')} | "
                     f"{_spread(base, 'hard_oracle_accuracy')} | {_spread(base, 'hard_halting_accuracy')} | - | - | - | - |")
    lines.append("")
    diverged = [r["name"] for r in rs if r.get("diverged")]
    if diverged:
        lines += [f"Loss turned non-finite in {', '.join(diverged)}; each is scored with its last good checkpoint.", ""]
    return lines


def _spread(group: list[dict], key: str) -> str:
    return _spread_values([r[key] for r in group])


def _spread_values(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_plot(records: list[dict], path: Path) -> None:
    """Per task: mean accuracy over seeds against iterations on the first easy and the last hard split,
    with a normal 95% band over examples; the fixed-depth baseline as a point at N."""
    plt = _pyplot()
    tasks = tasks_of(records)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 3.8 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        rs = [r for r in records if r["task"] == task]
        for ax, split in zip(row, (rs[0]["easy"][0], rs[0]["hard"][-1])):
            for recall, norm in VARIANTS:
                group = [r for r in grid_runs(rs) if r["recall"] == recall and r["outer_norm"] == norm]
                if not group:
                    continue
                mean = np.mean([r["curves"][split] for r in group], axis=0)
                half = Z95 * np.sqrt(mean * (1 - mean) / rs[0]["n_eval"])
                xs = np.arange(1, len(mean) + 1)
                color = f"C{VARIANTS.index((recall, norm))}"
                ax.plot(xs, mean, color=color, lw=2, ls="-" if norm != "none" else "--", label=f"{recall} / {norm}")
                ax.fill_between(xs, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1), color=color, alpha=0.2)
            base = list(baselines(rs, task).values())
            if base:
                y = float(np.mean([r["curves"][split][-1] for r in base]))
                ax.errorbar([rs[0]["train_iters"]], [y], yerr=[Z95 * math.sqrt(y * (1 - y) / rs[0]["n_eval"])],
                            fmt="k*", ms=14, capsize=4, label="fixed depth N (baseline)")
            ax.axvline(rs[0]["train_iters"], color="grey", ls=":", lw=1)
            ax.set_title(f"{task}: split {split} ({'easy' if split in rs[0]['easy'] else 'hard'})")
            ax.set_xlabel("iteration (dotted line: training depth N)")
            ax.set_ylabel("exact-match accuracy")
            ax.set_ylim(-0.02, 1.02)
        row[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Accuracy against iterations, mean over seeds (band: 95% over examples)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def score_plot(records: list[dict], path: Path) -> None:
    """C5's runs: stability score against hard accuracy / task best, and the label baseline beside it."""
    plt = _pyplot()
    held = c5_runs(records)
    note = "held-out runs of learned tasks"
    if not held:
        held, note = [r for r in grid_runs(records) if r.get("stability")], "no held-out learned run: every grid run"
    rel = np.array(relative_hard_accuracy(held)) if held else np.zeros(0)
    score = np.array([stability_score(r) for r in held])
    label = np.array([float(RECALL_NORM(r)) for r in held])
    tasks = tasks_of(held)
    markers = dict(zip(tasks, "osD^vP"))
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.12, 0.12, len(held))  # spread piled-up points
    span = max(float(np.ptp(score)), 0.1) if len(score) else 0.1
    tied = np.array([np.sum(score == v) > 1 for v in score])
    score_x = score + np.where(tied, rng.uniform(-0.02, 0.02, len(held)) * span, 0.0)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    panels = ((axes[0], score_x, f"stability score (easy data): Spearman {spearman(score, rel):.2f}"),
              (axes[1], label + jitter, f"label baseline, recall + outer norm = 1: Spearman {spearman(label, rel):.2f}"))
    for ax, xs, title in panels:
        for (recall, norm) in VARIANTS:
            for t in tasks:
                sel = [i for i, r in enumerate(held) if (r["recall"], r["outer_norm"], r["task"]) == (recall, norm, t)]
                if sel:
                    ax.scatter(xs[sel], rel[sel], s=80, alpha=0.7, marker=markers[t], edgecolor="k",
                               color=f"C{VARIANTS.index((recall, norm))}")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("hard accuracy at T_max / task's best run")
        ax.grid(alpha=0.3)
    axes[0].set_xlabel("stability score (tied points jittered horizontally)")
    axes[1].set_xlabel("label (points jittered horizontally)")
    axes[1].set_xticks([0, 1], ["other", "recall + outer norm"])
    for recall, norm in VARIANTS:
        axes[1].scatter([], [], s=80, color=f"C{VARIANTS.index((recall, norm))}", edgecolor="k",
                        label=f"{recall} / {norm}")
    for t in tasks:
        axes[1].scatter([], [], s=80, color="white", edgecolor="k", marker=markers[t], label=t)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"C5: {note} ({len(held)})")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
