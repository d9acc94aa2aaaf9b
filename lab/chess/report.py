"""Tables and plots for lab/chess/README.md from the chess study's outputs.

Usage: python lab/chess/report.py RUNS_DIR OUT_DIR [BEST_RUN]
Reads RUNS_DIR/ch-*/eval.json and metrics.jsonl (RUNS_DIR is the study's run folder, or the committed
copy lab/chess/runs); writes PNGs to OUT_DIR and prints Markdown tables.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUNS = ["internal-layernorm", "input-layernorm", "none-layernorm", "passthrough", "input-long", "passthrough-long"]
MATES = ["mate1", "mate2", "mate3", "mate4", "mate5"]


def evals(run: Path) -> dict:
    path = run / "eval.json"
    if not path.exists() or not path.stat().st_size:
        return {}
    return {r["split"]: r for r in json.loads(path.read_text())["results"]}


def series(r: dict, key: str) -> tuple[list[int], list[float]]:
    its = sorted(map(int, r[key]))
    return its, [r[key][str(t)] for t in its]


def table(runs_dir: Path, key: str, title: str) -> None:
    """Splits as rows, runs as columns: the best accuracy over iterations (its iteration), the accuracy
    at the last iteration, and at iteration 1."""
    found = {name: evals(runs_dir / f"ch-{name}") for name in RUNS}
    found = {k: v for k, v in found.items() if v}
    if not found:
        return
    print(f"### {title}: best over iterations (at iteration) / at the last iteration / at iteration 1\n")
    print("| split (n) | " + " | ".join(found) + " |")
    print("|---|" + "---|" * len(found))
    for s in next(iter(found.values())):
        cells = []
        for e in found.values():
            its, acc = series(e[s], f"{key}_by_iteration")
            best = max(range(len(acc)), key=acc.__getitem__)
            cells.append(f"{acc[best]:.3f} ({its[best]}) / {acc[-1]:.3f} / {acc[0]:.3f}")
        print(f"| {s} ({next(iter(found.values()))[s]['n']}) | " + " | ".join(cells) + " |")
    print()


def plots(runs_dir: Path, out: Path, best: str) -> None:
    e = evals(runs_dir / f"ch-{best}")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, key, title in zip(axes, ("accuracy", "legal"), ("exact from- and to-square", "best legal move")):
        for s, r in e.items():
            ax.plot(*series(r, f"{key}_by_iteration"), label=s, ls="-" if s.startswith("mate") else "--")
        ax.set_title(f"chess, ch-{best}: {title}")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(out / "chess_splits.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    for ax, split in zip(axes, ("mate3", "mate5", "rated-1400-1800")):
        for name in RUNS:
            r = evals(runs_dir / f"ch-{name}").get(split)
            if not r:
                continue
            its, acc = series(r, "legal_by_iteration")
            if len(its) == 1:  # a pass-through: one iteration, drawn as its level across the plot
                (line,) = ax.plot(its, acc, marker="D", ms=8, ls="none", label=f"{name} (1 iteration)")
                ax.axhline(acc[0], color=line.get_color(), ls=":", lw=1.2)
            else:
                ax.plot(its, acc, lw=1.8, label=name)
        ax.set_title(f"{split}: best legal move")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=6, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out / "chess_variants.png", dpi=110)
    plt.close(fig)


def main(runs_dir: Path, out: Path, best: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table(runs_dir, "accuracy", "exact from- and to-square (the paper's top-2 protocol)")
    table(runs_dir, "legal", "best legal move")
    plots(runs_dir, out, best)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "input-long")
