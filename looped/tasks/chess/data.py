"""Reading the chess puzzle data: the shipped mate-in-N shards and the extracted rated Lichess set.

Mate-in-N puzzles are gzipped CSV shards (``fen,move,mate,depth``) in ``looped/data/chess``; the rated set is
``lichess.csv`` (``id,fen,move,rating,themes``) in the data cache. ``scripts/chess_data.py`` writes
both; reading them needs neither Stockfish nor the network.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from ..cache import cache_dir

MAX_MATE = 5
MATES_DIR = Path(__file__).resolve().parents[2] / "data" / "chess"
LICHESS_FILE = "lichess.csv"
FIELDS = ("fen", "move", "mate", "depth")
LICHESS_FIELDS = ("id", "fen", "move", "rating", "themes")


def shard_path(out: Path, index: int) -> Path:
    return out / f"mates-{index:04d}.csv.gz"


def read_shards(root: Path = MATES_DIR) -> list[dict]:
    """Every generated puzzle under ``root`` as dicts with keys ``FIELDS``, in shard order."""
    rows = []
    for path in sorted(root.glob("mates-*.csv.gz")):
        with gzip.open(path, "rt", newline="") as f:
            for row in csv.DictReader(f):
                rows.append({"fen": row["fen"], "move": row["move"], "mate": int(row["mate"]),
                             "depth": int(row["depth"])})
    return rows


def read_lichess(path: Path | None = None) -> list[dict]:
    """The extracted rated puzzles (``scripts/chess_data.py lichess`` writes them); raises
    ``FileNotFoundError`` if absent."""
    path = path or cache_dir() / LICHESS_FILE
    with open(path, newline="") as f:
        return [{**row, "rating": int(row["rating"])} for row in csv.DictReader(f)]
