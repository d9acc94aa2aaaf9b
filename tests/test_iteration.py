"""The one loop (``looped.iteration.iterate``) under the model's forward pass, evaluation with halting and
the stability solver gives exactly what the three loops it replaced gave, on the shipped models.

The ``former_*`` functions below are those three loops as they stood before ``iterate`` existed
(commit ce33033), kept here as oracles. Equality is exact: the same arithmetic in the same order.
"""

from __future__ import annotations

import copy

import pytest
import torch

from looped import runs, stability
from looped.evaluation import Halting, iterate as halting_loop
from looped.iteration import Step, iterate

MODELS = ("prefix-sums", "sudoku", "chess")


def _residual(h_next, h, eps=1e-12):
    return (h_next - h).flatten(1).norm(dim=1) / (h_next.flatten(1).norm(dim=1) + eps)


def former_forward(model, tokens, iterations, positions, logits_at):
    x = model.embed_input(tokens, positions)
    h = model.initial_state(x)
    logits, residuals = {}, []
    for t in range(1, iterations + 1):
        h_next = model.step(h, x)
        residuals.append(_residual(h_next, h))
        h = h_next
        if t in logits_at:
            logits[t] = model.readout(h)
    return logits, torch.stack(residuals), h


@torch.no_grad()
def former_halting_loop(model, task, tokens, positions, max_iters, halting):
    """Yields (logits, residual, used, live) after each step, as ``evaluate.iterate`` did."""
    x = model.embed_input(tokens, positions)
    h = model.initial_state(x)
    B = tokens.shape[0]
    logits_all, resid, used = model.readout(h), torch.zeros(B), torch.zeros(B, dtype=torch.long)
    rows, active = torch.arange(B), torch.ones(B, dtype=torch.bool)
    last, unchanged = task.predict(tokens, logits_all), torch.zeros(B, dtype=torch.long)
    for _ in range(max_iters):
        h_next = model.step(h, x)
        r = _residual(h_next, h)
        h = h_next
        on = active[rows]
        ids = rows[on]
        logits = model.readout(h[on])
        logits_all[ids], resid[ids] = logits, r[on].to(resid.dtype)
        used[ids] += 1
        pred = task.predict(tokens[ids], logits)
        unchanged[ids] = torch.where((pred == last[ids]).flatten(1).all(1), unchanged[ids] + 1, 0)
        last[ids] = pred
        active[ids[(r[on] < halting.tol) | (unchanged[ids] >= halting.patience)]] = False
        keep = active[rows]
        if int(keep.sum()) <= 0.75 * len(rows):
            rows, h, x = rows[keep], h[keep], x[keep]
        yield logits_all.clone(), resid.clone(), used.clone(), int(active.sum())
        if not active.any():
            return


@torch.no_grad()
def former_solve(F, h0, x, max_iter, tol, divergence=1e8, eps=1e-12):
    """The plain-iteration fixed-point solver as it was: (best h, relative trace, steps, best step)."""
    tol = max(tol, 10.0 * torch.finfo(h0.dtype).eps)
    B = h0.shape[0]
    h = h0.clone()
    active = torch.ones(B, dtype=torch.bool)
    converged = torch.zeros_like(active)
    steps = torch.full((B,), max_iter, dtype=torch.long)
    best = torch.full((B,), float("inf"), dtype=torch.float64)
    best_step = torch.zeros(B, dtype=torch.long)
    best_h, trace = h0.clone(), []
    for k in range(1, max_iter + 1):
        fh = F(h, x)
        r_abs = (fh - h).flatten(1).norm(dim=1).double()
        r_rel = r_abs / (fh.flatten(1).norm(dim=1).double() + eps)
        ok = torch.isfinite(r_rel) & (fh.flatten(1).norm(dim=1) < divergence)
        trace.append(torch.where(active & ok, r_rel, torch.nan))
        improved = active & ok & (r_rel < best)
        best = torch.where(improved, r_rel, best)
        best_step = torch.where(improved, k, best_step)
        best_h[improved] = fh[improved]
        newly = active & ok & (r_rel < tol)
        converged |= newly
        steps = torch.where(newly, k, steps)
        active &= ok & ~newly
        if not active.any():
            break
        h = torch.where(active.view(-1, *[1] * (h.dim() - 1)), fh, h)
    steps = torch.where(converged, steps, len(trace))
    return best_h, torch.stack(trace, dim=1), steps, best_step


