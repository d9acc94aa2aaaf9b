"""Plots for lab/dtnet/README.md from the JSON that lab/dtnet/compare.py writes.

Usage: python lab/dtnet/report.py OUT.png JSON [JSON ...] [--title TEXT]
One panel per seed (over all the JSON files given), each model's scored snapshots against training
time, told apart by colour and marker; the 95% target dotted. Example, the committed data:

    python lab/dtnet/report.py lab/dtnet/dtnet_vs_looped.png lab/dtnet/dtnet_vs_looped.json
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("json", type=Path, nargs="+")
    p.add_argument("--title", default="prefix sums: snapshots of each model, same data and training time")
    args = p.parse_args()
    seeds, length = load(args.json)
    plot(seeds, length, args.title, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
