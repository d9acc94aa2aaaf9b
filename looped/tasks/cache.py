"""On-disk cache of generated datasets: a compressed ``.npz`` of arrays plus a ``.json`` of metadata.

A cached set is a pure function of its key (task, split, size, seed, generator version), so
deleting the cache only costs time: the same arrays are rebuilt from the seed. The location is
``$LOOPED_CACHE``, else ``$XDG_CACHE_HOME/looped``, else ``~/.cache/looped``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..io import atomic_write


def cache_dir() -> Path:
    if os.environ.get("LOOPED_CACHE"):
        return Path(os.environ["LOOPED_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "looped"


def load_or_build(key: str, meta: dict, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored under ``key``, or ``build()``'s, saved for next time.

    ``meta`` is written next to the arrays; a file whose metadata differs is rebuilt. A cache that
    cannot be written (read-only home) is skipped silently: the data is still returned.
    """
    root = cache_dir()
    arrays_path, meta_path = root / f"{key}.npz", root / f"{key}.json"
    try:
        if json.loads(meta_path.read_text()) == meta:
            with np.load(arrays_path) as f:
                return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError):
        pass
    arrays = build()
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(arrays_path, lambda tmp: _save_npz(tmp, arrays))
        atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    except OSError:
        pass
    return arrays


def _save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
