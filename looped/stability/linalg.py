"""Matrix-free linear algebra on the Jacobians of a batched map ``F(h, x)``.

``J_h = dF/dh`` and ``J_x = dF/dx`` are never formed: they are applied through forward-mode
(JVP) and reverse-mode (VJP) products, one independent operator per sample. Krylov methods
(Arnoldi, GMRES) run batched, with a basis per sample.

Attention and autodiff: PyTorch's fused CPU attention kernels support neither forward-mode
autodiff nor double backward, so every product runs under the math SDPA kernel.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

Map = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MatVec = Callable[[torch.Tensor], torch.Tensor]

# A solve counts as converged once its residual is below PRECISION_MARGIN times the smallest residual
# the map's rounding can resolve (or below the requested tol, if that is larger).
PRECISION_MARGIN = 10.0
NEUMANN_RHO = 0.95  # below this spectral radius, plain iteration solves (I - J_h) u = b fast enough
# A solve that stops with its residual more than FAR_FROM_TOL times its tolerance has failed: NaN.
FAR_FROM_TOL = 100.0


def dtype_eps(t: torch.Tensor) -> float:
    """Machine epsilon of a floating tensor's dtype (0 for other dtypes)."""
    return torch.finfo(t.dtype).eps if t.is_floating_point() or t.is_complex() else 0.0


@contextmanager
def autodiff_safe():
    """Run attention through the math kernel, which supports JVPs and double backward."""
    with sdpa_kernel(SDPBackend.MATH):
        yield


