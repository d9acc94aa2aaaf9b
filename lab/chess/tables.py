"""The four tables of a final recipe's section in lab/chess/README.md, from its per-puzzle score files.

    python lab/chess/tables.py lab/chess/final-lines ch-lines 8
    python lab/chess/tables.py lab/chess/final ch-final 16

DIR holds PREFIX-s0, -s1, -pass and -shipped ``.score.json`` (``lab/paired_eval.py score``, as
``final.sh`` writes them); N is the training depth. Each interval is ``lab/paired_eval.py pair``'s (the
same bootstrap, seed 0, splits in the same order), so the numbers equal those of PREFIX-paired.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paired_eval import bits_of, pair  # noqa: E402

TARGETS = {"mate3": "0.50", "mate4": "0.50", "mate5": "0.50", "rated-1000-1400": "0.45"}
SHIPPED_AT = 32  # the earlier looped/models/chess, at 4x its training depth


def pair_rows(a: tuple[dict, str], b: tuple[dict, str]) -> dict[str, list[str]]:
    """split -> the cells of ``pair``'s row: n, A, B, A - B, interval."""
    rows = [r.strip("|").split(" | ") for r in pair(a, b, 2000)[4:]]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows}


def depth_table(seeds: list[dict], n: int) -> list[str]:
    t = str(4 * n)
    per = [pair_rows((s, t), (s, str(n))) for s in seeds]
    lines = [f"| split | n | seed 0 at {n} | at {t} | {t} - {n} [95% interval] | seed 1 at {n} | at {t} "
             f"| {t} - {n} [95% interval] |", "|---|---|---|---|---|---|---|---|"]
    for split, (count, *_) in per[0].items():
        cells = [c for p in per for c in (p[split][2], p[split][1], f"{p[split][3]} {p[split][4]}")]
        lines.append(f"| {split} | {count} | " + " | ".join(cells) + " |")
    return lines


def last_table(seeds: list[dict], n: int) -> list[str]:
    t = str(4 * n)
    lines = ["| split | n | seed 0 | seed 1 | mean | spread | target |", "|---|---|---|---|---|---|---|"]
    for split, first in seeds[0]["splits"].items():
        acc = [bits_of(s["splits"][split]["per_example"][t]).mean() for s in seeds]
        lines.append(f"| {split} | {first['n']} | {acc[0]:.3f} | {acc[1]:.3f} | {sum(acc) / 2:.3f} | "
                     f"{max(acc) - min(acc):.3f} | {TARGETS.get(split, '-')} |")
    return lines


def against_table(seeds: list[dict], n: int, base: tuple[dict, str], label: str) -> list[str]:
    t = str(4 * n)
    per = [pair_rows((s, t), base) for s in seeds]
    lines = [f"| split | n | B: {label} | seed 0 | seed 0 - B [95% interval] | seed 1 | seed 1 - B [95% interval] |",
             "|---|---|---|---|---|---|---|"]
    for split, (count, _, b, *_) in per[0].items():
        cells = [c for p in per for c in (p[split][1], f"{p[split][3]} {p[split][4]}")]
        lines.append(f"| {split} | {count} | {b} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", type=Path)
    p.add_argument("prefix")
    p.add_argument("n", type=int, help="training depth N")
    args = p.parse_args()
    load = lambda name: json.loads((args.dir / f"{args.prefix}-{name}.score.json").read_text())  # noqa: E731
    seeds, n = [load("s0"), load("s1")], args.n
    shipped = "earlier models/chess" if n == 8 else "models/chess"
    tables = [depth_table(seeds, n), last_table(seeds, n),
              against_table(seeds, n, (load("shipped"), str(SHIPPED_AT)), f"{shipped} at {SHIPPED_AT}"),
              against_table(seeds, n, (load("pass"), "1"), "pass-through at 1")]
    print("\n\n".join("\n".join(t) for t in tables))


if __name__ == "__main__":
    main()
