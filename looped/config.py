"""Configuration: the helpers every config dataclass shares, the registry of model architectures,
and ``TrainConfig``, the training recipe.

A leaf module: it imports nothing from ``looped``. ``model.py`` and ``dtnet.py`` register their
config classes here, so a run's ``model`` entry (``{"arch": name, ...}``) is read back by
``config_from_dict`` without this module knowing any architecture.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields

import torch

MAX_PARAMETERS = int(float(os.environ.get("LOOPED_MAX_PARAMETERS", 1e9)))
DEFAULT_ARCH = "looped"


class LoopedError(ValueError):
    """A user's mistake (bad input, config, run directory or request): one line, in the words of the
    Python API, and in the command line's words where they differ (``cli``: flags instead of parameters)."""

    def __init__(self, message: str, cli: str | None = None):
        super().__init__(message)
        self.cli = cli


class ConfigError(LoopedError):
    """A configuration value is invalid."""


def _kind_ok(value, kind) -> bool:
    """Whether ``value`` is an instance of the annotation ``kind`` (no bool for int or float)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_kind_ok(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if origin in (tuple, list):
        return isinstance(value, (tuple, list))  # JSON gives lists; __post_init__ converts
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _describe(kind) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(k) for k in typing.get_args(kind))
    if kind is type(None):
        return "null"
    if origin in (tuple, list):
        return "a list"
    return f"{'an' if kind.__name__[0] in 'aeiou' else 'a'} {kind.__name__}"


def setting(default, help: str, **cli):
    """A config field with its one-line doc (the ``looped train`` help); ``cli`` adds command-line
    extras: ``choices``, and ``flags`` (the flag names, default ``--field-name``)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class Vocabulary:
    """The fields every architecture's config starts with: input tokens and output classes."""

    vocab_size: int = setting(2, "input tokens")
    num_classes: int = setting(2, "output classes")


@dataclass
class TransformerShape(Vocabulary):
    """The shape of a transformer block, shared by ``looped``'s and the paper's (which overrides the defaults)."""

    d_model: int = setting(32, "width of the residual stream")
    n_heads: int = setting(4, "attention heads", flags=("--heads", "--n-heads"))
    mlp_ratio: int = setting(4, "MLP hidden width over d_model")


def check_field_types(cfg) -> None:
    """``ConfigError`` unless each field of the dataclass ``cfg`` holds a value of its annotated type."""
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if not _kind_ok(value, hints[f.name]):
            raise ConfigError(f"{f.name} must be {_describe(hints[f.name])}, got {value!r}")


def field_default(cls, name: str):
    """The default value of the field ``name`` of the dataclass ``cls``."""
    return next(f.default for f in fields(cls) if f.name == name)


def from_known_fields(cls, d: dict, what: str):
    """``cls(**d)``, or ``ConfigError`` naming the keys of ``d`` that are not fields of the dataclass ``cls``."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"unknown {what} config keys: {', '.join(sorted(unknown))}")
    return cls(**d)


ARCHITECTURES: dict[str, type] = {}


def register_architecture(name: str):
    """Class decorator: a model config class that ``config_from_dict`` reads for ``{"arch": name}``."""

    def register(cls: type) -> type:
        ARCHITECTURES[name] = cls
        return cls

    return register


def config_from_dict(d: dict):
    """The model config in a run's ``model`` entry, of the architecture named by ``arch``."""
    arch = d.get("arch", DEFAULT_ARCH)
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch].from_dict({k: v for k, v in d.items() if k != "arch"})


