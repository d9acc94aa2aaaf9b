"""Tables and plots for docs/results/prefix_sums.md from the study's eval JSON files.

Usage: python scripts/prefix_sums_report.py RUNS_DIR OUT_DIR
Reads RUNS_DIR/ps-*/eval-1000.json (and eval-10k.json where present); writes PNGs to OUT_DIR and
prints Markdown tables.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path: Path) -> dict:
    return {r["length"]: r for r in json.loads(path.read_text())["results"]}


def curve(r: dict) -> tuple[list[int], list[float]]:
    its = sorted(map(int, r["accuracy_by_iteration"]))
    return its, [r["accuracy_by_iteration"][str(t)] for t in its]


def residual_curve(r: dict) -> tuple[list[int], list[float]]:
    its = sorted(map(int, r["residual_by_iteration"]))
    return its, [r["residual_by_iteration"][str(t)] for t in its]


def main(runs_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    runs = sorted(p for p in runs_dir.glob("ps-*") if (p / "eval-1000.json").exists())
    evals = {p.name: load(p / "eval-1000.json") for p in runs}

    print("| run | 32-bit best (iter) | 512-bit best (iter) | 512-bit at 2x best iter | 1024-bit best (iter) | final residual (512) |")
    print("|---|---|---|---|---|---|")
    for name, e in evals.items():
        cells = []
        for L in (32, 512):
            r = e[L]
            cells.append(f"{r['best_accuracy']:.3f} ({r['best_iteration']})")
        r512 = e[512]
        twice = min(2 * r512["best_iteration"], max(map(int, r512["accuracy_by_iteration"])))
        cells.append(f"{r512['accuracy_by_iteration'][str(twice)]:.3f} ({twice})")
        r = e.get(1024)
        cells.append(f"{r['best_accuracy']:.3f} ({r['best_iteration']})" if r else "-")
        cells.append(f"{r512['final_residual']:.1e}")
        print(f"| {name} | " + " | ".join(cells) + " |")

    tenk = {p.name: load(p / "eval-10k.json") for p in runs if (p / "eval-10k.json").exists()}
    if tenk:
        print("\n| run | n | 512-bit best accuracy | at iteration | final accuracy |")
        print("|---|---|---|---|---|")
        for name, e in tenk.items():
            r = e[512]
            print(f"| {name} | {r['n']} | {r['best_accuracy']:.4f} | {r['best_iteration']} | {r['final_accuracy']:.4f} |")

    for L in (512, 1024):
        fig, (ax, axr) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
        for name, e in evals.items():
            if L in e:
                ax.plot(*curve(e[L]), label=name.removeprefix("ps-"))
                axr.plot(*residual_curve(e[L]), label=name.removeprefix("ps-"))
        ax.set_ylabel(f"exact match, {L}-bit (n=1000)")
        ax.set_title(f"prefix sums: trained on 32 bits, tested on {L}")
        ax.legend(fontsize=7)
        axr.set_yscale("log")
        axr.set_ylabel("relative residual")
        axr.set_xlabel("iteration")
        fig.tight_layout()
        fig.savefig(out / f"prefix_sums_{L}.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
