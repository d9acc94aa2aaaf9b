"""looped: looped transformers and a fixed-point stability toolkit.

The stable Python surface (the ``looped`` command line is a thin layer over it)::

    run = looped.train("prefix-sums", "runs/ps", looped.TrainConfig(steps=2000))
    model, task, config = looped.load(run)
    curves = looped.evaluate(model, task, ["32", "512"], max_iters=128)
    report = looped.analyze(model, task)

``train``, ``evaluate``, ``solve`` and ``analyze`` are functions here; their modules are imported as
``from looped.training import Trainer`` (``looped.train`` itself names the function).
"""

from .analysis import analyze
from .dtnet import DTNet, DTNetConfig
from .paper import PaperConfig, PaperTransformer
from .paper_checkpoint import from_paper
from .evaluation import Curve, Halting, evaluate
from .config import ConfigError, TrainConfig, model_config
from .model import Looped, LoopedConfig, LoopedTransformer
from .runs import RunError, shipped_model
from .runs import load_model as load
from .solving import Answer, solve
from .tasks import Batch, InputError, Split, Task, get_task, register
from .training import resume, train

__all__ = [
    "Answer", "Batch", "ConfigError", "Curve", "DTNet", "DTNetConfig", "Halting", "InputError", "Looped",
    "LoopedConfig", "LoopedTransformer", "PaperConfig", "PaperTransformer", "RunError", "Split", "Task", "TrainConfig", "analyze", "evaluate", "from_paper",
    "get_task", "load", "model_config", "register", "resume", "shipped_model", "solve", "train",
]
__version__ = "0.1.0"


def _moved_module(old: str, new: str) -> None:
    """Keep ``from looped.<old> import X`` working for one release (with a warning) without the module
    ``looped.<old>`` ever replacing the function of that name."""
    import importlib
    import sys
    import types
    import warnings

    class Moved(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):  # the import system's probes (__path__, ...)
                raise AttributeError(name)
            warnings.warn(f"the module looped.{old} is now looped.{new}; the old name goes in the next release",
                          FutureWarning, stacklevel=2)
            return getattr(importlib.import_module(f"looped.{new}"), name)

    sys.modules[f"looped.{old}"] = Moved(f"looped.{old}")


for _old, _new in (("train", "training"), ("evaluate", "evaluation"), ("solve", "solving"), ("analyze", "analysis")):
    _moved_module(_old, _new)
