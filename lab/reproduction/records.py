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


def copy_runs(src: Path, dst: Path, found: str, written: str, convert) -> list[str]:
    """For every job under ``src/runs`` with a file ``found``: copy its config, and write ``convert(found's bytes)``
    as ``written`` beside it under ``dst/runs``. Returns the jobs' ids."""
    done = []
    for path in sorted((src / "runs").glob(f"*/{found}")):
        target = dst / "runs" / path.parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path.parent / CONFIG, target / CONFIG)
        (target / written).write_bytes(convert(path.read_bytes()))
        done.append(path.parent.name)
    return done


def keep(out: Path, folder: Path) -> list[str]:
    """Copy the config and the gzipped record of every finished job under ``out/runs``; returns their ids."""
    return copy_runs(out, folder, RECORD, KEPT, lambda data: gzip.compress(data, mtime=0))


def restore(folder: Path, out: Path) -> list[str]:
    """Write back the config and record of every job kept under ``folder/runs``; returns their ids."""
    return copy_runs(folder, out, KEPT, RECORD, gzip.decompress)


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
