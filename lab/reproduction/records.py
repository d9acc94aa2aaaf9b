"""Keep what a reproduction's report reads, each finished job's ``config.json`` and ``record.json``, in a folder
of the repository (the record gzipped, as ``record.json.gz``), and restore them into a fresh ``--out``, where a job
with a record counts as finished, so that ``looped reproduce`` runs only the others.

    python lab/reproduction/records.py keep /work/repro-cpu lab/reproduction/v3/held-out
    python lab/reproduction/records.py restore lab/reproduction/v3/held-out /work/repro-cpu
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

CONFIG, RECORD, KEPT = "config.json", "record.json", "record.json.gz"


def keep(out: Path, folder: Path) -> list[str]:
    """Copy the config and the gzipped record of every finished job under ``out/runs``; returns their ids."""
    kept = []
    for record in sorted((out / "runs").glob(f"*/{RECORD}")):
        target = folder / "runs" / record.parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(record.parent / CONFIG, target / CONFIG)
        (target / KEPT).write_bytes(gzip.compress(record.read_bytes(), mtime=0))
        kept.append(record.parent.name)
    return kept


def restore(folder: Path, out: Path) -> list[str]:
    """Write back the config and record of every job kept under ``folder/runs``; returns their ids."""
    restored = []
    for kept in sorted((folder / "runs").glob(f"*/{KEPT}")):
        target = out / "runs" / kept.parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kept.parent / CONFIG, target / CONFIG)
        (target / RECORD).write_bytes(gzip.decompress(kept.read_bytes()))
        restored.append(kept.parent.name)
    return restored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("keep", "restore"))
    parser.add_argument("src", type=Path, help="keep: the --out folder; restore: the folder of kept records")
    parser.add_argument("dst", type=Path)
    args = parser.parse_args()
    if not (args.src / "runs").is_dir():
        parser.error(f"{args.src / 'runs'} does not exist")
    done = (keep if args.action == "keep" else restore)(args.src, args.dst)
    print(f"{args.action}: {len(done)} finished jobs, in {args.dst / 'runs'}")


if __name__ == "__main__":
    main()
