"""The one interface every task implements.

A task knows how to generate examples of a given difficulty from a seed, encode them as tensors,
decode and score predictions, and parse user input for ``looped solve``. Nothing outside
``looped/tasks`` branches on the task's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..config import LoopedError, check_field_types


class InputError(LoopedError):
    """User input (a puzzle, a bit string, a split name) is malformed."""


@dataclass
class Batch:
    """Encoded examples.

    inputs: (N, L) int64 token ids.
    targets: (N, L) int64 class ids; positions equal to ``ignore_index`` are not scored.
    positions: (L, P) int64 categorical position features, or None.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    positions: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def slice(self, start: int, stop: int) -> "Batch":
        return Batch(self.inputs[start:stop], self.targets[start:stop], self.positions)

    def to(self, device: torch.device | str) -> "Batch":
        pos = None if self.positions is None else self.positions.to(device)
        return Batch(self.inputs.to(device), self.targets.to(device), pos)


IGNORE_INDEX = -100


@dataclass(frozen=True)
class Split:
    """A named difficulty level of a task.

    name: how users and files refer to it (``"512"``, ``"easy"``).
    difficulty: the task's difficulty parameter for it (a length, a tier index).
    """

    name: str
    difficulty: int


SYMBOLS = "0123456789abcdefghijklmnopqrstuvwxyz"  # default characters of token and class ids


