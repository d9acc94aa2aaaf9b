"""The output-equality tables of docs/paper.md, from the numbers ``scripts/paper_fixtures.py`` measured
and stored in the committed fixture (per configuration: ``looped`` against the paper's code in float64 and
float32, and the paper's own float32 against float64, each the largest relative difference over 30
iterations).

    python lab/paper/equality.py [--fixture tests/fixtures/paper.safetensors]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"sudoku": "9x9 board, 10 planes: 3 recalls x 4 norm placements x 2 residuals",
          "chess": "8x8 board, 12 planes: 3 x 4 x 2", "prefix-sums": "16-token sequence, 1 plane: 3 x 4 x 2",
          "fixed": "9x9 board, fixed-depth baseline: 15 blocks, no recall, the grid's 4 norm/residual runs"}
COLUMNS = ("looped_float64", "looped_float32", "paper_float32_drift")


def group(entry: dict) -> str:
    return "fixed" if "-fixed-" in entry["id"] else entry["geometry"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fixture", type=Path, default=ROOT / "tests/fixtures/paper.safetensors")
    args = p.parse_args()
    with safe_open(str(args.fixture), "pt") as f:
        entries = json.loads(f.metadata()["configurations"])
    print("| configurations | count | `looped` vs the paper, float64 | `looped` vs the paper, float32 "
          "| the paper's float32 vs its float64 |")
    print("|---|---|---|---|---|")
    for key, label in GROUPS.items():
        rows = [e for e in entries if group(e) == key]
        print(f"| {label} | {len(rows)} | " + " | ".join(f"{max(e[c] for e in rows):.1e}" for c in COLUMNS) + " |")
    print()
    print("| configuration | float64 | float32 | paper f32 vs f64 |")
    print("|---|---|---|---|")
    for e in entries:
        print(f"| `{e['id']}` | " + " | ".join(f"{e[c]:.1e}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
