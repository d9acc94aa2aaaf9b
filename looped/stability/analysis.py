"""The three axes of fixed-point stability, measured on any batched map ``F(h, x)``.

* reachability: does iteration converge (residuals, decay rate, ``rho(J_h) < 1``, basins);
* input-dependence: does ``h*`` move with ``x`` (IFT sensitivity, distinct fixed points, autonomy);
* geometry: is ``x -> h*(x)`` smooth (Lipschitz, ``cond(I - J_h)``) and backpropagation stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .linalg import (
    Map, _bcast, _norm, _random_like, arnoldi, autodiff_safe, dense_jacobian, jvp_h, neumann_solve, product_precision,
    ritz_values, vjp_h,
)
from ..iteration import iterate
from .solver import FixedPointResult, fixed_point


# -- reachability ----------------------------------------------------------------------------


@torch.no_grad()
def norm_growth(F: Map, h0: torch.Tensor, x: torch.Tensor, steps: int) -> torch.Tensor:
    """(B,) ``||h_T|| / ||h_0||`` after ``steps`` plain iterations (inf once an iterate is non-finite)."""
    h = h0
    for step in iterate(F, h0, x, steps):
        h = step.h
    growth = _norm(h) / _norm(h0).clamp_min(1e-30)
    return torch.where(torch.isfinite(growth), growth, torch.full_like(growth, math.inf))


def decay_rate(res: FixedPointResult, window: int = 20) -> torch.Tensor:
    """Per-sample geometric decay factor of the relative residual over its last ``window`` finite steps.

    A value below 1 is linear convergence at that rate per step. Returns (B,) float64 (NaN if < 2 steps).
    """
    out = torch.full((res.relative.shape[0],), math.nan, dtype=torch.float64)
    for b, row in enumerate(res.relative.cpu()):
        vals = row[torch.isfinite(row) & (row > 0)][-window:]
        if len(vals) >= 2:
            out[b] = torch.exp((vals[-1].log() - vals[0].log()) / (len(vals) - 1))
    return out


@dataclass
class BasinReport:
    """Whether samples reach the same fixed point from ``trials`` random initial states.

    same_basin: (B,) bool, all trials agree with the first within tolerance.
    spread: (B,) largest distance from the first trial's fixed point, relative to its norm.
    """

    same_basin: torch.Tensor
    spread: torch.Tensor


def basins(F: Map, h0: torch.Tensor, x: torch.Tensor, trials: int = 4, max_iter: int = 500, tol: float = 1e-5,
           agree: float = 1e-3, seed: int = 0) -> BasinReport:
    """Solve from ``h0`` and from ``trials - 1`` random states of the same scale; compare fixed points."""
    first = fixed_point(F, h0, x, max_iter=max_iter, tol=tol).h
    scale = _bcast(_norm(h0) / math.sqrt(h0[0].numel()), h0)
    spread = torch.zeros(h0.shape[0], dtype=torch.float64, device=h0.device)
    for t in range(1, trials):
        start = _random_like(h0, seed + t) * scale
        other = fixed_point(F, start, x, max_iter=max_iter, tol=tol).h
        d = (_norm(other - first) / _norm(first).clamp_min(1e-30)).double()
        spread = torch.maximum(spread, torch.nan_to_num(d, nan=math.inf))
    return BasinReport(same_basin=spread < agree, spread=spread)


# -- input-dependence -------------------------------------------------------------------------
def count_distinct(points: torch.Tensor, residuals: torch.Tensor, scale: float = 10.0) -> int:
    """Number of distinct fixed points among ``points`` (B, ...), clustered greedily.

    Two points are the same when their distance is below ``scale`` times the larger of their
    absolute residuals (how far each is from an exact fixed point), plus a floor of 1e-6 of
    their norm. Args: residuals (B,) absolute residuals ``||F(h) - h||``.
    """
    flat = points.flatten(1).double()
    res = residuals.double().nan_to_num(nan=math.inf)
    centers: list[int] = []
    for i in range(flat.shape[0]):
        if not torch.isfinite(flat[i]).all():
            continue
        same = False
        for c in centers:
            tol = scale * max(res[i].item(), res[c].item()) + 1e-6 * flat[c].norm().item()
            if (flat[i] - flat[c]).norm().item() <= tol:
                same = True
                break
        if not same:
            centers.append(i)
    return len(centers)


@dataclass
class AutonomyReport:
    """With ``h_0`` held fixed, does changing ``x`` change ``h*``?

    input_dependent: True when some pair of inputs gives fixed points further apart than tolerance.
    max_change: the largest relative change of ``h*`` between the first input and the others.
    distinct: distinct fixed points over the inputs.
    """

    input_dependent: bool
    max_change: float
    distinct: int


def autonomy_check(F: Map, h0: torch.Tensor, x: torch.Tensor, max_iter: int = 500, tol: float = 1e-5,
                   agree: float = 1e-3) -> AutonomyReport:
    """Start every input from the same ``h0[0]`` and compare the fixed points.

    Args: h0 (B, ...) (only ``h0[0]`` is used); x (B, ...) with B >= 2 different inputs.
    """
    start = h0[:1].expand_as(h0).clone()
    res = fixed_point(F, start, x, max_iter=max_iter, tol=tol)
    h = res.h
    change = (_norm(h - h[:1]) / _norm(h[:1]).clamp_min(1e-30)).double().nan_to_num(nan=math.inf)
    final_res = res.residuals.nan_to_num(nan=math.inf).amin(dim=1)
    distinct = count_distinct(h, final_res)
    return AutonomyReport(input_dependent=bool(change.max() > agree), max_change=float(change.max()),
                          distinct=distinct)


# -- geometry ------------------------------------------------------------------------------
def lipschitz(F: Map, h: torch.Tensor, x: torch.Tensor, directions: int = 4, eps: float = 1e-3,
              max_iter: int = 500, tol: float = 1e-7, seed: int = 0) -> torch.Tensor:
    """Local Lipschitz constant of ``x -> h*(x)``: the largest ``||h*(x + eps d) - h*(x)|| / eps``
    over random unit directions ``d`` (fixed points re-solved warm from ``h``). Returns (B,), NaN
    where a perturbed fixed point is not reached (then ``x -> h*(x)`` is not defined there)."""
    best = torch.zeros(h.shape[0], dtype=torch.float64, device=h.device)
    for t in range(directions):
        d = _random_like(x, seed + 100 + t)
        d = d / _bcast(_norm(d), d)
        res = fixed_point(F, h, x + eps * d, max_iter=max_iter, tol=tol)
        ratio = (_norm(res.h - h) / eps).double().nan_to_num(nan=math.inf)
        best = torch.where(res.reachable, torch.maximum(best, ratio), torch.nan)
    return best


def condition_number(F: Map, h: torch.Tensor, x: torch.Tensor, dense_limit: int = 2048, k: int = 40) -> tuple[torch.Tensor, bool]:
    """``cond(I - J_h)`` per sample: exact from the dense Jacobian when the state has at most
    ``dense_limit`` entries, else estimated from the extreme Ritz values of ``(I-J)^T (I-J)`` after
    ``k`` Lanczos steps (an estimate of the smallest singular value from above, so a lower bound).

    Returns ((B,) float64, whether it is exact).
    """
    n = h[0].numel()
    if n <= dense_limit:
        J = dense_jacobian(F, h.detach(), x.detach()).double()
        s = torch.linalg.svdvals(torch.eye(n, dtype=J.dtype, device=J.device) - J)
        return s[:, 0] / s[:, -1], True
    h, x = h.detach(), x.detach()

    def op(u):
        a = u - jvp_h(F, h, x, u)
        return a - vjp_h(F, h, x, a)

    _, H = arnoldi(op, _random_like(h, 7), k)
    ev = ritz_values(H).real.clamp_min(1e-300)
    return (ev.amax(1) / ev.amin(1)).sqrt(), False


@dataclass
class BackwardReport:
    """Implicit backward solve ``g = J^T g + grad`` and gradient growth through unrolled steps.

    converged: (B,) whether the backward fixed-point iteration reached ``tol``.
    steps: (B,) iterations it took (``max_iter`` if not converged).
    unrolled_growth: (B,) ``||dL/dh_0|| / ||dL/dh_T||`` through ``unroll`` unrolled iterations.
    residual: (B,) float64 relative residual ``||J^T g + grad - g|| / ||grad||`` it reached.
    tol: (B,) float64 tolerance it was held to: ``tol``, raised to the map's precision (``neumann_solve``).
    """

    converged: torch.Tensor
    steps: torch.Tensor
    unrolled_growth: torch.Tensor
    residual: torch.Tensor
    tol: torch.Tensor


def backward_stability(F: Map, h: torch.Tensor, x: torch.Tensor, max_iter: int = 200, tol: float = 1e-6,
                       unroll: int = 32, seed: int = 0) -> BackwardReport:
    """Does the implicit (IFT) backward pass converge, and how do unrolled gradients grow?"""
    h, x = h.detach(), x.detach()
    grad = _random_like(h, seed + 1)
    op = lambda g: vjp_h(F, h, x, g)  # noqa: E731
    out = neumann_solve(op, grad, tol=tol, max_iter=max_iter, precision=product_precision(op, h, seed))
    growth = unrolled_gradient_growth(F, h, x, unroll, grad)
    steps = torch.where(out.converged, out.steps, max_iter)
    return BackwardReport(converged=out.converged, steps=steps, unrolled_growth=growth, residual=out.residual,
                          tol=out.tol)


def unrolled_gradient_growth(F: Map, h0: torch.Tensor, x: torch.Tensor, unroll: int, direction: torch.Tensor) -> torch.Tensor:
    """``||dL/dh_0|| / ||dL/dh_T||`` for ``L = <direction, h_T>`` after ``unroll`` steps. Returns (B,)."""
    with torch.enable_grad(), autodiff_safe():
        start = h0.detach().requires_grad_(True)
        h = start
        for step in iterate(F, start, x, unroll):
            h = step.h
        (g0,) = torch.autograd.grad((h * direction).sum(), start)
    return (_norm(g0) / _norm(direction)).double()