def jvp_h(F: Map, h: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``J_h v`` per sample. Args: h, v (B, ...). Returns (B, ...)."""
    with autodiff_safe():
        return torch.func.jvp(lambda s: F(s, x), (h,), (v,))[1].detach()


def jvp_x(F: Map, h: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``J_x v`` per sample. Args: x, v (B, ...). Returns (B, ...) shaped like h."""
    with autodiff_safe():
        return torch.func.jvp(lambda u: F(h, u), (x,), (v,))[1].detach()


def vjp_h(F: Map, h: torch.Tensor, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``J_h^T u`` per sample. Args: h, u (B, ...). Returns (B, ...)."""
    with autodiff_safe():
        _, pullback = torch.func.vjp(lambda s: F(s, x), h)
        return pullback(u)[0].detach()


def _norm(a: torch.Tensor) -> torch.Tensor:
    return a.flatten(1).norm(dim=1)


def _bcast(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.view(-1, *([1] * (like.dim() - 1)))


def _random_like(t: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(t.shape, generator=g, dtype=t.dtype).to(t.device)


def product_precision(op: MatVec, like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Relative rounding error of a linear operator's products, measured from their additivity.

    ``||op(a) + op(c) - op(a + c)|| / (||op(a)|| + ||op(c)||)`` for random ``a, c`` shaped like
    ``like``, and at least the dtype's epsilon. A map that computes partly in float32 (as an RMSNorm
    that casts internally does) shows about 6e-8 here even on float64 tensors.

    Args: op (B, ...) -> (B, ...); like (B, ...). Returns (B,) float64.
    """
    a, c = _random_like(like, seed + 1), _random_like(like, seed + 2)
    oa, oc = op(a), op(c)
    defect = _norm((oa + oc - op(a + c)).double()) / (_norm(oa.double()) + _norm(oc.double())).clamp_min(1e-300)
    return defect.nan_to_num(nan=0.0).clamp_min(dtype_eps(like))


@dataclass
class LinearSolveResult:
    """Outcome of a per-sample linear solve (``gmres``, ``neumann_solve``). B is the batch size.

    u: (B, ...) the solution.
    residual: (B,) float64 relative residual ``||b - A u|| / ||b||`` of ``u``.
    tol: (B,) float64 tolerance it was held to: the requested one, raised to ``PRECISION_MARGIN``
        times the residual that the products' rounding can resolve.
    converged: (B,) bool, ``residual <= tol``.
    steps: (B,) int, operator products applied to the sample.
    """

    u: torch.Tensor
    residual: torch.Tensor
    tol: torch.Tensor
    converged: torch.Tensor
    steps: torch.Tensor

    @property
    def failed(self) -> torch.Tensor:
        """(B,) bool: a non-finite solution, or a residual more than ``FAR_FROM_TOL`` times ``tol``."""
        finite = torch.isfinite(self.u.flatten(1)).all(dim=1) & torch.isfinite(self.residual)
        return ~finite | (self.residual > FAR_FROM_TOL * self.tol)


def arnoldi(matvec: MatVec, v0: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` Arnoldi steps per sample, with twice-repeated Gram-Schmidt.

    Args: matvec (B, ...) -> (B, ...); v0 (B, ...) start vectors.
    Returns: basis V (B, k+1, n) and Hessenberg H (B, k+1, k), float64, with ``A V_k = V_{k+1} H``.
    A sample whose Krylov space closes early (breakdown) gets zero columns after that step.
    """
    B = v0.shape[0]
    shape = v0.shape
    n = v0[0].numel()
    k = min(k, n)
    V = torch.zeros(B, k + 1, n, dtype=torch.float64, device=v0.device)
    H = torch.zeros(B, k + 1, k, dtype=torch.float64, device=v0.device)
    V[:, 0] = (v0.reshape(B, n).double() / _norm(v0).double()[:, None]).nan_to_num()
    for j in range(k):
        w = matvec(V[:, j].reshape(shape).to(v0.dtype)).reshape(B, n).double()
        for _ in range(2):
            coeff = torch.einsum("bin,bn->bi", V[:, : j + 1], w)
            w = w - torch.einsum("bi,bin->bn", coeff, V[:, : j + 1])
            H[:, : j + 1, j] += coeff
        beta = w.norm(dim=1)
        H[:, j + 1, j] = beta
        scale = torch.where(beta > 1e-13 * H[:, : j + 1, j].abs().amax(1).clamp_min(1e-300), 1 / beta, 0.0)
        V[:, j + 1] = w * scale[:, None]
    return V, H


def ritz_values(H: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the square part of a Hessenberg matrix.

    Args: H (B, k+1, k). Returns (B, k) complex; NaN for a sample whose H is not finite.
    """
    k = H.shape[2]
    square = H[:, :k, :k]
    finite = torch.isfinite(square).flatten(1).all(dim=1)  # a non-finite map: NaN, not a LAPACK error
    ev = torch.linalg.eigvals(torch.where(finite[:, None, None], square, 0.0))
    return torch.where(finite[:, None], ev, torch.full_like(ev, complex(math.nan, math.nan)))


def spectral_radius(
    F: Map, h: torch.Tensor, x: torch.Tensor, k: int = 40, warmup: int = 10, seed: int = 0
) -> torch.Tensor:
    """``rho(J_h)`` per sample: the largest ``|eigenvalue|`` of ``dF/dh`` at ``(h, x)``.

    A few power steps filter the start vector, then ``k`` Arnoldi steps give Ritz values. Unlike
    a Rayleigh quotient this is right when the dominant eigenvalues are a complex pair.

    Args: h (B, ...) (normally a fixed point); x (B, ...). Returns (B,) float64.
    """
    h, x = h.detach(), x.detach()
    v = _random_like(h, seed)
    for _ in range(warmup):
        v = jvp_h(F, h, x, v)
        v = v / _bcast(_norm(v).clamp_min(1e-300), v)
    _, H = arnoldi(lambda u: jvp_h(F, h, x, u), v, k)
    return ritz_values(H).abs().amax(dim=1)


def jacobian_norm(F: Map, h: torch.Tensor, x: torch.Tensor, k: int = 40, seed: int = 0) -> torch.Tensor:
    """``||J_h||_2`` per sample, by Lanczos on ``J_h^T J_h`` (alternating JVP and VJP).

    Args: h (B, ...); x (B, ...). Returns (B,) float64.
    """
    h, x = h.detach(), x.detach()
    _, H = arnoldi(lambda u: vjp_h(F, h, x, jvp_h(F, h, x, u)), _random_like(h, seed), k)
    return ritz_values(H).real.clamp_min(0).amax(dim=1).sqrt()


def gmres(matvec: MatVec, b: torch.Tensor, tol: float = 1e-10, restart: int = 60, max_restarts: int = 20,
          precision: torch.Tensor | float = 0.0) -> LinearSolveResult:
    """Solve ``A u = b`` per sample by restarted GMRES.

    A Krylov space of the state's full dimension ``n`` solves the system exactly, so small states
    (``n <= 4 * restart``) get full GMRES: ``restart = n`` and two cycles (the second mops up rounding).
    ``precision`` (B,) is the relative rounding of the products: a computed ``A u`` is taken to be off by
    up to ``precision * (||u|| + ||A u||)``, so a sample stops once its residual is within
    ``PRECISION_MARGIN`` of that floor, or when a cycle no longer lowers it.

    Args: matvec (B, ...) -> (B, ...); b (B, ...). Returns ``LinearSolveResult``.
    """
    B = b.shape[0]
    n = b[0].numel()
    if n <= 4 * restart:
        restart, max_restarts = n, min(max_restarts, 2)
    b64 = b.double()
    bnorm = _norm(b64).clamp_min(1e-300)
    prec = torch.as_tensor(precision, dtype=torch.float64, device=b.device).expand(B)
    u = torch.zeros_like(b64)
    best_u = u.clone()
    best = torch.full((B,), torch.inf, dtype=torch.float64, device=b.device)
    target = torch.full((B,), tol, dtype=torch.float64, device=b.device)
    active = torch.ones(B, dtype=torch.bool, device=b.device)
    steps = torch.zeros(B, dtype=torch.long, device=b.device)
    for cycle in range(max_restarts + 1):
        au = matvec(u.to(b.dtype)).double()
        steps += active
        r = b64 - au
        rel = (_norm(r) / bnorm).nan_to_num(nan=torch.inf)
        floor = PRECISION_MARGIN * prec * (_norm(u) + _norm(au)) / bnorm
        improved = active & (rel < best)
        best_u = torch.where(_bcast(improved, u), u, best_u)
        target = torch.where(improved, floor.clamp_min(tol), target)
        best = torch.where(improved, rel, best)
        active &= improved & (rel > target)  # stop: converged, stalled or non-finite
        if cycle == max_restarts or not bool(active.any()):
            break
        V, H = arnoldi(lambda v: matvec(v.to(b.dtype)).double(), r, restart)
        steps += restart * active
        rhs = torch.zeros(B, H.shape[1], 1, dtype=torch.float64, device=b.device)
        rhs[:, 0, 0] = _norm(r)
        # tiny least-squares problems: solved on the CPU, whose driver copes with rank-deficient H
        H, rhs = H.nan_to_num(), rhs.nan_to_num()
        y = torch.linalg.lstsq(H.cpu(), rhs.cpu(), driver="gelsd").solution.squeeze(-1).to(b.device)  # (B, k)
        du = torch.einsum("bk,bkn->bn", y, V[:, : H.shape[2]]).reshape(b.shape)
        u = torch.where(_bcast(active, u), u + du, u)
    return LinearSolveResult(u=best_u.to(b.dtype), residual=best, tol=target, converged=best <= target, steps=steps)


def neumann_solve(matvec: MatVec, b: torch.Tensor, tol: float = 1e-10, max_iter: int = 2000,
                  precision: torch.Tensor | float = 0.0) -> LinearSolveResult:
    """Solve ``u = J u + b`` by iterating, which converges when ``rho(J) < 1``.

    ``precision`` (B,) is the relative rounding of ``J u``: a sample stops once its residual
    ``||J u + b - u|| / ||b||`` is below ``tol`` or within ``PRECISION_MARGIN`` of
    ``precision * ||J u|| / ||b||``, what that rounding can resolve.

    Args: matvec: u -> J u; b (B, ...). Returns ``LinearSolveResult``.
    """
    B = b.shape[0]
    bnorm = _norm(b).double().clamp_min(1e-300)
    prec = torch.as_tensor(precision, dtype=torch.float64, device=b.device).expand(B)
    u = b.clone()
    rel = torch.full((B,), torch.inf, dtype=torch.float64, device=b.device)
    target = torch.full((B,), tol, dtype=torch.float64, device=b.device)
    active = torch.ones(B, dtype=torch.bool, device=b.device)
    steps = torch.zeros(B, dtype=torch.long, device=b.device)
    for k in range(max_iter):
        nxt = matvec(u) + b
        steps += active
        r = (_norm(nxt - u).double() / bnorm).nan_to_num(nan=torch.inf)  # the residual of u
        floor = PRECISION_MARGIN * prec * _norm(nxt - b).double() / bnorm
        rel = torch.where(active, r, rel)
        target = torch.where(active, floor.clamp_min(tol), target)
        active &= (r > target) & torch.isfinite(r)
        if k == max_iter - 1 or not bool(active.any()):
            break
        u = torch.where(_bcast(active, u), nxt, u)
    return LinearSolveResult(u=u, residual=rel, tol=target, converged=rel <= target, steps=steps)


def solve_identity_minus_jacobian(
    F: Map, h: torch.Tensor, x: torch.Tensor, b: torch.Tensor, tol: float = 1e-10, rho: torch.Tensor | None = None,
    precision: torch.Tensor | None = None, seed: int = 0,
) -> LinearSolveResult:
    """``(I - J_h)^{-1} b`` per sample: iteration when every ``rho < NEUMANN_RHO``, GMRES otherwise and for the
    samples that iteration did not solve.

    Args: h, b (B, ...); rho (B,) ``spectral_radius`` if already known; precision (B,)
    ``product_precision`` of ``J_h`` if already known. Returns ``LinearSolveResult``.
    """
    h, x = h.detach(), x.detach()
    op = lambda u: jvp_h(F, h, x, u)  # noqa: E731
    if rho is None:
        rho = spectral_radius(F, h, x)
    if precision is None:
        precision = product_precision(op, h, seed)
    precision = torch.as_tensor(precision, dtype=torch.float64, device=h.device).expand(h.shape[0])
    if not bool((rho < NEUMANN_RHO).all()):
        return gmres(lambda v: v - op(v), b, tol=tol, precision=precision)
    out = neumann_solve(op, b, tol=tol, precision=precision)
    redo = ~out.converged
    if bool(redo.any()):  # GMRES on the samples iteration did not solve (samples are independent)
        hs, xs = h[redo], x[redo]
        g = gmres(lambda v: v - jvp_h(F, hs, xs, v), b[redo], tol=tol, precision=precision[redo])
        better = g.residual < out.residual[redo]
        for name in ("u", "residual", "tol", "converged"):
            mine, theirs = getattr(out, name), getattr(g, name)
            mine[redo] = torch.where(_bcast(better, theirs), theirs, mine[redo])
        out.steps[redo] += g.steps
    return out


@dataclass
class SensitivityResult:
    """Outcome of ``sensitivity``. B is the batch size.

    value: (B,) float64 ``||(I - J_h)^-1 J_x v||``; NaN where the solve failed (``LinearSolveResult.failed``).
    residual: (B,) float64 relative residual of the linear solve.
    tol: (B,) float64 tolerance the solve was held to (the requested one, raised to the map's precision).
    converged: (B,) bool, ``residual <= tol``.
    precision: (B,) float64 measured relative rounding of the ``J_h`` products (``product_precision``).
    fixed_point_residual: (B,) float64 ``||F(h) - h|| / ||F(h)||`` at the given ``h``.
    """

    value: torch.Tensor
    residual: torch.Tensor
    tol: torch.Tensor
    converged: torch.Tensor
    precision: torch.Tensor
    fixed_point_residual: torch.Tensor


def sensitivity(
    F: Map, h: torch.Tensor, x: torch.Tensor, v: torch.Tensor | None = None, tol: float = 1e-10, seed: int = 0,
    rho: torch.Tensor | None = None,
) -> SensitivityResult:
    """Implicit-function sensitivity ``||(I - J_h)^{-1} J_x v||`` per sample.

    The linear solve is held to ``tol``, raised per sample to ``PRECISION_MARGIN`` times the residual
    the map's own rounding can resolve (measured, so a float64 map that computes partly in float32
    gets about 1e-6). NaN only where the solve fails: a non-finite map or a residual more than
    ``FAR_FROM_TOL`` times that tolerance.

    Args: h (B, ...) a fixed point of ``F(., x)``; x (B, ...); v (B, ...) shaped like x, or None for a
    random direction of unit norm per sample; rho (B,) ``spectral_radius`` if already known.
    Returns ``SensitivityResult``.
    """
    h, x = h.detach(), x.detach()
    if v is None:
        v = _random_like(x, seed)
        v = v / _bcast(_norm(v), v)
    with torch.no_grad():
        fh = F(h, x)
    fp_res = (_norm(fh - h).double() / _norm(fh).double().clamp_min(1e-300)).nan_to_num(nan=torch.inf)
    precision = product_precision(lambda u: jvp_h(F, h, x, u), h, seed)
    out = solve_identity_minus_jacobian(F, h, x, jvp_x(F, h, x, v), tol=tol, rho=rho, precision=precision)
    value = torch.where(out.failed, torch.nan, _norm(out.u).double())
    return SensitivityResult(value=value, residual=out.residual, tol=out.tol, converged=out.converged,
                             precision=precision, fixed_point_residual=fp_res)


def dense_jacobian(F: Map, h: torch.Tensor, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The dense ``J_h`` per sample, for small states. Args: h (B, ...). Returns (B, n, n).

    Samples are independent, so one batched JVP applies ``J_h`` of one sample to ``chunk`` basis
    vectors at once (the sample repeated along the batch).
    """
    B, n = h.shape[0], h[0].numel()
    J = torch.empty(B, n, n, dtype=h.dtype, device=h.device)
    for b in range(B):
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            basis = torch.zeros(m, n, dtype=h.dtype, device=h.device)
            basis[torch.arange(m), torch.arange(start, start + m)] = 1.0
            hb = h[b : b + 1].expand(m, *h.shape[1:]).contiguous()
            xb = x[b : b + 1].expand(m, *x.shape[1:]).contiguous()
            J[b, :, start : start + m] = jvp_h(F, hb, xb, basis.reshape(hb.shape)).reshape(m, n).T
    return J
