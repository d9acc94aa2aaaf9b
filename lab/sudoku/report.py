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
RECIPES = {
    "sd-internal-layernorm": "3,000 steps, internal recall", "sd-input-layernorm": "3,000 steps, input recall",
    "sd-none-layernorm": "3,000 steps, no recall", "sd-long": "sd-internal-layernorm-s0 continued to 10,000 steps",
    "sd-2h": "one schedule over 112 minutes", "sd-2h-ddp": "sd-2h on two torchrun processes",
    "sd-2h-ema": "sd-2h + weight average 0.999",
}
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


def hardest_2000(run: Path, cap: int) -> dict | None:
    """Best accuracy and iteration over the first ``cap`` iterations on 2,000 ``hardest`` puzzles, from the
    evaluation kept with that cap or a longer one (halting off: the first ``cap`` iterations are the same)."""
    for name in ("eval-hardest-2000", "eval-hardest-2000-cap324"):
        path = run / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())["results"][0]
        acc = r["accuracy_by_iteration"]
        if max(map(int, acc)) >= cap:
            best, t = max((acc[str(t)], -t) for t in range(1, cap + 1))
            return {**r, "best_accuracy": best, "best_iteration": -t}
    return None


def last_metrics(run: Path) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def summary_table(runs_dir: Path) -> None:
    """The page's first table: best accuracy per hard tier (500 puzzles) and on 2,000 ``hardest`` puzzles."""
    print("| run | recipe | steps | hard | harder | hardest (500) | search | hardest, 2,000 puzzles |")
    print("|---|---|---|---|---|---|---|---|")
    for group in ("sd-internal-layernorm", "sd-input-layernorm", "sd-none-layernorm"):
        runs = sorted(runs_dir.glob(f"{group}-s*"))
        if not runs:
            continue
        cells = [" / ".join(f"{evals(r)[t]['best_accuracy']:.3f}" for r in runs) for t in TIERS[2:]]
        name = runs[0].name if len(runs) == 1 else f"{runs[0].name} / -{runs[1].name.rsplit('-', 1)[1]}"
        print(f"| {name} | {RECIPES[group]} | {last_metrics(runs[0])['step']:,} | " + " | ".join(cells) + " | - |")
    for name in LONG_RUNS:
        run = runs_dir / name
        if not evals(run):
            continue
        caps = [(cap, hardest_2000(run, cap)) for cap in (200, 324)]
        big = ", ".join(f"{r['best_accuracy']:.4f} (cap {cap})" for cap, r in caps if r) or "-"
        cells = [f"{evals(run)[t]['best_accuracy']:.3f}" for t in TIERS[2:]]
        print(f"| {name} | {RECIPES[name]} | {last_metrics(run)['step']:,} | " + " | ".join(cells) + f" | {big} |")


def long_table(runs_dir: Path) -> None:
    """The long runs: training time and the 2,000-puzzle ``hardest`` evaluations (500 puzzles where that is all)."""
    print("| run | steps | training time | s/step | hardest at 20 iterations | hardest, n=2,000, cap 200 (best iteration) "
          "| hardest, n=2,000, cap 324 (best iteration) | blank-cell accuracy, hardest |")
    print("|---|---|---|---|---|---|---|---|")
    for name in LONG_RUNS:
        run = runs_dir / name
        if not evals(run):
            continue
        m = last_metrics(run)
        cap200, cap324 = hardest_2000(run, 200), hardest_2000(run, 324)
        ref = cap200 or cap324 or evals(run)["hardest"]
        best = lambda r: f"{r['best_accuracy']:.4f} ({r['best_iteration']})" if r else "-"  # noqa: E731
        print(f"| {name} | {m['step']:,} | {m['elapsed_s']:,.0f} s | {m['elapsed_s'] / m['step']:.2f} | "
              f"{at(ref, 20):.3f} (n={ref['n']:,}) | {best(cap200)} | {best(cap324)} | "
              f"{ref['best_blank_accuracy']:.2f} (n={ref['n']:,}) |")


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
    print("## summary: best exact-grid accuracy\n")
    summary_table(runs_dir)
    print("\n## long runs\n")
    long_table(runs_dir)
    print("\n## runs: best exact-grid accuracy per tier (iteration)\n")
    run_table(runs_dir)
    print("\n## variants: mean (min-max) over seeds\n")
    variant_table(runs_dir)
    tiers_plot(runs_dir, out, "sd-internal-layernorm-s0", "sudoku_tiers.png")
    for name, filename in LONG_RUNS.items():
        tiers_plot(runs_dir, out, name, filename)
    variants_plot(runs_dir, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
