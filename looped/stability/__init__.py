"""Fixed-point stability toolkit for any looped map ``F(h, x) -> h_next`` over batched tensors.

>>> from looped import stability
>>> att = stability.attractor(F, h0, x, max_iter=500)       # per sample: kind (fixed, cycle, slow, ...), period, h
>>> rho = stability.on_attractor(F, att, x, stability.spectral_radius)   # (B,) rho of F^period at the attractor
>>> res = stability.fixed_point(F, h0, x, max_iter=500, tol=1e-5)   # res.h, res.converged, res.steps, res.residuals
>>> sens = stability.sensitivity(F, res.h, x)                 # sens.value (B,) ||(I - J_h)^-1 J_x v||

``F`` maps batched tensors (batch first) and must treat samples independently. For a
looped model (``LoopedTransformer``, ``DTNet``), ``stability.from_model(model, tokens)`` gives ``(F, h0, x)``.
"""

from __future__ import annotations

import warnings

import torch

from .attractors import KINDS, MAX_PERIOD, Attractor, attractor, cycle_distance, on_attractor, power
from .analysis import (
    AutonomyReport,
    BackwardReport,
    BasinReport,
    autonomy_check,
    backward_stability,
    basins,
    condition_number,
    count_distinct,
    norm_growth,
    decay_rate,
    lipschitz,
    unrolled_gradient_growth,
)
from .linalg import (
    FAR_FROM_TOL,
    PRECISION_MARGIN,
    LinearSolveResult,
    SensitivityResult,
    autodiff_safe,
    dense_jacobian,
    gmres,
    jacobian_norm,
    jvp_h,
    jvp_x,
    neumann_solve,
    product_precision,
    sensitivity,
    spectral_radius,
    vjp_h,
)
from .solver import FixedPointResult, fixed_point


def solve(*args, **kwargs) -> FixedPointResult:
    """Deprecated name of ``fixed_point`` (``looped.solve`` solves a task's inputs); goes in the next release."""
    warnings.warn("looped.stability.solve is now looped.stability.fixed_point; the old name goes in the next release",
                  FutureWarning, stacklevel=2)
    return fixed_point(*args, **kwargs)


def __getattr__(name: str):
    if name == "SolveResult":
        warnings.warn("looped.stability.SolveResult is now FixedPointResult; the old name goes in the next release",
                      FutureWarning, stacklevel=2)
        return FixedPointResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def from_model(model, tokens: torch.Tensor, positions: torch.Tensor | None = None):
    """Adapter for a looped model (``looped.model.Looped``): returns ``(F, h0, x)`` with ``F = model.step``.

    Args: tokens (B, L). Returns F: (B, L, d) x (B, L, d) -> (B, L, d), h0 (B, L, d) and the embedded
    input x (B, L, d). Sensitivities are with respect to the input embedding.
    """
    with torch.no_grad():
        x = model.embed_input(tokens, positions)
        h0 = model.initial_state(x)
    return model.step, h0, x


__all__ = [
    "FAR_FROM_TOL", "KINDS", "MAX_PERIOD", "PRECISION_MARGIN", "Attractor", "AutonomyReport", "BackwardReport", "BasinReport", "LinearSolveResult",
    "SensitivityResult", "FixedPointResult", "FixedPointResult", "attractor", "autodiff_safe", "autonomy_check", "backward_stability", "basins",
    "condition_number", "count_distinct", "cycle_distance", "decay_rate", "dense_jacobian", "from_model", "gmres", "jacobian_norm",
    "jvp_h", "jvp_x", "lipschitz", "neumann_solve", "norm_growth", "on_attractor", "power", "fixed_point", "product_precision", "sensitivity",
    "spectral_radius", "unrolled_gradient_growth", "vjp_h",
]