def model_config(task, arch: str = DEFAULT_ARCH, overrides: dict | None = None):
    """The model config of a new run: the task's vocabulary, classes and ``model_settings`` as the
    architecture takes them (its config's ``task_defaults``), then ``overrides`` (unknown keys raise).

    task: a ``Task``; arch: a registered architecture (``looped``, ``dtnet``, ...).
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    cls = ARCHITECTURES[arch]
    defaults = {"vocab_size": task.vocab_size, "num_classes": task.num_classes, **cls.task_defaults(task.model_settings)}
    return cls.from_dict({**defaults, **(overrides or {})})


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU. Raises ``ConfigError`` for an unusable device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device {name!r} is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


@dataclass
class TrainConfig:
    seed: int = setting(0, "seed of the initialization, the data and the depth draws")
    steps: int | None = setting(None, "budget: total optimizer steps")
    minutes: float | None = setting(None, "budget: total minutes of training time")
    batch_size: int = setting(128, "examples per step (over all processes)")
    lr: float = setting(2e-3, "peak AdamW learning rate")
    weight_decay: float = setting(0.01, "AdamW weight decay")
    warmup_steps: int = setting(200, "learning-rate warmup steps")
    warmup: str = setting("linear", "warmup shape: linear, or exponential (1 - exp(-step / warmup-steps), the "
                          "paper's)", choices=("linear", "exponential"))
    schedule: str = setting("cosine", "after warmup: cosine decay to --min-lr-ratio, or step decay (x --decay-factor "
                            "at each fraction of training in --decay-at)", choices=("cosine", "step"))
    min_lr_ratio: float = setting(0.1, "the cosine decay ends at this fraction of --lr")
    decay_at: tuple[float, ...] = setting((0.6,), "step decay: fractions of training at which the rate drops")
    decay_factor: float = setting(0.1, "step decay: the factor of each drop")
    grad_clip: float = setting(1.0, "clip the gradient norm to this")
    train_iters: int = setting(16, "N, the maximum training depth")
    alpha: float = setting(1.0, "progressive-loss weight (0: last-iteration loss)")
    grad_window: int | None = setting(
        None, "backpropagate through at most this many iterations (memory flat in --train-iters)")
    ema: float | None = setting(
        None, "keep an exponential moving average of the weights with this decay (e.g. 0.999); it is what gets saved")
    eval_every: int = setting(250, "log training accuracy every this many steps")
    eval_size: int = setting(256, "examples of that accuracy")
    checkpoint_every: int = setting(250, "save a checkpoint every this many steps")
    train_splits: tuple[str, ...] | None = setting(
        None, "training splits, used in turn (comma-separated; default: the task's)")
    augment: bool = setting(False, "random validity-preserving transforms of training data")
    masked_loss: bool = setting(
        False, "train with the task's loss over valid outputs only (chess: a softmax over the legal moves)")
    compile: bool = setting(False, "torch.compile the loop step")
    bf16: bool = setting(False, "bfloat16 autocast of the forward passes (CUDA only)")
    device: str = setting("auto", "auto (CUDA if present), cpu, cuda, cuda:1, ...")

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.steps is None and self.minutes is None:
            raise ConfigError("give a budget: --steps N or --minutes M")
        if self.seed < 0:
            raise ConfigError(f"seed must not be negative, got {self.seed}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be positive, got {self.minutes}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must lie in [0, 1], got {self.alpha}")
        for name in ("batch_size", "train_iters", "eval_every", "eval_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.train_splits is not None:
            self.train_splits = tuple(str(s) for s in self.train_splits)
            if not self.train_splits:
                raise ConfigError("train_splits must name at least one split")
        if self.grad_window is not None and self.grad_window < 1:
            raise ConfigError(f"grad_window must be a positive integer, got {self.grad_window}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ConfigError(f"ema must lie in (0, 1), got {self.ema}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError("warmup_steps and weight_decay must not be negative")
        self.decay_at = tuple(float(f) for f in self.decay_at)
        if any(not 0 < f <= 1 for f in self.decay_at) or not 0 < self.decay_factor <= 1:
            raise ConfigError("decay_at must hold fractions in (0, 1] and decay_factor lie in (0, 1]")
        for name, allowed in (("warmup", ("linear", "exponential")), ("schedule", ("cosine", "step"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Also reads run configs that repeated the task here (it is the run config's top-level ``task``)."""
        return from_known_fields(cls, {k: v for k, v in d.items() if k != "task"}, "train")
