"""Tables and plots for lab/sudoku/README.md from the sudoku study's outputs.

Usage: python lab/sudoku/report.py RUNS_DIR OUT_DIR
Reads RUNS_DIR/sd-*/eval.json and metrics.jsonl (the study's runs and the long runs sd-long, sd-2h,
sd-2h-ddp and sd-2h-ema; RUNS_DIR is the study's run folder, or the committed copy
lab/sudoku/runs); writes PNGs to OUT_DIR and prints Markdown tables.
"""

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TIERS = ["easy", "medium", "hard", "harder", "hardest", "search"]
RECALLS = ["internal", "input", "none"]
LONG_RUNS = {  # run -> its plot
    "sd-long": "sudoku_long_tiers.png", "sd-2h": "sudoku_2h_tiers.png", "sd-2h-ddp": "sudoku_2h_ddp_tiers.png",
    "sd-2h-ema": "sudoku_2h_ema_tiers.png",
}


def evals(run: Path) -> dict:
    path = run / "eval.json"
    if not path.exists() or not path.stat().st_size:
        return {}
    return {r["split"]: r for r in json.loads(path.read_text())["results"]}


def runs_of(runs_dir: Path, recall: str) -> list[Path]:
    return sorted(p for p in runs_dir.glob(f"sd-{recall}-layernorm-s*") if evals(p))


def series(r: dict, key: str = "accuracy_by_iteration") -> tuple[list[int], list[float]]:
    its = sorted(map(int, r[key]))
    return its, [r[key][str(t)] for t in its]


def at(r: dict, t: int, key: str = "accuracy_by_iteration") -> float:
    return r[key][str(min(t, max(map(int, r[key]))))]


def run_table(runs_dir: Path) -> None:
    print("| run | n per tier | " + " | ".join(TIERS) + " | valid (hardest) | train wall time |")
    print("|---|---|" + "---|" * len(TIERS) + "---|---|")
    long = [runs_dir / name for name in LONG_RUNS if evals(runs_dir / name)]
    for run in [r for recall in RECALLS for r in runs_of(runs_dir, recall)] + long:
        e = evals(run)
        metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
        cells = [f"{e[t]['best_accuracy']:.3f} ({e[t]['best_iteration']})" for t in TIERS]
        valid = e["hardest"].get("best_valid", float("nan"))
        print(f"| {run.name} | {e['easy']['n']} | " + " | ".join(cells) +
              f" | {valid:.3f} | {metrics[-1]['elapsed_s'] / 60:.0f} min |")


def variant_table(runs_dir: Path) -> None:
    print("| recall (+ LayerNorm) | seeds | hard | harder | hardest | search | hardest at 20 iterations (training depth) "
          "| residual at the last iteration (hardest) |")
    print("|---|---|---|---|---|---|---|---|")
    for recall in RECALLS:
        rs = [evals(r) for r in runs_of(runs_dir, recall)]
        if not rs:
            continue

        def cell(values):
            if len(values) == 1:
                return f"{values[0]:.3f}"
            return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"

        tiers = [cell([e[t]["best_accuracy"] for e in rs]) for t in ("hard", "harder", "hardest", "search")]
        residual = " / ".join(f"{e['hardest']['final_residual']:.1e}" for e in rs)
        print(f"| {recall} | {len(rs)} | " + " | ".join(tiers) + f" | {cell([at(e['hardest'], 20) for e in rs])} "
              f"| {residual} |")


def tiers_plot(runs_dir: Path, out: Path, name: str, filename: str) -> None:
    e = evals(runs_dir / name)
    if not e:
        return
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for t in TIERS:
        ax.plot(*series(e[t]), label=t)
        axr.plot(*series(e[t], "residual_by_iteration"), label=t)
    ax.axvline(20, color="grey", ls=":", lw=1)
    ax.text(21, 0.02, "training depth", color="grey", fontsize=8)
    ax.set_ylabel("exact grids")
    ax.set_title(f"sudoku, {name}: trained on easy + medium only")
    ax.legend(fontsize=8)
    axr.set_yscale("log")
    axr.set_ylabel("relative residual")
    axr.set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(out / filename, dpi=110)
    plt.close(fig)


def variants_plot(runs_dir: Path, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"internal": "C0", "input": "C1", "none": "C2"}
    for recall in RECALLS:
        for i, run in enumerate(runs_of(runs_dir, recall)):
            for ax, tier in zip(axes, ("hardest", "search")):
                ax.plot(*series(evals(run)[tier]), color=colors[recall], ls="-" if i == 0 else "--",
                        label=f"{recall} ({run.name[-2:]})")
    for ax, tier in zip(axes, ("hardest", "search")):
        ax.set_title(f"tier {tier}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("exact grids")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "sudoku_variants.png", dpi=110)
    plt.close(fig)


def main(runs_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print("## runs: best exact-grid accuracy per tier (iteration)\n")
    run_table(runs_dir)
    print("\n## variants: mean (min-max) over seeds\n")
    variant_table(runs_dir)
    tiers_plot(runs_dir, out, "sd-internal-layernorm-s0", "sudoku_tiers.png")
    for name, filename in LONG_RUNS.items():
        tiers_plot(runs_dir, out, name, filename)
    variants_plot(runs_dir, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
