"""Plots for lab/dtnet/README.md from the JSON that lab/dtnet/compare.py writes.

Usage: python lab/dtnet/report.py OUT.png JSON [JSON ...] [--title TEXT]
       python lab/dtnet/report.py --table JSON[:LABEL] [JSON[:LABEL] ...]
One panel per seed (over all the JSON files given), each model's scored snapshots against training
time, told apart by colour and marker; the 95% target dotted. ``--table`` prints the page's per-seed
table of ours (the weight average) against DT-net (named LABEL, default "DT-net") instead. Example,
the committed data:

    python lab/dtnet/report.py lab/dtnet/dtnet_vs_looped.png lab/dtnet/dtnet_vs_looped.json
    python lab/dtnet/report.py --table lab/dtnet/dtnet_depth12_512.json "lab/dtnet/dtnet_eager_512.json:DT-net, eager"
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGET = 0.95
STYLE = {  # model name in the JSON -> (label, colour, marker)
    "ours": ("ours, trained weights", "tab:orange", "s"),
    "ours-ema": ("ours, weight average", "tab:green", "o"),
    "dtnet": ("DT-net", "tab:blue", "^"),
}


def style(name: str) -> tuple[str, str, str]:
    base = name.split("-w")[0] if name.startswith("dtnet") else name
    label, colour, marker = STYLE[base]
    if base == "dtnet" and "-w" in name:
        label += f", width {name.split('-w')[1]}"
    return label, colour, marker


def load(paths: list[Path]) -> tuple[dict, int]:
    seeds, length = {}, None
    for path in paths:
        data = json.loads(path.read_text())
        seeds.update({int(s): models for s, models in data["seeds"].items()})
        length = length or int(data.get("args", {}).get("length", 512))
    return dict(sorted(seeds.items())), length


def plot(seeds: dict, length: int, title: str, out: Path) -> None:
    cols = min(len(seeds), 4 if len(seeds) > 5 else 5)
    rows = -(-len(seeds) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols + 0.6, 2.9 * rows + 0.9), sharey=True, squeeze=False)
    for ax in axes.flat[len(seeds):]:
        ax.axis("off")
    handles = {}
    for ax, (seed, models) in zip(axes.flat, seeds.items()):
        for name, r in sorted(models.items()):
            label, colour, marker = style(name)
            (line,) = ax.plot([c["train_s"] / 60 for c in r["curve"]], [c["accuracy"] for c in r["curve"]],
                              color=colour, marker=marker, ms=5, lw=1.6, label=label)
            handles[label] = line
        ax.axhline(TARGET, color="grey", ls=":", lw=1)
        ax.set(title=f"seed {seed}", ylim=(-0.04, 1.04), xlim=(0, 10.3), xticks=range(0, 11, 2))
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{length}-bit exact match")
    for ax in axes[-1]:
        ax.set_xlabel("training time (min)")
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.07 / rows))
    fig.suptitle(title, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.11 / rows))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def reached(curve: list[dict]) -> tuple[str, str, str, float]:
    """(time to 95% (step), stays at or above 95% from, lowest scored from the first 95% on, seconds to 95%
    with a miss counted as the 600 s budget). Times are the snapshots' nominal ones (every 30 s)."""
    nominal = lambda c: 30 * round(c["train_s"] / 30)  # noqa: E731
    first = next((i for i, c in enumerate(curve) if c["accuracy"] >= TARGET), None)
    if first is None:
        never = all(c["accuracy"] == 0 for c in curve)
        return "not reached (0.00 throughout)" if never else "not reached", "-", "-", 600.0
    stays = next(i for i in range(len(curve) + 1) if all(c["accuracy"] >= TARGET for c in curve[i:]))
    hit = curve[first]
    return (f"{nominal(hit)} s ({hit['step']:,})", "not reached" if stays == len(curve) else f"{nominal(curve[stays])} s",
            f"{min(c['accuracy'] for c in curve[first:]):.2f}", float(nominal(hit)))


def table(specs: list[str]) -> list[str]:
    lines = ["| seed | model | steps in 10 min | time to 95% (step) | ours / DT-net | stays at or above 95% from "
             "| lowest scored after first 95% | accuracy at 10 min |", "|---|---|---|---|---|---|---|---|"]
    for spec in specs:
        path, _, label = spec.partition(":")
        for seed, models in sorted(json.loads(Path(path).read_text())["seeds"].items(), key=lambda kv: int(kv[0])):
            ours, dtnet = models["ours-ema"], next(v for k, v in models.items() if k.startswith("dtnet"))
            (t_o, s_o, l_o, sec_o), (t_d, s_d, l_d, sec_d) = reached(ours["curve"]), reached(dtnet["curve"])
            lines.append(f"| {seed} | ours | {ours['steps']:,} | {t_o} | {sec_o / sec_d:.2f} | {s_o} | {l_o} | "
                         f"{ours['curve'][-1]['accuracy']:.2f} |")
            lines.append(f"| {seed} | {label or 'DT-net'} | {dtnet['steps']:,} | {t_d} | | {s_d} | {l_d} | "
                         f"{dtnet['curve'][-1]['accuracy']:.2f} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?")
    p.add_argument("json", type=Path, nargs="*")
    p.add_argument("--title", default="prefix sums: snapshots of each model, same data and training time")
    p.add_argument("--table", nargs="+", metavar="JSON[:LABEL]", help="print the per-seed table, draw nothing")
    args = p.parse_args()
    if args.table:
        print("\n".join(table(args.table)))
        return
    if args.out is None or not args.json:
        p.error("give OUT.png JSON [JSON ...] or --table JSON[:LABEL] ...")
    seeds, length = load(args.json)
    plot(seeds, length, args.title, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
