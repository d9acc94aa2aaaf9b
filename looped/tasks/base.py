"""The one interface every task implements.

A task knows how to generate examples of a given difficulty from a seed, encode them as tensors,
decode and score predictions, and parse user input for ``looped solve``. Nothing outside
``looped/tasks`` branches on the task's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F


class InputError(ValueError):
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


class Task(ABC):
    """Interface of a task. Subclasses set the class attributes and implement the methods."""

    name: str
    vocab_size: int
    num_classes: int
    split_key: str = "split"  # how eval JSON names a split ("length" for prefix sums)
    train_splits: tuple[str, ...]
    eval_splits: tuple[str, ...]
    can_augment: bool = False  # whether ``augment`` is implemented
    can_mask_loss: bool = False  # whether ``masked_loss`` is implemented

    @abstractmethod
    def split(self, name: str) -> Split:
        """Parse a split name; raise ``InputError`` if it is unknown."""

    @abstractmethod
    def input_length(self, split: Split) -> int:
        """Tokens per example of ``split`` (to check memory limits before generating)."""

    @abstractmethod
    def generate(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` encoded examples of ``split``, a pure function of ``(split, n, seed)``."""

    def train_batch(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` training examples; by default fresh ones from ``generate``."""
        return self.generate(split, n, seed)

    def augment(self, batch: Batch, seed: int) -> Batch:
        """A validity-preserving random transform of each example (tasks with ``can_augment``)."""
        raise NotImplementedError(f"{self.name} has no augmentation")

    @abstractmethod
    def parse(self, text: str) -> torch.Tensor:
        """Validate one user input and encode it. Returns (L,) token ids; raises ``InputError``."""

    @abstractmethod
    def decode(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> str:
        """The one-line answer to one user input. Args: text as given to ``parse``, inputs (L,) its
        tokens, logits (L, C) of the model."""

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

    def model_defaults(self) -> dict:
        """Model config values this task needs (vocabulary, classes, attention pattern)."""
        return {"vocab_size": self.vocab_size, "num_classes": self.num_classes}

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
