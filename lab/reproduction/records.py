"""Copy what a reproduction's report reads, each finished job's ``config.json`` and ``record.json``, from one
output folder to another: to keep a run's records in the repository, or to restore them into a fresh ``--out``
(a job with a record counts as finished there, so ``looped reproduce`` runs only the others).

    python lab/reproduction/records.py /work/repro-cpu lab/reproduction/v3/held-out   # keep
    python lab/reproduction/records.py lab/reproduction/v3/held-out /work/repro-cpu   # restore
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

KEPT = ("config.json", "record.json")


def copy_records(src: Path, dst: Path) -> list[str]:
    """Copy ``KEPT`` of every job under ``src/runs`` that has a record; returns the jobs copied."""
    copied = []
    for run in sorted((src / "runs").glob("*/record.json")):
        target = dst / "runs" / run.parent.name
        target.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            shutil.copy2(run.parent / name, target / name)
        copied.append(run.parent.name)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args()
    if not (args.src / "runs").is_dir():
        parser.error(f"{args.src / 'runs'} does not exist")
    copied = copy_records(args.src, args.dst)
    print(f"{len(copied)} finished jobs copied to {args.dst / 'runs'}")


if __name__ == "__main__":
    main()
