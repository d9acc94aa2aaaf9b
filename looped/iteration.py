"""The one loop: iterate ``h_{t+1} = F(h_t, x)`` over a batch whose samples may stop at different times.

Everything in ``looped`` that iterates a map runs on ``iterate``: the model's forward pass (training
and evaluation), evaluation with adaptive halting, and the stability toolkit's solvers. The change
and the relative residual of a step are computed here only (``Step.change``, ``Step.residual``).

A leaf module: it imports nothing from ``looped``, and needs nothing of ``F`` but its signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import torch

Map = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EPS = 1e-12  # keeps the relative residual finite at a zero state
COMPACT_AT = 0.75  # drop stopped samples from the working batch once at most this share of it is live


@dataclass(eq=False)
class Step:
    """One application of ``F`` to the working batch: the ``b`` samples that have not left it.

    t: the iteration, 1 for the first application of ``F``.
    prev: (b, ...) the states ``F`` was applied to (released once the next step is asked for); h: (b, ...)
        ``F(prev, x)``.
    rows: (b,) each working sample's index in the whole batch.
    live: (b,) bool, the working samples that had not stopped before this step.

    The consumer may set, before asking for the next step:
    done: (b,) bool, the samples that stop here; once few are live they leave the working batch.
    next: (b, ...) the states to continue from, when they are not ``h`` (an accelerated iterate).
    """

    t: int
    prev: torch.Tensor | None
    h: torch.Tensor
    rows: torch.Tensor
    live: torch.Tensor
    done: torch.Tensor | None = None
    next: torch.Tensor | None = None

    @cached_property
    def change(self) -> torch.Tensor:
        """(b,) ``||h - prev||`` per sample, over all but the batch dimension."""
        return norms(self.h - self.prev)

    @cached_property
    def norm(self) -> torch.Tensor:
        """(b,) ``||h||`` per sample."""
        return norms(self.h)

    @cached_property
    def residual(self) -> torch.Tensor:
        """(b,) the relative residual ``||h - prev|| / ||h||`` per sample."""
        return self.change / (self.norm + EPS)


def norms(t: torch.Tensor) -> torch.Tensor:
    """(B,) the norm of each sample of ``t`` (B, ...), over all but the batch dimension."""
    return t.flatten(1).norm(dim=1)


def iterate(F: Map, h: torch.Tensor, x: torch.Tensor, steps: int,
            compact_at: float = COMPACT_AT) -> Iterator[Step]:
    """Apply ``F`` up to ``steps`` times, yielding a ``Step`` after each application.

    Args:
        F: batched map, (b, ...) x (b, ...) -> (b, ...), samples independent.
        h: (B, ...) initial states; x: (B, ...) inputs.
        steps: most applications of ``F``.
        compact_at: stopped samples leave the working batch once at most this share of it is live
            (0: never, they stay in it, and ``F`` keeps running on them, until every sample stops).
    Ends early once every sample has stopped (``Step.done``). Gradients flow when enabled.
    """
    rows = torch.arange(h.shape[0], device=h.device)
    live = torch.ones(h.shape[0], dtype=torch.bool, device=h.device)
    for t in range(1, steps + 1):
        step = Step(t, h, F(h, x), rows, live[rows])
        yield step
        h, done = (step.h if step.next is None else step.next), step.done
        step.prev = None  # the consumer is done with this step: free h_{t-1} before F runs again
        if done is None:
            continue
        live[rows[done]] = False
        keep = live[rows]
        if not bool(keep.any()):
            return
        if int(keep.sum()) <= compact_at * len(rows):
            rows, h, x = rows[keep], h[keep], x[keep]
