"""Helpers every config dataclass shares, and the registry of model architectures.

A leaf module: it imports nothing from ``looped``. ``model.py`` and ``dtnet.py`` register their
config classes here, so a run's ``model`` entry (``{"arch": name, ...}``) is read back by
``config_from_dict`` without this module knowing any architecture.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import field, fields

import torch

MAX_PARAMETERS = int(float(os.environ.get("LOOPED_MAX_PARAMETERS", 1e9)))
DEFAULT_ARCH = "looped"


class ConfigError(ValueError):
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


def check_field_types(cfg) -> None:
    """``ConfigError`` unless each field of the dataclass ``cfg`` holds a value of its annotated type."""
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if not _kind_ok(value, hints[f.name]):
            raise ConfigError(f"{f.name} must be {_describe(hints[f.name])}, got {value!r}")


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
