"""``REPORT.md``, ``summary.json`` and the PNG plots of a reproduction, from its run records."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import runs
from .budgets import NORMS, RECALLS
from .claims import Verdict, relative_hard_accuracy, stability_score, tasks_of

VARIANTS = [(r, n) for r in RECALLS for n in NORMS]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {torch.get_num_threads()} threads{gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def write_report(out: Path, budget: str, records: list[dict], verdicts: list[Verdict], command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {"budget": budget, "command": command, "machine": machine(),
               "verdicts": [asdict(v) for v in verdicts],
               "runs": [{k: v for k, v in r.items() if k != "curves"} | {"stability_score": stability_score(r)}
                        for r in records]}
    runs.write_json(out / "summary.json", runs.json_safe(summary))
    curves_plot(records, out / "accuracy_vs_iterations.png")
    stability_plot(records, out / "stability_vs_accuracy.png")
    runs.atomic_write(out / "REPORT.md", lambda tmp: Path(tmp).write_text(markdown(budget, records, verdicts, command)))


def markdown(budget: str, records: list[dict], verdicts: list[Verdict], command: str) -> str:
    seeds = sorted({r["seed"] for r in records})
    lines = [
        f"# Reproduction: Stability and Generalization in Looped Transformers (`{budget}` budget)", "",
        f"Command: `{command}`. Machine: {machine()}. Seeds: {', '.join(map(str, seeds))}. "
        f"{len(records)} runs: recall {{{', '.join(RECALLS)}}} x outer norm {{{', '.join(NORMS)}}} x seeds x tasks "
        f"({', '.join(tasks_of(records))}). Stability is analyzed on easy data only.", "",
        "## Claims", "", "| claim | verdict | evidence |", "|---|---|---|",
    ]
    lines += [f"| **{v.claim}** {v.statement} | **{v.verdict}** | {v.evidence} |" for v in verdicts]
    lines += ["", "Verdicts are computed by `looped/reproduce/claims.py` from the runs below.", ""]
    for task in tasks_of(records):
        rs = [r for r in records if r["task"] == task]
        lines += [f"## {task}", "", f"Easy splits {', '.join(rs[0]['easy'])}; hard splits {', '.join(rs[0]['hard'])}; "
                  f"{rs[0]['n_eval']} examples per hard split. Accuracy is the best over iterations; mean (min-max) over "
                  "seeds. The stability columns count runs judged so by `looped analyze` on easy data.", "",
                  "| recall | outer norm | easy accuracy | hard accuracy | reachable | input-dependent | smooth | "
                  "stability score |", "|---|---|---|---|---|---|---|---|"]
        for recall, norm in VARIANTS:
            group = [r for r in rs if r["recall"] == recall and r["outer_norm"] == norm]
            if not group:
                continue
            count = lambda key: f"{sum(r['stability']['verdicts'][key] for r in group)}/{len(group)}"  # noqa: E731
            lines.append(f"| {recall} | {norm} | {_spread([r['easy_accuracy'] for r in group])} | "
                         f"{_spread([r['hard_accuracy'] for r in group])} | {count('reachable')} | "
                         f"{count('input_dependent')} | {count('smooth_and_backprop_stable')} | "
                         f"{_spread([stability_score(r) for r in group])} |")
        lines.append("")
    lines += ["## Plots", "", "![accuracy against iterations](accuracy_vs_iterations.png)", "",
              "![stability against hard accuracy](stability_vs_accuracy.png)", ""]
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def curves_plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = tasks_of(records)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        rs = [r for r in records if r["task"] == task]
        for ax, split in zip(row, (rs[0]["easy"][0], rs[0]["hard"][-1])):
            for i, (recall, norm) in enumerate(VARIANTS):
                group = [r["curves"][split] for r in rs if r["recall"] == recall and r["outer_norm"] == norm]
                if group:
                    mean = np.mean(group, axis=0)
                    ax.plot(range(1, len(mean) + 1), mean, color=f"C{RECALLS.index(recall)}",
                            ls="-" if norm != "none" else ":", label=f"{recall} / {norm}")
            ax.set_title(f"{task}: {split}")
            ax.set_xlabel("iteration")
            ax.set_ylabel("accuracy (mean over seeds)")
        row[0].legend(fontsize=7)
    fig.tight_layout()
    runs.atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def stability_plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = relative_hard_accuracy(records)
    panels = [
        ("stability score (easy data)", [stability_score(r) for r in records], False),
        (r"median $\rho(J_h)$", [_num(r["stability"]["rho_median"]) for r in records], False),
        (r"median cond$(I - J_h)$", [_num(r["stability"]["cond_median"]) for r in records], True),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    markers = {v: m for v, m in zip(VARIANTS, "os^vDP")}
    tasks = tasks_of(records)
    for ax, (label, xs, log) in zip(axes, panels):
        for r, x, y in zip(records, xs, rel):
            if math.isfinite(x):
                ax.scatter(x, y, color=f"C{tasks.index(r['task'])}", marker=markers[(r["recall"], r["outer_norm"])],
                           s=30, alpha=0.8)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("hard accuracy / task's best run")
    for t in tasks:
        axes[0].scatter([], [], color=f"C{tasks.index(t)}", label=t)
    for v, m in markers.items():
        axes[2].scatter([], [], color="grey", marker=m, label=f"{v[0]} / {v[1]}")
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    runs.atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def _num(v: float | None) -> float:
    return math.nan if v is None else float(v)
