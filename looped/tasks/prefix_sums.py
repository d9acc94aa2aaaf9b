"""Prefix sums (DeepThinking protocol): bit strings, target = running sum mod 2.

Train on 32-bit strings, test on 512 and longer. The difficulty is the length; a split is
named by its length (``"512"``). Any length can be generated on demand.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Batch, InputError, ModelSettings, PaperRecipe, Split, Task

MAX_LENGTH = 100_000


class PrefixSums(Task):
    name = "prefix-sums"
    vocab_size = 2
    num_classes = 2
    train_splits = ("32",)
    eval_splits = ("32", "128", "512", "1024")
    model_settings = ModelSettings(board=(), attention="local", causal=True)
    paper_recipe = PaperRecipe(epoch_examples=6_400, cpu_steps=2_000)  # 80% of 8,000 strings

    def split(self, name: str) -> Split:
        try:
            length = int(str(name).strip())
        except ValueError:
            raise InputError(f"prefix-sums splits are bit lengths such as 32 or 512, got {name!r}") from None
        if not 1 <= length <= MAX_LENGTH:
            raise InputError(f"prefix-sums length must be between 1 and {MAX_LENGTH}, got {length}")
        return Split(name=str(length), difficulty=length)

    def input_length(self, split: Split) -> int:
        return split.difficulty

    def generate(self, split: Split, n: int, seed: int) -> Batch:
        rng = np.random.default_rng([seed, split.difficulty])
        bits = torch.from_numpy(rng.integers(0, 2, size=(n, split.difficulty), dtype=np.int64))
        return Batch(inputs=bits, targets=prefix_parity(bits))

    def parse(self, text: str) -> torch.Tensor:
        s = text.strip()
        if not s:
            raise InputError("empty input: expected a bit string such as 0110101")
        bad = set(s) - {"0", "1"}
        if bad:
            raise InputError(f"bit strings may only contain 0 and 1, found {''.join(sorted(bad))!r}")
        if len(s) > MAX_LENGTH:
            raise InputError(f"bit string of {len(s)} bits exceeds the limit of {MAX_LENGTH}")
        return torch.tensor([int(c) for c in s], dtype=torch.long)

    def decode(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> str:
        return "".join(str(int(b)) for b in logits.argmax(-1).tolist())


def prefix_parity(bits: torch.Tensor) -> torch.Tensor:
    """Inclusive running sum mod 2 along the last dimension. Args: bits (..., L) in {0, 1}."""
    return torch.cumsum(bits, dim=-1) % 2