def shipped(name):
    model, task, _ = runs.load_model(runs.shipped_model(name))
    split = {"prefix-sums": "48", "sudoku": "hard", "chess": "mate2"}[name]
    batch = task.generate(task.split(split), 12, seed=5)
    return model, task, batch


@pytest.mark.parametrize("name", MODELS)
def test_forward_equals_the_former_loop(name):
    model, task, batch = shipped(name)
    with torch.no_grad():
        out = model(batch.inputs, 20, positions=batch.positions, logits_at=[0, 1, 7, 20], track_residuals=True)
        logits, residuals, h = former_forward(model, batch.inputs, 20, batch.positions, {1, 7, 20})
    assert torch.equal(out.residuals, residuals) and torch.equal(out.state, h)
    for t in (1, 7, 20):
        assert torch.equal(out.logits[t], logits[t])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("halting", [Halting(tol=1e-3, patience=3), Halting(tol=1e-2, patience=1000)])
def test_halting_evaluation_equals_the_former_loop(name, halting):
    model, task, batch = shipped(name)
    pos = batch.positions
    new = [copy.deepcopy(state) for state in halting_loop(model, task, batch.inputs, pos, 40, halting)]
    old = list(former_halting_loop(model, task, batch.inputs, pos, 40, halting))
    assert len(new) == len(old)
    assert len({int(u) for u in old[-1][2]}) >= 2  # inputs halt at different steps: compaction is exercised
    for state, (logits, resid, used, live) in zip(new, old):
        assert torch.equal(state.logits, logits) and torch.equal(state.residual, resid)
        assert torch.equal(state.used, used) and state.live == live


@pytest.mark.parametrize("name", MODELS)
def test_stability_solve_equals_the_former_solver(name):
    model, task, batch = shipped(name)
    model = copy.deepcopy(model).double()
    F, h0, x = stability.from_model(model, batch.inputs, batch.positions)
    res = stability.fixed_point(F, h0, x, max_iter=60, tol=1e-4)
    best_h, trace, steps, best_step = former_solve(F, h0, x, max_iter=60, tol=1e-4)
    assert torch.equal(res.h, best_h) and torch.equal(res.steps, steps) and torch.equal(res.best_step, best_step)
    assert torch.equal(res.relative.isnan(), trace.isnan())
    assert torch.equal(res.relative.nan_to_num(), trace.nan_to_num())


def test_iterate_drops_stopped_samples_once_few_are_live():
    F = lambda h, x: 0.5 * h + x  # noqa: E731
    x = torch.arange(8.0)[:, None]
    sizes, seen = [], set()
    for step in iterate(F, torch.zeros(8, 1), x, 10):
        sizes.append(len(step.rows))
        seen |= set(step.rows[step.live].tolist())
        step.done = step.live & (step.rows < step.t)  # sample i stops at step i + 1
        assert torch.equal(step.h, 0.5 * step.prev + x[step.rows])  # each row keeps its own input
    # live after step t is 8 - t of the working rows: 7/8 stays; 6/8 <= 0.75 drops to 6; 5/6 stays; 4/6 drops
    # to 4; then 3/4, 2/3 and 1/2 each drop; the last sample stops at step 8 and the loop ends
    assert sizes == [8, 8, 6, 6, 4, 3, 2, 1]
    assert seen == set(range(8))


def test_step_residual_is_the_relative_change():
    prev, h = torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[0.0, 4.0], [1.0, 0.0]])
    step = Step(1, prev, h, torch.arange(2), torch.ones(2, dtype=torch.bool))
    assert step.change.tolist() == [3.0, 0.0] and step.norm.tolist() == [4.0, 1.0]
    assert step.residual.tolist() == pytest.approx([0.75, 0.0])