@dataclass(frozen=True)
class ModelSettings:
    """What a task asks of a model, typed; ``None`` leaves the architecture's own default.

    A task sets them as its ``model_settings`` class attribute, so a misspelt or renamed setting fails
    when the task's module is imported. Each architecture's config takes those that apply to it
    (``task_defaults``); the names are those of ``LoopedConfig``'s fields, plus ``board``.

    board: the grid of a fixed-size input, e.g. (9, 9); () for sequences of any length.
    attention, causal, groups, position_sizes, d_model, n_heads: as ``LoopedConfig``'s fields.
    """

    board: tuple[int, ...] | None = None
    attention: str | None = None
    causal: bool | None = None
    groups: tuple[tuple[int, ...], ...] | None = None
    position_sizes: tuple[int, ...] | None = None
    d_model: int | None = None
    n_heads: int | None = None

    def __post_init__(self) -> None:
        check_field_types(self)

    def given(self, names=None) -> dict:
        """The settings that are set (not None), optionally only those in ``names``."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None and (names is None or f.name in names)}


@dataclass(frozen=True)
class PaperRecipe:
    """How the paper's code trains this task, for ``looped train --preset paper`` and ``paper-cpu``.

    epoch_examples: training examples per epoch in the paper's data (its batches: this over 500).
    cpu_steps: the steps of the ``paper-cpu`` preset, sized to finish on a 2-core CPU.
    """

    epoch_examples: int
    cpu_steps: int


class Task(ABC):
    """Interface of a task. Subclasses set the class attributes and implement ``generate``.

    The other methods have defaults: splits named by their length, input strings of one
    character per token (``input_symbols``) and answers of one character per class
    (``output_symbols``), exact match, per-token cross-entropy.
    """

    name: str
    vocab_size: int
    num_classes: int
    train_splits: tuple[str, ...]
    eval_splits: tuple[str, ...]
    can_augment: bool = False  # whether ``augment`` is implemented
    input_symbols: str | None = None  # character of each token id for ``parse``; default 0-9a-z
    output_symbols: str | None = None  # character of each class id for ``decode``; default 0-9a-z
    can_mask_loss: bool = False  # whether ``masked_loss`` is implemented
    model_settings: ModelSettings = ModelSettings()  # what the task asks of a model (attention, board, ...)
    paper_recipe: PaperRecipe | None = None  # how the paper trains the task, if it does

    @abstractmethod
    def generate(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` encoded examples of ``split``, a pure function of ``(split, n, seed)``."""

    def split(self, name: str) -> Split:
        """Parse a split name; raise ``InputError`` if it is unknown.

        By default the declared splits, with difficulty = the name when it is a number (a length)
        and else the order of declaration; when every declared name is a number, any positive
        integer is a split too (a longer length).
        """
        name = str(name).strip()
        declared = list(dict.fromkeys((*self.train_splits, *self.eval_splits)))
        numeric = all(s.isdigit() for s in declared)
        if name in declared:
            return Split(name, int(name) if numeric else declared.index(name))
        if numeric and name.isdigit() and int(name) >= 1:
            return Split(str(int(name)), int(name))
        more = " or any positive length" if numeric else ""
        raise InputError(f"unknown split {name!r} of task {self.name}; choose from {', '.join(declared)}{more}")

    def input_length(self, split: Split) -> int:
        """Tokens per example of ``split`` (to check memory limits); by default that of one generated example."""
        return int(self.generate(split, 1, seed=0).inputs.shape[1])

    def train_batch(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` training examples; by default fresh ones from ``generate``."""
        return self.generate(split, n, seed)

    def augment(self, batch: Batch, seed: int) -> Batch:
        """A validity-preserving random transform of each example (tasks with ``can_augment``)."""
        raise NotImplementedError(f"{self.name} has no augmentation")

    def parse(self, text: str) -> torch.Tensor:
        """Validate one user input and encode it. Returns (L,) token ids; raises ``InputError``.

        By default one token per character, token id = its index in ``input_symbols``.
        """
        symbols = alphabet(self.input_symbols, self.vocab_size, self.name, "input_symbols")
        s = text.strip()
        if not s:
            raise InputError(f"empty input: expected a string of the symbols {symbols!r}")
        bad = sorted(set(s) - set(symbols))
        if bad:
            raise InputError(f"unknown symbols {''.join(bad)!r}: {self.name} inputs use {symbols!r}")
        return torch.tensor([symbols.index(c) for c in s], dtype=torch.long)

    def decode(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> str:
        """The one-line answer to one user input. Args: text as given to ``parse``, inputs (L,) its
        tokens, logits (L, C) of the model. By default one ``output_symbols`` character per class id."""
        symbols = alphabet(self.output_symbols, self.num_classes, self.name, "output_symbols")
        ids = self.predict(inputs[None], logits[None])[0]
        return "".join(symbols[int(i)] if 0 <= int(i) < len(symbols) else "?" for i in ids.tolist())

    def config(self) -> dict:
        """JSON-ready arguments that rebuild this task through ``from_config``; saved with every run."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Task":
        """The task a run was trained on, from its saved ``config()``."""
        return cls(**config)

    @classmethod
    def from_data(cls, path) -> "Task":
        """The task read from a data directory (``looped train --data DIR``); most tasks generate their own."""
        raise InputError(f"task {cls.name} generates its own data and reads no files; drop --data")

    def moved_to(self, path) -> "Task":
        """The same task reading its files from ``path`` (a data directory that moved since training)."""
        raise InputError(f"task {self.name} generates its own data and reads no files; drop --data")

    def view(self, inputs: torch.Tensor, index: int, seed: int):
        """The ``index``-th view of each input under a validity-preserving symmetry (index 0: the input
        itself), for test-time compute in breadth. Returns (view inputs (N, L), ``back``: a function mapping
        a view's logits (N, L, C) to the inputs' frame), or None when the task has no such view (the default).
        """
        return None

    def verify(self, inputs: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor | None:
        """(N,) bool: whether each predicted answer is right, by a checker that needs no target (a sudoku that
        is valid and keeps the givens); None when the task has no checker (the default).
        Args: inputs, prediction (N, L) as ``predict`` gives it."""
        return None

    def for_paper(self) -> "Task":
        """This task encoded as the paper's code encodes it (its input planes, square order and classes), for
        models imported from that code (``looped import-paper``); by default the task itself."""
        return self

    def describe(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> list[str]:
        """Lines to show a person for one solved input; by default the one-line answer."""
        return [self.decode(text, inputs, logits)]

    def predict(self, inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Class ids from the readout; by default the argmax. Args: inputs (N, L), logits (N, L, C).
        Returns (N, L)."""
        return logits.argmax(-1)

    def positions(self, length: int) -> torch.Tensor | None:
        """(L, P) categorical position features, or None when the model uses relative positions."""
        return None

    def score(self, prediction: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Exact match per example. Args: prediction, targets (N, L). Returns (N,) bool."""
        ok = (prediction == targets) | (targets == IGNORE_INDEX)
        return ok.all(dim=1)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss; by default per-token cross-entropy. Args: logits (B, L, C), targets (B, L)."""
        return token_cross_entropy(logits, targets)

    def masked_loss(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """A training loss over only the outputs valid for each input (tasks with ``can_mask_loss``).
        Args: inputs, targets (B, L); logits (B, L, C)."""
        raise NotImplementedError(f"{self.name} has no masked loss")

    def metrics(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """Per-example scores by name; ``exact`` (the headline accuracy) comes first.
        Args: inputs, targets (N, L); logits (N, L, C). Returns {name: (N,) tensor}."""
        return {"exact": self.score(self.predict(inputs, logits), targets)}


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over tokens, skipping ``IGNORE_INDEX``. Args: logits (B, L, C), targets (B, L)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def alphabet(symbols: str | None, size: int, task: str, attribute: str) -> str:
    """The characters of ids ``0..size-1``: ``symbols`` if given, else the first ``size`` of 0-9a-z."""
    if symbols is None:
        if size > len(SYMBOLS):
            raise InputError(f"task {task} has {size} ids, more than the default symbols; it must set {attribute}")
        symbols = SYMBOLS[:size]
    if len(symbols) != size or len(set(symbols)) != size:
        raise InputError(f"task {task}: {attribute} must hold {size} distinct characters, got {symbols!r}")
    return symbols
