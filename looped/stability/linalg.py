"""Matrix-free linear algebra on the Jacobians of a batched map ``F(h, x)``.

``J_h = dF/dh`` and ``J_x = dF/dx`` are never formed: they are applied through forward-mode
(JVP) and reverse-mode (VJP) products, one independent operator per sample. Krylov methods
(Arnoldi, GMRES) run batched, with a basis per sample.

Attention and autodiff: PyTorch's fused CPU attention kernels support neither forward-mode
autodiff nor double backward, so every product runs under the math SDPA kernel.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

Map = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MatVec = Callable[[torch.Tensor], torch.Tensor]


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
    """Eigenvalues of the square part of a Hessenberg matrix. Args: H (B, k+1, k). Returns (B, k) complex."""
    k = H.shape[2]
    return torch.linalg.eigvals(H[:, :k, :k])


def _random_like(t: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(t.shape, generator=g, dtype=t.dtype).to(t.device)


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


def gmres(matvec: MatVec, b: torch.Tensor, tol: float = 1e-10, restart: int = 60, max_restarts: int = 20):
    """Solve ``A u = b`` per sample by restarted GMRES.

    A Krylov space of the state's full dimension ``n`` solves the system exactly, so small states
    (``n <= 4 * restart``) get full GMRES: ``restart = n`` and two cycles (the second mops up rounding).

    Args: matvec (B, ...) -> (B, ...); b (B, ...). Returns (u (B, ...), relative residual (B,), converged (B,)).
    """
    B = b.shape[0]
    n = b[0].numel()
    if n <= 4 * restart:
        restart, max_restarts = n, min(max_restarts, 2)
    u = torch.zeros_like(b, dtype=torch.float64)
    b64 = b.double()
    bnorm = _norm(b64).clamp_min(1e-300)
    rel = torch.ones(B, dtype=torch.float64, device=b.device)
    for _ in range(max_restarts):
        r = b64 - matvec(u.to(b.dtype)).double()
        rel = _norm(r) / bnorm
        if bool((rel < tol).all()):
            break
        V, H = arnoldi(lambda v: matvec(v.to(b.dtype)).double(), r, restart)
        rhs = torch.zeros(B, H.shape[1], 1, dtype=torch.float64, device=b.device)
        rhs[:, 0, 0] = _norm(r)
        # tiny least-squares problems: solved on the CPU, whose driver copes with rank-deficient H
        y = torch.linalg.lstsq(H.cpu(), rhs.cpu(), driver="gelsd").solution.squeeze(-1).to(b.device)  # (B, k)
        du = torch.einsum("bk,bkn->bn", y, V[:, : H.shape[2]]).reshape(b.shape)
        u = u + torch.where(_bcast(rel < tol, u), 0.0, du)
    r = b64 - matvec(u.to(b.dtype)).double()
    rel = _norm(r) / bnorm
    return u.to(b.dtype), rel, rel < tol


def neumann_solve(matvec: MatVec, b: torch.Tensor, tol: float = 1e-10, max_iter: int = 2000):
    """Solve ``u = J u + b`` by iterating, which converges when ``rho(J) < 1``.

    Args: matvec: u -> J u; b (B, ...). Returns (u, relative residual (B,), converged (B,)).
    """
    u = b.clone()
    bnorm = _norm(b).clamp_min(1e-300)
    rel = torch.ones(b.shape[0], dtype=b.dtype, device=b.device)
    for _ in range(max_iter):
        nxt = matvec(u) + b
        rel = _norm(nxt - u) / bnorm
        u = nxt
        if bool((rel < tol).all()) or not bool(torch.isfinite(rel).all()):
            break
    return u, rel, rel < tol


def solve_identity_minus_jacobian(
    F: Map, h: torch.Tensor, x: torch.Tensor, b: torch.Tensor, tol: float = 1e-10, rho: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(I - J_h)^{-1} b`` per sample: iteration when ``rho < 1``, GMRES otherwise or on failure.

    Returns (u (B, ...), converged (B,)).
    """
    h, x = h.detach(), x.detach()
    op = lambda u: jvp_h(F, h, x, u)  # noqa: E731
    if rho is None:
        rho = spectral_radius(F, h, x)
    u = torch.zeros_like(b)
    done = torch.zeros(b.shape[0], dtype=torch.bool, device=b.device)
    if bool((rho < 0.95).all()):
        u, _, done = neumann_solve(op, b, tol=tol)
    if not bool(done.all()):
        u_g, _, ok = gmres(lambda v: v - op(v), b, tol=tol)
        u = torch.where(_bcast(done, u), u, u_g)
        done = done | ok
    return u, done


def sensitivity(
    F: Map, h: torch.Tensor, x: torch.Tensor, v: torch.Tensor | None = None, tol: float = 1e-10, seed: int = 0,
    rho: torch.Tensor | None = None,
) -> torch.Tensor:
    """Implicit-function sensitivity ``||(I - J_h)^{-1} J_x v||`` per sample.

    Args: h (B, ...) a fixed point of ``F(., x)``; x (B, ...); v (B, ...) shaped like x, or None for a
    random direction of unit norm per sample; rho (B,) ``spectral_radius`` if already known.
    Returns (B,) float64; NaN where the solve failed.
    """
    h, x = h.detach(), x.detach()
    if v is None:
        v = _random_like(x, seed)
        v = v / _bcast(_norm(v), v)
    u, ok = solve_identity_minus_jacobian(F, h, x, jvp_x(F, h, x, v), tol=tol, rho=rho)
    return torch.where(ok, _norm(u).double(), torch.nan)


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
