"""Stability numbers against hard accuracy for every run of a ``looped reproduce`` summary.

Usage: python lab/reproduction/stability_figure.py SUMMARY_JSON OUT_PNG

Three panels, one point per grid run: the summary's ``stability_score``, the median spectral radius
``rho(J_h)`` and the median ``cond(I - J_h)`` (log scale) against hard accuracy over the task's best
run. Colour: recall / outer norm; marker: task. Points that share a value are spread sideways so
that none hides another (the score and rho are often tied at 0 and 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

VARIANTS = [(r, n) for r in ("none", "input", "internal") for n in ("none", "layernorm")]
MARKERS = "osD^vP"


def spread(values: np.ndarray, width: float, log: bool, rng: np.random.Generator) -> np.ndarray:
    """Offset tied values sideways by up to ``width`` (a factor of 10**width on a log axis)."""
    tied = np.array([np.sum(values == v) > 1 for v in values])
    offset = np.where(tied, rng.uniform(-width, width, len(values)), 0.0)
    return values * 10**offset if log else values + offset


def main(summary: Path, out: Path) -> None:
    runs = [r for r in json.loads(summary.read_text())["runs"] if r.get("stability") and not r.get("baseline")]
    tasks = sorted({r["task"] for r in runs})
    best = {t: max(r["hard_accuracy"] for r in runs if r["task"] == t) for t in tasks}
    rel = np.array([r["hard_accuracy"] / best[r["task"]] if best[r["task"]] > 0 else 0.0 for r in runs])
    panels = [("stability_score", "stability score (easy data)", False, 0.05),
              ("rho_median", r"median $\rho(J_h)$", False, 0.03),
              ("cond_median", r"median cond$(I - J_h)$", True, 0.15)]
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), sharey=True)
    for ax, (key, label, log, width) in zip(axes, panels):
        raw = [r.get(key) if key == "stability_score" else r["stability"].get(key) for r in runs]
        ok = np.array([v is not None for v in raw])
        xs = spread(np.array([v if v is not None else np.nan for v in raw], float), width, log, rng)
        for vi, (recall, norm) in enumerate(VARIANTS):
            for ti, task in enumerate(tasks):
                sel = [i for i, r in enumerate(runs) if ok[i] and (r["recall"], r["outer_norm"], r["task"]) == (recall, norm, task)]
                ax.scatter(xs[sel], rel[sel], s=90, alpha=0.75, marker=MARKERS[ti], color=f"C{vi}", edgecolor="k")
        ax.set_xscale("log" if log else "linear")
        ax.set_xlabel(label + (f" ({(~ok).sum()} runs not measured)" if (~ok).any() else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("hard accuracy / task's best run")
    for vi, (recall, norm) in enumerate(VARIANTS):
        axes[2].scatter([], [], s=90, color=f"C{vi}", edgecolor="k", label=f"{recall} / {norm}")
    for ti, task in enumerate(tasks):
        axes[2].scatter([], [], s=90, color="white", edgecolor="k", marker=MARKERS[ti], label=task)
    axes[2].legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), title="recall / outer norm, task")
    fig.suptitle(f"{len(runs)} runs of {summary}: stability on easy data against hard accuracy (tied points spread sideways)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(Path(sys.argv[1]), Path(sys.argv[2]))
