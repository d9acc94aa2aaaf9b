"""Accuracy against iterations for the binary-addition run (docs/custom_tasks.md), from its eval JSON.

    python lab/custom_tasks/report.py lab/custom_tasks/addition

reads ``eval/eval.json`` (random operands) and ``eval-carry/eval.json`` (long carries) under the
folder, prints the table of the page and writes ``addition.png`` there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TRAIN_BITS = 16
PANELS = (("eval", "random operands", "center right"), ("eval-carry", "one carry through most digits", "center left"))


def curves(path: Path) -> list[dict]:
    return json.loads(path.read_text())["results"]


def first_at(accuracy: list[float], level: float) -> int | None:
    return next((t + 1 for t, a in enumerate(accuracy) if a >= level), None)


def main(folder: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    print("| split | bits | x training length | n | best accuracy (iteration) | first iteration at 99% | accuracy at 160 |")
    print("|---|---|---|---|---|---|---|")
    for ax, (sub, title, legend) in zip(axes, PANELS):
        for r in curves(folder / sub / "eval.json"):
            acc = [r["accuracy_by_iteration"][str(t)] for t in range(1, len(r["accuracy_by_iteration"]) + 1)]
            bits = int(r["split"].removeprefix("carry"))
            ax.plot(range(1, len(acc) + 1), acc, lw=2, label=f"{bits} bits ({bits // TRAIN_BITS}x)")
            hit = first_at(acc, 0.99)
            print(f"| {r['split']} | {bits} | {bits // TRAIN_BITS} | {r['n']} | {r['best_accuracy']:.3f} "
                  f"({r['best_iteration']}) | {hit if hit else 'never'} | {acc[-1]:.3f} |")
        ax.axvline(TRAIN_BITS, color="grey", ls=":", lw=1)
        ax.text(TRAIN_BITS + 1, 0.03, "training depth", color="grey", fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("iteration (log scale)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc=legend)
    axes[0].set_ylabel("exact-match accuracy (whole sum)")
    axes[0].set_ylim(-0.02, 1.02)
    fig.suptitle(f"binary addition from JSONL files: trained on {TRAIN_BITS}-bit operands only", fontsize=12)
    fig.tight_layout()
    fig.savefig(folder / "addition.png", dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
