"""Task registry: the shipped tasks by name, tasks registered from Python, and tasks by import path.

A task is named on the command line as a registered name (``prefix-sums``) or as
``package.module:ClassName``. A run records the task's name, its import path (for tasks that are
not shipped) and its ``config()``, so every command reading the run finds the same task again.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from .base import IGNORE_INDEX, Batch, InputError, ModelSettings, PaperRecipe, Split, Task
from .chess import Chess
from .prefix_sums import PrefixSums
from .sequences import Sequences
from .sudoku import Sudoku

BUILTIN: dict[str, type[Task]] = {t.name: t for t in (PrefixSums, Sudoku, Chess, Sequences)}
TASKS: dict[str, type[Task]] = dict(BUILTIN)


def register(cls: type[Task]) -> type[Task]:
    """Make the ``Task`` subclass ``cls`` known by ``cls.name``. Returns ``cls`` (usable as a decorator)."""
    check_task_class(cls, repr(cls))
    taken = TASKS.get(cls.name)
    if taken is not None and taken is not cls:
        raise InputError(f"task name {cls.name!r} is already taken by {import_path(taken)}")
    TASKS[cls.name] = cls
    return cls


def get_task(spec: str | Task | type[Task], data: str | Path | None = None) -> Task:
    """A task instance from a registered name, ``package.module:ClassName``, a class or an instance.

    ``data``: a data directory the task reads (``Task.from_data``). Raises ``InputError``.
    """
    if isinstance(spec, Task):
        if data is not None:
            raise InputError("give data with a task name or class, not with a task instance")
        return check_task(spec, repr(spec))
    cls = spec if isinstance(spec, type) else task_class(spec)
    check_task_class(cls, repr(cls))
    try:
        task = cls.from_data(Path(data)) if data is not None else cls()
    except TypeError as e:
        raise InputError(f"cannot construct task {import_path(cls)}: {e}") from None
    return check_task(task, import_path(cls))


def task_class(spec: str) -> type[Task]:
    """The class a registered name or a ``package.module:ClassName`` path names."""
    spec = str(spec).strip()
    if spec in TASKS:
        return TASKS[spec]
    if ":" not in spec:
        raise InputError(f"unknown task {spec!r}; choose from {', '.join(TASKS)} or give package.module:ClassName")
    return import_task(spec)


def import_task(path: str) -> type[Task]:
    """Import ``package.module:ClassName`` and check that it is a ``Task`` subclass."""
    module_name, _, attr = path.partition(":")
    if not module_name.strip() or not attr.strip():
        raise InputError(f"task path {path!r} must look like package.module:ClassName")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # a user's module can fail in any way while importing
        raise InputError(f"cannot import task module {module_name!r}: {type(e).__name__}: {_first_line(e)}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"task path {path!r}: {module_name} has no attribute {attr!r}") from None
    check_task_class(obj, path)
    return obj


def check_task_class(obj, where: str) -> None:
    """``InputError`` unless ``obj`` is a concrete ``Task`` subclass with a string ``name``."""
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise InputError(f"{where} is not a Task subclass (got {type(obj).__name__} {obj!r:.60})")
    if inspect.isabstract(obj):
        raise InputError(f"{where} does not implement {', '.join(sorted(obj.__abstractmethods__))}")
    if not isinstance(getattr(obj, "name", None), str) or not obj.name.strip():
        raise InputError(f"{where} lacks the attribute 'name' (a non-empty string)")


def check_task(task: Task, where: str) -> Task:
    """``InputError`` unless the task instance has every attribute the library reads."""
    checks = {
        "vocab_size": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "num_classes": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "train_splits": lambda v: isinstance(v, (tuple, list)) and len(v) > 0 and all(isinstance(s, str) for s in v),
        "eval_splits": lambda v: isinstance(v, (tuple, list)) and len(v) > 0 and all(isinstance(s, str) for s in v),
    }
    what = {"vocab_size": "a positive int", "num_classes": "a positive int", "train_splits": "a tuple of split names",
            "eval_splits": "a tuple of split names"}
    for attr, ok in checks.items():
        if not hasattr(task, attr):
            raise InputError(f"{where} lacks the attribute {attr!r} ({what[attr]})")
        if not ok(getattr(task, attr)):
            raise InputError(f"{where}: {attr} must be {what[attr]}, got {getattr(task, attr)!r:.60}")
    return task


def import_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def task_record(task: Task) -> dict:
    """What a run's config.json records of its task: name, import path (tasks not shipped) and config."""
    record = {"task": task.name}
    if BUILTIN.get(task.name) is not type(task):
        record["task_class"] = import_path(type(task))
    config = task.config()
    if config:
        record["task_config"] = config
    return record


def task_from_record(record: dict) -> Task:
    """The task a run's config names (see ``task_record``). Raises ``InputError``."""
    name, path, config = record.get("task"), record.get("task_class"), record.get("task_config", {})
    if not isinstance(name, str) or not isinstance(config, dict) or not isinstance(path, (str, type(None))):
        raise InputError("'task' must be a name, 'task_class' an import path and 'task_config' an object")
    registered = TASKS.get(name)
    if path is None:
        if registered is None:
            raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
        cls = registered
    elif registered is not None and import_path(registered) == path:
        cls = registered
    else:
        cls = import_task(path)
        if cls.name != name:
            raise InputError(f"{path} is task {cls.name!r}, but the run was trained on {name!r}")
    try:
        task = cls.from_config(config)
    except TypeError as e:
        raise InputError(f"cannot rebuild task {name} from its saved config: {e}") from None
    return check_task(task, import_path(cls))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "(no message)"


__all__ = ["Batch", "IGNORE_INDEX", "InputError", "ModelSettings", "PaperRecipe", "Split", "Task", "TASKS", "get_task", "register"]
