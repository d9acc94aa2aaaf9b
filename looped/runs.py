"""Run directories: config, metrics and weights on disk, written atomically.

A run directory holds

* ``config.json``: ``{"task", "model", "train"}``;
* ``metrics.jsonl``: one JSON object per logged step;
* ``model.safetensors``: the model weights (all a shipped model needs);
* ``checkpoint.safetensors``: weights plus optimizer state and the step, for ``--resume``.

Nothing is ever unpickled: tensors live in safetensors files and everything else in JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, config_from_dict
from .model import Looped
from .tasks import InputError, Task, get_task

CONFIG = "config.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"


class RunError(ValueError):
    """A run directory is missing, incomplete, corrupt or does not match."""


def atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file, fsync it, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # after writing: some writers replace the file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(run: Path) -> list[str]:
    """Delete the temporary files ``atomic_write`` leaves when a process is killed mid-write."""
    stale = sorted(Path(run).glob(".*.tmp"))
    for p in stale:
        p.unlink()
    return [p.name for p in stale]


def json_safe(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: dict) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
            f.write("\n")

    atomic_write(path, write)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_tensors(path: Path, with_metadata: bool = False):
    """Tensors of a safetensors file (and its string metadata if asked). Never unpickles."""
    if not Path(path).is_file():
        raise RunError(f"missing weights file {path}")
    try:
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunError(f"cannot read {path}: not a valid safetensors file ({str(e).splitlines()[0]})") from None
    return (tensors, meta) if with_metadata else tensors


def read_config(run: Path) -> dict:
    path = Path(run) / CONFIG
    if not Path(run).is_dir():
        raise RunError(f"run directory {run} does not exist")
    if not path.is_file():
        raise RunError(f"{run} is not a run directory: {CONFIG} is missing")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict) or "task" not in cfg:
        raise RunError(f"{path} lacks the 'task' and 'model' entries of a run config")
    return cfg


def load_model(run: Path, device: str | torch.device = "cpu") -> tuple[Looped, Task, dict]:
    """Load a run directory (or a shipped model directory).

    Returns: (model in eval mode on ``device``, its task, the whole config dict).
    """
    run = Path(run)
    cfg = read_config(run)
    try:
        task = get_task(cfg["task"])
        model = config_from_dict(cfg["model"]).build()
    except (ConfigError, InputError, TypeError, ValueError) as e:
        raise RunError(f"{run / CONFIG}: {e}") from None
    state = read_tensors(run / WEIGHTS)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise RunError(f"{run / WEIGHTS} does not match its config: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), task, cfg


def read_metrics(run: Path) -> list[dict]:
    path = Path(run) / METRICS
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is corrupt ({e})") from None
