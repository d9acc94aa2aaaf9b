"""Run directories: config, metrics and weights on disk, written atomically.

A run directory holds

* ``config.json``: ``{"task", "model", "train"}``, plus ``task_class`` (the import path of a task
  that is not shipped) and ``task_config`` (``Task.config()``) where they apply;
* ``metrics.jsonl``: one JSON object per logged step;
* ``model.safetensors``: the model weights (all a shipped model needs);
* ``checkpoint.safetensors``: the state dicts of the model, optimizer and weight average, plus the
  step, for ``--resume`` (``write_checkpoint``).

Nothing is ever unpickled: tensors live in safetensors files and everything else in JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, config_from_dict
from .io import atomic_write
from .model import Looped
from .tasks import InputError, Task, task_from_record

CONFIG = "config.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
SHIPPED = Path(__file__).resolve().parent / "models"  # package data: config.json and weights per task


class RunError(ValueError):
    """A run directory is missing, incomplete, corrupt or does not match."""


def remove_stale_temporaries(run: Path) -> list[str]:
    """Delete the temporary files ``atomic_write`` leaves when a process is killed mid-write."""
    stale = sorted(Path(run).glob(".*.tmp"))
    for p in stale:
        p.unlink()
    return [p.name for p in stale]


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


def write_checkpoint(path: Path, states: dict[str, dict], meta: dict[str, str]) -> None:
    """Save ``states`` (name -> a ``state_dict()``: model, optimizer, ...) and string ``meta``.

    Any state dict works: its tensors go into the safetensors file, the rest (numbers, lists,
    the optimizer's integer keys) into its JSON metadata under ``states``.
    """
    tensors: dict[str, torch.Tensor] = {}
    tree = {name: _pack(state, name, tensors) for name, state in states.items()}
    write_tensors(path, tensors, {**meta, "states": json.dumps(tree)})


def read_checkpoint(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The ``states`` and ``meta`` of ``write_checkpoint``. Raises ``RunError``."""
    tensors, meta = read_tensors(path, with_metadata=True)
    try:
        tree = json.loads(meta.pop("states"))
        return {name: _unpack(node, tensors) for name, node in tree.items()}, meta
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RunError(f"{path} lacks training state ({e!r})") from None


def _pack(obj, key: str, tensors: dict[str, torch.Tensor]):
    """A JSON tree of ``obj`` in which each tensor is ``{"tensor": key}`` and each dict ``{"items": [[k, v], ...]}``."""
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj
        return {"tensor": key}
    if isinstance(obj, dict):  # as pairs: optimizer state is keyed by parameter index (an int)
        return {"items": [[k, _pack(v, f"{key}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_pack(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
        return {"tuple": items} if isinstance(obj, tuple) else {"list": items}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {key}")


def _unpack(node, tensors: dict[str, torch.Tensor]):
    if not isinstance(node, dict):
        return node
    if "tensor" in node:
        return tensors[node["tensor"]]
    if "items" in node:
        return {k: _unpack(v, tensors) for k, v in node["items"]}
    if "tuple" in node:
        return tuple(_unpack(v, tensors) for v in node["tuple"])
    return [_unpack(v, tensors) for v in node["list"]]


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
    """Load a run directory (or a shipped model directory, ``shipped_model(name)``).

    Returns: (model in eval mode on ``device``, its task, the whole config dict).
    """
    run = Path(run)
    cfg = read_config(run)
    try:
        task = task_from_record(cfg)
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


def shipped_model(task_name: str) -> Path:
    """The directory of the model shipped for ``task_name``. Raises ``RunError`` if there is none."""
    names = sorted(p.name for p in SHIPPED.iterdir() if (p / CONFIG).is_file()) if SHIPPED.is_dir() else []
    if task_name not in names:
        raise RunError(f"no shipped model for task {task_name!r} (shipped: {', '.join(names) or 'none'}); "
                       f"pass --model RUN")
    return SHIPPED / task_name
