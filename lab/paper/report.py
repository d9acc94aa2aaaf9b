"""The table and plot of docs/paper.md from the paper-cpu runs (``lab/paper/paper_cpu.sh``).

    python lab/paper/report.py RUNS_DIR OUT_DIR

Reads RUNS_DIR/paper-cpu-TASK/curve.json (the eval JSON, halting off) and metrics.jsonl (steps and
training time), prints a Markdown table and writes OUT_DIR/paper_cpu.png: accuracy against iterations,
one panel per task, easy splits solid and hard ones dashed, the training depth dotted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TASKS = {"prefix-sums": ("32",), "sudoku": ("easy", "medium"), "chess": ("mate1", "mate2")}  # task -> easy splits


def load(runs: Path, task: str) -> tuple[dict, dict]:
    run = runs / f"paper-cpu-{task}"
    curve = json.loads((run / "curve.json").read_text())
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return curve, metrics[-1]


def main() -> None:
    runs, out = Path(sys.argv[1]), Path(sys.argv[2])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    print("| task | split | easy or hard | n | best (iteration) | at the training depth 30 | at the cap (iteration) |")
    print("|---|---|---|---|---|---|---|")
    fig, axes = plt.subplots(1, len(TASKS), figsize=(5.2 * len(TASKS), 4.2), squeeze=False)
    for ax, task in zip(axes[0], TASKS):
        path = runs / f"paper-cpu-{task}" / "curve.json"
        if not path.exists():
            ax.set_title(f"{task}: not run")
            continue
        curve, last = load(runs, task)
        for i, r in enumerate(curve["results"]):
            acc = [r["accuracy_by_iteration"][str(t)] for t in range(1, curve["max_iters"] + 1)]
            kind = "easy" if r["split"] in TASKS[task] else "hard"
            print(f"| {task} | {r['split']} | {kind} | {r['n']} | {r['best_accuracy']:.3f} ({r['best_iteration']}) | "
                  f"{acc[min(30, len(acc)) - 1]:.3f} | {acc[-1]:.3f} ({len(acc)}) |")
            ax.plot(range(1, len(acc) + 1), acc, color=f"C{i}", ls="-" if kind == "easy" else "--",
                    label=f"{r['split']} ({kind})")
        ax.axvline(30, color="grey", ls=":", lw=1)
        ax.set_title(f"{task}: {last['step']:,} steps, {last['elapsed_s'] / 60:.0f} min")
        ax.set_xlabel("iteration (dotted: training depth 30)")
        ax.set_ylabel("exact-match accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("The paper's block, paper-cpu preset (seed 0): accuracy against iterations, halting off")
    fig.tight_layout()
    fig.savefig(out / "paper_cpu.png", dpi=100)


if __name__ == "__main__":
    main()
