"""Run directories: config, metrics and weights on disk, written atomically, through ``Run`` only.

A run directory holds

* ``config.json``: ``{"task", "model", "train"}``, plus ``task_class`` (the import path of a task
  that is not shipped) and ``task_config`` (``Task.config()``) where they apply;
* ``metrics.jsonl``: one JSON object per logged step;
* ``model.safetensors``: the model weights (all a shipped model needs);
* ``checkpoint.safetensors``: the state dicts of the model, optimizer and weight average, plus the
  step, for ``--resume`` (``write_checkpoint``);
* what commands add: ``eval/`` and ``analysis/`` reports, and records such as the reproduction's
  ``record.json`` (``Run.folder``, ``Run.write_json``).

Nothing is ever unpickled: tensors live in safetensors files and everything else in JSON.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, LoopedError, TrainConfig, config_from_dict
from .io import atomic_write, json_safe, write_json
from .model import Looped
from .tasks import InputError, Task, task_from_record, task_record

ModelConfig = Any  # a registered architecture's config (LoopedConfig, DTNetConfig, ...): build(), to_dict()

CONFIG = "config.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
SHIPPED = Path(__file__).resolve().parent / "models"  # package data: config.json and weights per task


class RunError(LoopedError):
    """A run directory is missing, incomplete, corrupt or does not match."""


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


@dataclass
class RunConfig:
    """What ``config.json`` records, typed: the task, the model config and, for a trained run, the
    training config (a shipped model may lack it)."""

    task: Task
    model: ModelConfig
    train: TrainConfig | None = None

    def to_dict(self) -> dict:
        return {**task_record(self.task), "model": self.model.to_dict(),
                **({} if self.train is None else {"train": self.train.to_dict()})}


class Run:
    """A run directory (see the module docstring): the one reader and writer of its files.

    ``Run.create`` starts a new one, ``Run(path)`` opens an existing one (``RunError`` if it is
    missing, incomplete or corrupt, raised on first use). Every write is atomic.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether the directory holds a run (its config.json)."""
        return (self.path / CONFIG).exists()

    @classmethod
    def create(cls, path: str | Path, config: RunConfig) -> "Run":
        """A new run in ``path`` (``RunError`` if it already holds one), with its config.json written."""
        run = cls(path)
        if run.exists():
            raise RunError(f"{run.path} already holds a run; resume it or choose a new directory")
        run.write_config(config)
        return run

    # -- config ----------------------------------------------------------------------------------
    def read_config_dict(self) -> dict:
        """The raw ``config.json``, checked to hold a task and a model."""
        path = self.path / CONFIG
        if not self.path.is_dir():
            raise RunError(f"run directory {self.path} does not exist")
        if not path.is_file():
            raise RunError(f"{self.path} is not a run directory: {CONFIG} is missing")
        try:
            cfg = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict) or "task" not in cfg:
            raise RunError(f"{path} lacks the 'task' and 'model' entries of a run config")
        return cfg

    @functools.cached_property
    def config(self) -> RunConfig:
        """The typed config. Raises ``RunError``."""
        saved = self.read_config_dict()
        train = saved.get("train")
        if train is not None and not isinstance(train, dict):
            raise RunError(f"{self.path / CONFIG}: 'train' must be an object")
        try:
            return RunConfig(task_from_record(saved), config_from_dict(saved["model"]),
                             None if train is None else TrainConfig.from_dict(train))
        except (ConfigError, InputError, TypeError, ValueError) as e:
            raise RunError(f"{self.path / CONFIG}: {e}") from None

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / CONFIG, config.to_dict())
        self.__dict__.pop("config", None)

    # -- weights, checkpoint, metrics ------------------------------------------------------------
    def load(self, device: str | torch.device = "cpu") -> tuple[Looped, Task, RunConfig]:
        """The model (in eval mode on ``device``), its task and the typed config."""
        cfg = self.config
        model = cfg.model.build()
        try:
            model.load_state_dict(read_tensors(self.path / WEIGHTS))
        except RuntimeError as e:
            raise RunError(f"{self.path / WEIGHTS} does not match its config: {str(e).splitlines()[0]}") from None
        return model.to(device).eval(), cfg.task, cfg

    def write_weights(self, model: torch.nn.Module) -> None:
        write_tensors(self.path / WEIGHTS, model.state_dict())

    def write_checkpoint(self, states: dict[str, dict], meta: dict[str, str]) -> None:
        """Save ``states`` (name -> a ``state_dict()``: model, optimizer, ...) and string ``meta``.

        Any state dict works: its tensors go into the safetensors file, the rest (numbers, lists,
        the optimizer's integer keys) into its JSON metadata under ``states``.
        """
        write_checkpoint(self.path / CHECKPOINT, states, meta)

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    def read_checkpoint(self) -> tuple[dict[str, dict], dict[str, str]]:
        """The ``states`` and ``meta`` of ``write_checkpoint``. Raises ``RunError``."""
        return read_checkpoint(self.path / CHECKPOINT)

    def write_metrics(self, rows: list[dict]) -> None:
        """Replace ``metrics.jsonl`` by ``rows``, one JSON object per line."""
        lines = "".join(json.dumps(m) + "\n" for m in rows)
        atomic_write(self.path / METRICS, lambda tmp: Path(tmp).write_text(lines))

    def read_metrics(self) -> list[dict]:
        path = self.path / METRICS
        if not path.is_file():
            return []
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path} is corrupt ({e})") from None

    def remove_stale_temporaries(self) -> list[str]:
        """Delete the temporary files ``atomic_write`` leaves when a process is killed mid-write."""
        stale = sorted(self.path.glob(".*.tmp"))
        for p in stale:
            p.unlink()
        return [p.name for p in stale]

    # -- what commands add: reports and records ----------------------------------------------------
    def folder(self, name: str) -> Path:
        """The subfolder ``name`` (``eval``, ``analysis``) where a command writes its report; made if missing."""
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def write_json(self, name: str, obj: dict) -> None:
        """A JSON record ``name`` beside the run's own files (NaN and infinities as null)."""
        write_json(self.path / name, json_safe(obj))

    def read_json(self, name: str) -> dict:
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{path} is missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path} is not valid JSON ({e})") from None


def load_model(run: str | Path, device: str | torch.device = "cpu") -> tuple[Looped, Task, RunConfig]:
    """Load a run directory (or a shipped model directory, ``shipped_model(name)``).

    Returns: (model in eval mode on ``device``, its task, the typed ``RunConfig``).
    """
    return Run(run).load(device)


def shipped_model(task_name: str) -> Path:
    """The directory of the model shipped for ``task_name``. Raises ``RunError`` if there is none."""
    names = sorted(p.name for p in SHIPPED.iterdir() if (p / CONFIG).is_file()) if SHIPPED.is_dir() else []
    if task_name not in names:
        raise RunError(f"no shipped model for task {task_name!r} (shipped: {', '.join(names) or 'none'}); "
                       f"pass --model RUN")
    return SHIPPED / task_name
