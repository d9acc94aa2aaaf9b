"""Fixed-point solvers for any batched map ``F(h, x) -> h_next``: plain iteration and Anderson.

Samples never interact: every quantity is per sample (the first dimension), a sample that
diverges or turns NaN is frozen and reported unreachable, and the solver stops as soon as
every sample has converged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..iteration import iterate
from .linalg import PRECISION_MARGIN, dtype_eps

Map = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("iteration", "anderson")


@dataclass
class FixedPointResult:
    """Outcome of ``fixed_point``. B is the batch size, S the number of steps taken.

    h: (B, ...) the lowest-residual iterate of each sample (its last finite one if all diverged).
    converged: (B,) bool, relative residual fell below ``tol``.
    steps: (B,) int, the step at which each sample converged, or S for those that did not.
    best_step: (B,) int, the step with the lowest relative residual.
    residuals: (B, S) absolute residuals ``||F(h) - h||``, NaN after a sample stopped.
    relative: (B, S) relative residuals ``||F(h) - h|| / ||F(h)||`` (``Step.residual``).
    finite: (B,) bool, False for samples whose iterates became non-finite.
    tol: the tolerance used: the requested one, raised to ``PRECISION_MARGIN`` times the dtype's epsilon.
    """

    h: torch.Tensor
    converged: torch.Tensor
    steps: torch.Tensor
    best_step: torch.Tensor
    residuals: torch.Tensor
    relative: torch.Tensor
    finite: torch.Tensor
    tol: float

    @property
    def reached(self) -> torch.Tensor:
        """(B,) float64: the lowest relative residual of each sample (inf if it never had a finite one)."""
        return self.relative.nan_to_num(nan=torch.inf).amin(dim=1)

    @property
    def reachable(self) -> torch.Tensor:
        """(B,) bool: converged and finite."""
        return self.converged & self.finite


@torch.no_grad()
def fixed_point(
    F: Map,
    h0: torch.Tensor,
    x: torch.Tensor,
    max_iter: int = 500,
    tol: float = 1e-5,
    method: str = "iteration",
    anderson_m: int = 5,
    anderson_beta: float = 1.0,
    divergence: float = 1e8,
) -> FixedPointResult:
    """Iterate ``h <- F(h, x)`` per sample until ``||F(h) - h|| / ||F(h)|| < tol``.

    Args:
        F: batched map, (B, ...) x (B, ...) -> (B, ...).
        h0: (B, ...) initial state. x: (B, ...) input.
        max_iter: most steps. tol: relative-residual tolerance; one below ``PRECISION_MARGIN`` times the
            epsilon of ``h0``'s dtype (2.2e-15 in float64, 1.2e-6 in float32) is raised to it.
        method: ``"iteration"`` or ``"anderson"`` (Anderson acceleration with memory ``anderson_m``).
        divergence: a sample whose state norm exceeds this is stopped as unreachable.
    Returns:
        ``FixedPointResult``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    tol = max(tol, PRECISION_MARGIN * dtype_eps(h0))
    B = h0.shape[0]
    active = torch.ones(B, dtype=torch.bool, device=h0.device)
    converged = torch.zeros_like(active)
    finite = torch.ones_like(active)
    steps = torch.full((B,), max_iter, dtype=torch.long, device=h0.device)
    best = torch.full((B,), float("inf"), dtype=torch.float64, device=h0.device)
    best_step = torch.zeros(B, dtype=torch.long, device=h0.device)
    best_h = h0.clone()
    abs_trace, rel_trace = [], []
    hist_x, hist_f = [], []  # Anderson memory: iterates and their residuals G(h) = F(h) - h
    for step in iterate(F, h0.clone(), x, max_iter, compact_at=0.0):  # stopped samples are held, not dropped
        fh = step.h
        r_abs, r_rel = step.change.double(), step.residual.double()
        ok = torch.isfinite(r_rel) & (step.norm < divergence)
        finite &= ok | ~active
        r_abs = torch.where(active, r_abs, torch.nan)
        r_rel = torch.where(active & ok, r_rel, torch.nan)
        abs_trace.append(r_abs)
        rel_trace.append(r_rel)
        improved = active & ok & (r_rel < best)
        best = torch.where(improved, r_rel, best)
        best_step = torch.where(improved, step.t, best_step)
        best_h[improved] = fh[improved]
        newly = active & ok & (r_rel < tol)
        converged |= newly
        steps = torch.where(newly, step.t, steps)
        step.done = active & ~(ok & ~newly)
        active &= ok & ~newly
        nxt = fh
        if method == "anderson" and bool(active.any()):
            hist_x.append(step.prev.clone())
            hist_f.append((fh - step.prev).clone())
            if len(hist_x) > anderson_m:
                hist_x.pop(0)
                hist_f.pop(0)
            nxt = _anderson_step(hist_x, hist_f, anderson_beta)
        step.next = torch.where(_expand(active, fh), nxt, step.prev)
    S = len(abs_trace)
    steps = torch.where(converged, steps, S)
    return FixedPointResult(
        h=best_h,
        converged=converged,
        steps=steps,
        best_step=best_step,
        residuals=torch.stack(abs_trace, dim=1),
        relative=torch.stack(rel_trace, dim=1),
        finite=finite,
        tol=tol,
    )


def _expand(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _anderson_step(xs: list[torch.Tensor], gs: list[torch.Tensor], beta: float) -> torch.Tensor:
    """Anderson mixing per sample: minimise ``||sum_i a_i g_i||`` with ``sum_i a_i = 1``."""
    B = xs[0].shape[0]
    G = torch.stack([g.reshape(B, -1) for g in gs], dim=1).double()  # (B, m, n)
    X = torch.stack([x.reshape(B, -1) for x in xs], dim=1).double()
    m = G.shape[1]
    gram = G @ G.transpose(1, 2)
    eye = torch.eye(m, dtype=G.dtype, device=G.device)
    gram = gram + 1e-10 * gram.diagonal(dim1=1, dim2=2).mean(-1, keepdim=True)[..., None] * eye
    ones = torch.ones(B, m, 1, dtype=G.dtype, device=G.device)
    w = torch.linalg.lstsq(gram, ones).solution  # (B, m, 1)
    a = w / w.sum(dim=1, keepdim=True)
    a = torch.nan_to_num(a, nan=0.0)
    a[:, -1] += 1.0 - a.sum(dim=1)  # keep the weights summing to one
    mixed = (a.transpose(1, 2) @ (X + beta * G)).squeeze(1)
    return mixed.reshape(xs[0].shape).to(xs[0].dtype)
