"""Tables and plots for lab/prefix_sums/ and the table of lab/stability/, from the study.

Usage: python lab/prefix_sums/report.py RUNS_DIR OUT_DIR
Reads RUNS_DIR/ps-*/eval-{main,var,long,tenk}.json and RUNS_DIR/ps-*/[analysis/]analysis.json
(RUNS_DIR is the study's run folder, or the committed copy lab/prefix_sums/runs);
writes PNGs to OUT_DIR and prints Markdown tables.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

VARIANTS = ["internal-layernorm", "input-layernorm", "none-layernorm", "internal-none", "input-none", "none-none"]


def results(path: Path) -> dict:
    if not path.exists() or not path.stat().st_size:
        return {}
    return {int(r["split"]): r for r in json.loads(path.read_text())["results"]}  # by length in bits


def series(r: dict, key: str) -> tuple[list[int], list[float]]:
    its = sorted(map(int, r[key]))
    return its, [r[key][str(t)] for t in its]


def first_reaching(r: dict, level: float) -> str:
    for t, a in zip(*series(r, "accuracy_by_iteration")):
        if a >= level:
            return str(t)
    return "never"


def evals(run: Path) -> dict:
    out = results(run / "eval-var.json") or results(run / "eval-main.json")
    return {**out, **{("long", k): v for k, v in results(run / "eval-long.json").items()},
            **{("tenk", k): v for k, v in results(run / "eval-tenk.json").items()}}


def variant_table(runs_dir: Path) -> None:
    print("| recall | outer norm | 32-bit best (iter) | 512-bit best (iter) | n (512) | 512-bit final (iter) | final residual (512) |")
    print("|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        e = evals(runs_dir / f"ps-{v}-s0")
        if 512 not in e:
            continue
        r32, r512 = e[32], e[512]
        last = max(map(int, r512["accuracy_by_iteration"]))
        recall, norm = v.split("-")
        print(f"| {recall} | {norm} | {r32['best_accuracy']:.3f} ({r32['best_iteration']}) | {r512['best_accuracy']:.3f} "
              f"({r512['best_iteration']}) | {r512['n']} | {r512['final_accuracy']:.3f} ({last}) | {r512['final_residual']:.2e} |")


def seed_table(runs_dir: Path) -> None:
    print("| seed | 512-bit best, n=1000 (iter) | first iter >= 99% | 512-bit at 2x best iter | 1024-bit best, n=1000 (iter) | first iter >= 95% | 512-bit best, n=10000 (iter) |")
    print("|---|---|---|---|---|---|---|")
    for s in range(3):
        run = runs_dir / f"ps-internal-layernorm-s{s}"
        e = evals(run)
        if 512 not in e:
            continue
        r = e[512]
        twice = min(2 * r["best_iteration"], max(map(int, r["accuracy_by_iteration"])))
        long, tenk = e.get(("long", 1024)), e.get(("tenk", 512))
        cells = [f"{r['best_accuracy']:.4f} ({r['best_iteration']})", first_reaching(r, 0.99),
                 f"{r['accuracy_by_iteration'][str(twice)]:.4f} ({twice})",
                 f"{long['best_accuracy']:.4f} ({long['best_iteration']})" if long else "-",
                 first_reaching(long, 0.95) if long else "-",
                 f"{tenk['best_accuracy']:.4f} ({tenk['best_iteration']})" if tenk else "-"]
        print(f"| {s} | " + " | ".join(cells) + " |")


def stability_table(runs_dir: Path) -> None:
    print("| recall | outer norm | reachable | rho median (max) | converged | sensitivity median | distinct fixed points (n) | "
          "input-dependent | Lipschitz | cond(I-J) | backward converges | smooth & stable | 512-bit best acc |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "n/a" if v is None else f"{v:.3g}"  # noqa: E731
    for v in VARIANTS:
        run = runs_dir / f"ps-{v}-s0"
        path = next((p for p in (run / "analysis" / "analysis.json", run / "analysis.json") if p.exists()), None)
        if path is None:
            continue
        a = json.loads(path.read_text())
        r, i, g, ver = a["reachability"], a["input_dependence"], a["geometry"], a["verdicts"]
        acc = evals(runs_dir / f"ps-{v}-s0").get(512, {}).get("best_accuracy")
        recall, norm = v.split("-")
        yes = lambda b: "**yes**" if b else "no"  # noqa: E731
        print(f"| {recall} | {norm} | {yes(ver['reachable'])} | {r['rho_median']:.3f} ({r['rho_max']:.3f}) | "
              f"{r['reachable_fraction']:.0%} | {fmt(i['sensitivity_median'])} | {i['distinct_fixed_points']} ({a['n']}) | "
              f"{yes(ver['input_dependent'])} | {fmt(g['lipschitz_median'])} | {fmt(g['cond_median'])} | "
              f"{g['backward_converged_fraction']:.0%} | {yes(ver['smooth_and_backprop_stable'])} | {'n/a' if acc is None else f'{acc:.3f}'} |")


def shipped_table(runs_dir: Path) -> None:
    """The shipped model (ps-internal-layernorm-ema-s0): best accuracy per length, from its two evaluations."""
    print("| bits | n | best (first iteration) | last iteration evaluated | final residual |")
    print("|---|---|---|---|---|")
    run = runs_dir / "ps-internal-layernorm-ema-s0"
    for name in ("eval-main.json", "eval-long200.json"):
        d = json.loads((run / name).read_text())
        for r in d["results"]:
            best = f"{r['best_accuracy']:.3f} ({r['best_iteration']}"
            if name == "eval-long200.json":
                best += f"; 95% from {first_reaching(r, 0.95)}"
            mantissa, exponent = f"{r['final_residual']:.1e}".split("e")
            print(f"| {int(r['split']):,} | {r['n']:,} | {best}) | {d['max_iters']} | {mantissa}e{int(exponent)} |")


def plots(runs_dir: Path, out: Path) -> None:
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for v in VARIANTS:
        e = evals(runs_dir / f"ps-{v}-s0")
        if 512 in e:
            ax.plot(*series(e[512], "accuracy_by_iteration"), label=v)
            axr.plot(*series(e[512], "residual_by_iteration"), label=v)
    ax.set_ylabel("exact match, 512 bits")
    ax.set_title("prefix sums: six variants, trained on 32 bits (seed 0)")
    ax.legend(fontsize=8)
    axr.set_yscale("log")
    axr.set_ylabel("relative residual")
    axr.set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(out / "prefix_sums_variants.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for s in range(3):
        e = evals(runs_dir / f"ps-internal-layernorm-s{s}")
        for ax, key in zip(axes, (512, ("long", 1024))):
            if key in e:
                ax.plot(*series(e[key], "accuracy_by_iteration"), label=f"seed {s}")
    for ax, L in zip(axes, (512, 1024)):
        ax.set_title(f"internal recall + LayerNorm, {L} bits (n=1000)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("exact match")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "prefix_sums_seeds.png", dpi=110)
    plt.close(fig)


def main(runs_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print("## variants\n")
    variant_table(runs_dir)
    print("\n## best configuration, three seeds\n")
    seed_table(runs_dir)
    print("\n## the shipped model\n")
    shipped_table(runs_dir)
    print("\n## stability\n")
    stability_table(runs_dir)
    plots(runs_dir, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
