"""What an orbit ``h_{t+1} = F(h_t, x)`` settles into, per sample: a fixed point, a cycle, a slow
contraction, no settling at all, or divergence.

The k-step relative residual ``r_k(t) = ||h_t - h_{t-k}|| / ||h_t||`` is tracked for every period
``k <= max_period`` as the orbit runs (``looped.iteration.iterate``), from a buffer of the last states.

* **fixed** (period 1): ``r_1 <= tol`` at two consecutive steps.
* **cycle** of period k > 1: ``r_k <= tol`` at k consecutive steps, while every shorter residual
  ``r_j`` (j < k) stays above ``tol`` and flat (it changed by at most ``FLAT`` of itself over the last
  ``window(k)`` steps). A fixed point approached along an eigenvalue near -1 makes ``r_2`` small long
  before ``r_1`` (``r_2 / r_1 = |1 + lambda|``), but its ``r_1`` keeps falling: it is not flat, so it is
  never reported as a 2-cycle; the smallest k that qualifies is the period, so a fixed point is never a
  cycle and a k-cycle never a 2k-cycle.
* **slow**: not settled at the budget, but for some k (the smallest, with the shorter residuals flat to
  ``SLOW_FLAT``) the k-step change ``||h_t - h_{t-k}||`` still falls geometrically: a least-squares fit of
  its log over the last window has a negative slope and ``R^2 >= SLOW_FIT``. ``rate`` is the fitted
  factor per step and ``needed`` the further steps until ``r_k`` would reach ``tol`` at that rate.
* **diverged**: a non-finite state, or a norm above ``divergence``.
* **unsettled**: none of the above: bounded, not settling, not contracting (quasi-periodic or
  chaotic). ``lyapunov`` is the growth rate of nearby orbits, ``mean log ||J v_t||`` over
  ``LYAPUNOV_STEPS`` steps of a tangent vector carried along the orbit (above 0: they separate).

Tolerances follow the map's precision: ``tol`` is raised per sample to ``PRECISION_MARGIN`` times the
measured relative rounding of the map's Jacobian products at ``h0`` (``product_precision``), as the
linear solves do. For a settled sample, ``multiplier`` is the spectral radius of ``F^period`` at the
attractor point ``h`` (for a cycle, its Floquet multiplier; below 1: the cycle attracts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..iteration import Map, iterate, norms
from .linalg import PRECISION_MARGIN, _random_like, autodiff_safe, jvp_h, product_precision, spectral_radius

KINDS = ("fixed", "cycle", "slow", "unsettled", "diverged")
MAX_PERIOD = 16
FLAT = 1e-3  # a shorter residual counts as flat when it moved by at most this share of itself over the window
SLOW_FLAT = 1e-2  # ... and, for a slow approach to a cycle, by at most this share
SLOW_FIT = 0.8  # R^2 of the log-linear fit that makes a falling residual a contraction
LYAPUNOV_STEPS = 32
DIVERGENCE = 1e8


def window(k: int) -> int:
    """Steps over which shorter residuals must be flat before a k-cycle is reported."""
    return max(16, 4 * k)


def power(F: Map, k: int) -> Map:
    """The k-step map ``F^k(h, x)``: F applied k times with the same input."""
    if k == 1:
        return F

    def Fk(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for _ in range(k):
            h = F(h, x)
        return h

    return Fk


@dataclass
class Attractor:
    """Outcome of ``attractor``, per sample (B the batch, S the steps taken, P ``max_period``).

    kind: the class of each sample, one of ``KINDS``.
    period: (B,) 1 for a fixed point, k for a k-cycle, for a slow sample the period it approaches; 0 otherwise.
    settled_at: (B,) the iteration at which the settling run of ``r_period <= tol`` began (-1 if not settled).
    multiplier: (B,) float64 spectral radius of ``F^period`` at ``h`` (NaN unless fixed or cycle).
    h: (B, ...) a point on the attractor (fixed or cycle); the last iterate otherwise.
    residuals: (B, P, S) float64 ``r_k(t)`` for k = 1..P (row k-1), NaN before step k and after the sample stopped.
    norms: (B, S) float64 ``||h_t||``.
    rate, needed: (B,) float64 for slow samples, the contraction per step and the steps still needed (else NaN).
    lyapunov: (B,) float64 for unsettled samples, the growth rate of nearby orbits per step (else NaN).
    tol: (B,) float64 the tolerance each sample was held to.
    prediction_since: (B,) the iteration from which ``decode`` no longer changed (None without ``decode``).
    prediction_constant: (B,) bool, the decoded prediction is the same on every point of the attractor
        (fixed or cycle); False otherwise (None without ``decode``).
    """

    kind: list[str]
    period: torch.Tensor
    settled_at: torch.Tensor
    multiplier: torch.Tensor
    h: torch.Tensor
    residuals: torch.Tensor
    norms: torch.Tensor
    rate: torch.Tensor
    needed: torch.Tensor
    lyapunov: torch.Tensor
    tol: torch.Tensor
    prediction_since: torch.Tensor | None = None
    prediction_constant: torch.Tensor | None = None

    @property
    def settled(self) -> torch.Tensor:
        """(B,) bool: fixed point or cycle."""
        return torch.tensor([k in ("fixed", "cycle") for k in self.kind])

    def trace(self, k: int | None = None) -> torch.Tensor:
        """(B, S) the one-step residual trace, or with ``k`` each sample's k-step trace (k = 0: its own period)."""
        if k is None:
            return self.residuals[:, 0]
        period = self.period.clamp(min=1) if k == 0 else torch.full_like(self.period, k)
        return self.residuals[torch.arange(len(period)), period - 1]

    def label(self, i: int) -> str:
        """The class of sample ``i`` in words: ``fixed point``, ``2-cycle``, ``slow``, ..."""
        return {"fixed": "fixed point", "cycle": f"{int(self.period[i])}-cycle"}.get(self.kind[i], self.kind[i])


