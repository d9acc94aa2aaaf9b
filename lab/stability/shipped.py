"""The shipped models' row of docs/stability.md, from their ``looped analyze`` output.

    python lab/stability/shipped.py DIR...

Each DIR holds the ``analysis.json`` of ``looped analyze looped/models/TASK --out DIR`` (the defaults).
Prints one Markdown row per model: attractor class shares with their 95% intervals, the median (max)
multiplier, the median settle iteration, the median iteration from which the prediction stays
constant, and the three verdicts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def row(d: dict) -> str:
    a = d["attractors"]
    shares = ", ".join(f"{name} {s['share']:.0%} [{s['ci95'][0]:.0%}, {s['ci95'][1]:.0%}]"
                       for name, s in sorted(a["shares"].items(), key=lambda kv: -kv[1]["share"]))
    verdicts = " / ".join("yes" if v else "no" for v in d["verdicts"].values())
    return (f"| `{d['run']}` | {shares} | {a['multiplier_median']:.3f} ({a['multiplier_max']:.3f}) | "
            f"{fmt(a['settled_at_median'])} | {fmt(a['prediction_since_median'])} | {verdicts} |")


def main(dirs: list[str]) -> None:
    for d in dirs:
        print(row(json.loads((Path(d) / "analysis.json").read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