def _settling_period(recent: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """(b,) the smallest period whose residual has just settled (0: none).

    Args: recent (b, P, L) the last L steps of the traces, the current step last (NaN where undefined).
    """
    b, P, L = recent.shape
    found = torch.zeros(b, dtype=torch.long)
    for k in range(1, P + 1):
        streak = max(2, k)
        if streak > L:
            break
        ok = (recent[:, k - 1, L - streak :] <= tol[:, None]).all(dim=1) & (found == 0)
        W = window(k)
        if k > 1 and W + 1 > L:
            continue
        for j in range(1, k):
            now, then = recent[:, j - 1, -1], recent[:, j - 1, -1 - W]
            ok &= (now > tol) & ((now - then).abs() <= FLAT * now)
        found = torch.where(ok, k, found)
    return found


def _slow(r: torch.Tensor, norms_: torch.Tensor, S: int, tol: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(period, rate, needed) of samples whose k-step change ``||h_t - h_{t-k}||`` still falls geometrically at
    the budget (period 0: none). Args: r (b, P, S) residual traces; norms_ (b, S + 1) state norms."""
    b, P = r.shape[:2]
    period = torch.zeros(b, dtype=torch.long)
    rate = torch.full((b,), math.nan, dtype=torch.float64)
    needed = rate.clone()
    for k in range(1, P + 1):
        W = min(max(32, 4 * k), S - k)
        if W < 8:
            break
        ys = (r[:, k - 1, S - W : S] * norms_[:, S - W + 1 : S + 1]).clamp_min(1e-300).log()  # the k-step change
        ts = torch.arange(W, dtype=torch.float64)
        tc = ts - ts.mean()
        slope = ((ys - ys.mean(1, keepdim=True)) * tc).sum(1) / (tc**2).sum()
        fit = slope[:, None] * tc + ys.mean(1, keepdim=True)
        r2 = 1 - ((ys - fit) ** 2).sum(1) / ((ys - ys.mean(1, keepdim=True)) ** 2).sum(1).clamp_min(1e-300)
        ok = torch.isfinite(ys).all(1) & (slope < 0) & (r2 >= SLOW_FIT) & (period == 0)
        for j in range(1, k):
            now, then = r[:, j - 1, S - 1], r[:, j - 1, S - 1 - W]
            ok &= (now > tol) & ((now - then).abs() <= SLOW_FLAT * now)
        period = torch.where(ok, k, period)
        rate = torch.where(ok, slope.exp(), rate)
        needed = torch.where(ok, ((tol.log() - r[:, k - 1, S - 1].log()) / slope).clamp_min(0), needed)
    return period, rate, needed


def _lyapunov(F: Map, h: torch.Tensor, x: torch.Tensor, steps: int = LYAPUNOV_STEPS, seed: int = 0) -> torch.Tensor:
    """(B,) mean log growth per step of a tangent vector carried along the orbit from ``h``."""
    v = _random_like(h, seed)
    v = v / norms(v).view(-1, *[1] * (v.dim() - 1))
    total = torch.zeros(h.shape[0], dtype=torch.float64, device=h.device)
    with autodiff_safe():
        for _ in range(steps):
            h, v = (t.detach() for t in torch.func.jvp(lambda s: F(s, x), (h,), (v,)))
            n = norms(v).double()
            total += n.log()
            v = v / n.clamp_min(1e-300).to(v.dtype).view(-1, *[1] * (v.dim() - 1))
    return total / steps


@torch.no_grad()
def attractor(F: Map, h0: torch.Tensor, x: torch.Tensor, max_iter: int = 500, max_period: int = MAX_PERIOD,
              tol: float = 1e-5, decode=None, divergence: float = DIVERGENCE, seed: int = 0,
              measure: bool = True) -> Attractor:
    """Classify what each sample's orbit from ``h0`` settles into, and measure it there (module docstring).

    Args:
        F: batched map, (B, ...) x (B, ...) -> (B, ...), samples independent.
        h0: (B, ...) initial states; x: (B, ...) inputs.
        max_iter: the budget of iterations. max_period: the longest cycle looked for (at least 1).
        tol: relative k-step residual that counts as settled (raised to the map's precision).
        decode: optional ``decode(h, rows) -> (b, ...)`` prediction of the samples ``rows`` at states ``h``
            (for a model: the task's prediction from the readout); gives ``prediction_since`` and
            ``prediction_constant``.
        measure: compute ``multiplier`` and ``lyapunov`` (False: classify only; both stay NaN).
    Raises ``ValueError`` for a period limit below 1, a budget below 1, a non-finite ``h0`` or a map that
    changes the state's shape.
    """
    if max_period < 1 or max_iter < 1:
        raise ValueError(f"max_period and max_iter must be at least 1, got {max_period} and {max_iter}")
    if not torch.isfinite(h0).all():
        raise ValueError("the initial state is not finite")
    probe = F(h0[:1], x[:1])
    if probe.shape != h0[:1].shape:
        raise ValueError(f"the map returns states of shape {tuple(probe.shape[1:])}, not {tuple(h0.shape[1:])}")
    B, P = h0.shape[0], max_period
    precision = product_precision(lambda u: jvp_h(F, h0, x, u), h0, seed)
    tol_b = torch.maximum(torch.full((B,), float(tol), dtype=torch.float64), PRECISION_MARGIN * precision.cpu())
    past = h0.new_empty((P + 1, *h0.shape))
    past[0] = h0
    r = torch.full((B, P, max_iter + 1), math.nan, dtype=torch.float64)  # column t: r_k(t); column 0 unused
    state_norms = torch.full((B, max_iter + 1), math.nan, dtype=torch.float64)
    state_norms[:, 0] = norms(h0).double().cpu()
    kind = ["unsettled"] * B
    period = torch.zeros(B, dtype=torch.long)
    settled_at = torch.full((B,), -1, dtype=torch.long)
    h_final = h0.clone()
    last_pred = None if decode is None else decode(h0, torch.arange(B, device=h0.device))
    since = None if decode is None else torch.zeros(B, dtype=torch.long)
    S = 0
    for step in iterate(F, h0, x, max_iter):
        t, rows, live = step.t, step.rows, step.live
        S = t
        ids = rows[live].cpu()
        h = step.h[live]
        past[t % (P + 1)][rows[live]] = h
        n = norms(h).double()
        state_norms[ids, t] = n.cpu()
        ks = min(P, t)
        r[ids, :ks, t] = torch.stack([norms(h - past[(t - k) % (P + 1)][rows[live]]) for k in range(1, ks + 1)],
                                     dim=1).double().div(n[:, None]).cpu()
        h_final[rows[live]] = h
        if decode is not None:
            pred = decode(h, rows[live])
            changed = (pred != last_pred[rows[live]]).flatten(1).any(1).cpu()
            since[ids[changed]] = t
            last_pred[rows[live]] = pred
        bad = ~(torch.isfinite(n) & (n < divergence)).cpu()
        found = torch.zeros(len(ids), dtype=torch.long)
        if bool((r[ids, :ks, t] <= tol_b[ids, None]).any()):
            found = _settling_period(r[ids, :, max(0, t - window(P)) : t + 1], tol_b[ids])
        found[bad] = 0
        for i in ids[bad].tolist():
            kind[i] = "diverged"
        for i, k in zip(ids[found > 0].tolist(), found[found > 0].tolist()):
            kind[i], period[i] = ("fixed" if k == 1 else "cycle"), k
            settled_at[i] = t - max(2, k) + 1
        stop = (found > 0) | bad
        step.done = live.clone()
        step.done[live] = stop.to(live.device)
    r, state_norms = r[:, :, 1 : S + 1], state_norms[:, : S + 1]
    open_ = [i for i in range(B) if kind[i] == "unsettled"]
    rate = torch.full((B,), math.nan, dtype=torch.float64)
    needed, lyapunov, multiplier = rate.clone(), rate.clone(), rate.clone()
    if open_:
        idx = torch.tensor(open_)
        k_slow, rate_s, needed_s = _slow(r[idx], state_norms[idx], S, tol_b[idx])
        for j, i in enumerate(open_):
            if k_slow[j] > 0:
                kind[i], period[i], rate[i], needed[i] = "slow", int(k_slow[j]), rate_s[j], needed_s[j]
        still = torch.tensor([i for i in open_ if kind[i] == "unsettled"], dtype=torch.long)
        if len(still) and measure:
            lyapunov[still] = _lyapunov(F, h_final[still.to(h0.device)], x[still.to(h0.device)], seed=seed).cpu()
    for k in sorted({int(p) for i, p in enumerate(period.tolist()) if kind[i] in ("fixed", "cycle") and measure}):
        sel = torch.tensor([i for i in range(B) if kind[i] in ("fixed", "cycle") and period[i] == k])
        dev = sel.to(h0.device)
        multiplier[sel] = spectral_radius(power(F, k), h_final[dev], x[dev], seed=seed).cpu()
    constant = None
    if decode is not None:
        constant = torch.tensor([kind[i] in ("fixed", "cycle") and int(since[i]) <= int(settled_at[i]) + max(2, int(period[i]))
                                 - int(period[i]) for i in range(B)])
    return Attractor(kind=kind, period=period, settled_at=settled_at, multiplier=multiplier, h=h_final, residuals=r,
                     norms=state_norms, rate=rate, needed=needed, lyapunov=lyapunov, tol=tol_b, prediction_since=since,
                     prediction_constant=constant)


@torch.no_grad()
def cycle_distance(F: Map, a: torch.Tensor, b: torch.Tensor, period: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) float64 ``min_j ||a - F^j(b)|| / ||a||`` over the ``period`` points of the cycle through ``b``
    (period 1: the distance between two fixed points). Args: a, b (B, ...); period (B,) at least 1."""
    best = torch.full((a.shape[0],), math.inf, dtype=torch.float64)
    point = b
    for j in range(int(period.max())):
        d = (norms(a - point).double() / norms(a).double().clamp_min(1e-300)).cpu()
        best = torch.where(period > j, torch.minimum(best, d.nan_to_num(nan=math.inf)), best)
        point = F(point, x)
    return best


def on_attractor(F: Map, att: Attractor, x: torch.Tensor, measure) -> torch.Tensor | dict[str, torch.Tensor]:
    """``measure(F^k, h, x)`` at each settled sample's attractor point, with k its period, one call per period:
    (B,) float64, or a dict of them when ``measure`` returns a dict of (b,) tensors; NaN for samples that
    did not settle (nothing is measured at a transient state)."""
    settled, out = att.settled, None
    for k in sorted({int(p) for p in att.period[settled].tolist()}):
        sel = torch.nonzero(settled & (att.period == k)).flatten()
        dev = sel.to(att.h.device)
        got = measure(power(F, k), att.h[dev], x[dev])
        parts = got if isinstance(got, dict) else {"": got}
        if out is None:
            out = {name: torch.full((len(att.kind),), math.nan, dtype=torch.float64) for name in parts}
        for name, value in parts.items():
            out[name][sel] = value.double().cpu()
    if out is None:  # nothing settled
        probe = measure(power(F, 1), att.h[:1], x[:1])
        out = {name: torch.full((len(att.kind),), math.nan, dtype=torch.float64)
               for name in (probe if isinstance(probe, dict) else {"": None})}
    return out[""] if set(out) == {""} else out
