"""Attractor classification (``stability.attractor``) on maps whose attractors are known in closed form or to
float64 precision, batched with a different parameter per sample, and on the shipped sudoku model."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from looped import cli, runs, stability
from looped.stability.attractors import power

LOGISTIC = lambda h, r: r * h * (1 - h)  # noqa: E731


def logistic_cycle(r: float, period: int) -> tuple[list[float], float]:
    """The attracting cycle of the logistic map at ``r`` and its multiplier, independently of the toolkit: plain
    Python float iteration far past the transient, then the product of ``f'(x) = r (1 - 2 x)`` over the cycle."""
    x = 0.3
    for _ in range(100_000):
        x = r * x * (1 - x)
    points = []
    for _ in range(period):
        points.append(x)
        x = r * x * (1 - x)
    assert abs(x - points[0]) < 1e-12  # it is a cycle of that period
    return points, math.prod(r * (1 - 2 * p) for p in points)


def test_logistic_fixed_point_cycles_and_chaos_in_one_batch():
    rs = torch.tensor([2.8, 3.2, 3.5, 3.9], dtype=torch.float64)[:, None]
    att = stability.attractor(LOGISTIC, torch.full((4, 1), 0.3, dtype=torch.float64), rs, max_iter=2000)
    assert att.kind == ["fixed", "cycle", "cycle", "unsettled"]
    assert att.period.tolist() == [1, 2, 4, 0]
    for i, (r, period) in enumerate(((2.8, 1), (3.2, 2), (3.5, 4))):
        points, multiplier = logistic_cycle(r, period)
        assert min(abs(float(att.h[i]) - p) for p in points) < 1e-5
        assert float(att.multiplier[i]) == pytest.approx(abs(multiplier), rel=1e-3)
    assert float(att.lyapunov[3]) > 0.2  # nearby orbits separate: the logistic map at 3.9 is chaotic (about 0.5)
    assert math.isnan(float(att.multiplier[3]))


def test_a_fixed_point_near_flip_is_never_a_two_cycle():
    """At r = 2.99 the fixed point's multiplier is -0.99: r_2 falls below tol long before r_1 does."""
    rs = torch.tensor([2.99, 2.99], dtype=torch.float64)[:, None]
    start = torch.full((2, 1), 0.3, dtype=torch.float64)
    short = stability.attractor(LOGISTIC, start, rs, max_iter=300)
    assert short.kind == ["slow", "slow"] and short.period.tolist() == [1, 1]
    assert float(short.rate[0]) == pytest.approx(0.99, abs=2e-3)
    long = stability.attractor(LOGISTIC, start, rs, max_iter=3000)
    assert long.kind == ["fixed", "fixed"] and float(long.multiplier[0]) == pytest.approx(0.99, rel=1e-3)


def test_a_linear_map_with_radius_0999_is_slow_at_a_short_budget_and_never_a_cycle():
    torch.manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    A = Q @ torch.diag(torch.tensor([0.999, -0.999, 0.5, 0.3, -0.2, 0.1], dtype=torch.float64)) @ Q.T
    F = lambda h, x: h @ A.T + x  # noqa: E731
    att = stability.attractor(F, torch.zeros(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64),
                              max_iter=400)
    assert att.kind == ["slow"] * 3 and set(att.period.tolist()) <= {1, 2}
    assert all(0.99 < float(r) < 1.0 for r in att.rate) and all(float(n) > 100 for n in att.needed)


def test_a_divergent_sample_beside_a_settling_one():
    F = lambda h, x: x[:, :1] * h + x  # noqa: E731 (per sample: gain 3 diverges, gain 0.5 has a fixed point)
    x = torch.tensor([[3.0] * 3, [0.5] * 3], dtype=torch.float64)
    att = stability.attractor(F, torch.ones(2, 3, dtype=torch.float64), x, max_iter=200)
    assert att.kind == ["diverged", "fixed"] and float(att.multiplier[1]) == pytest.approx(0.5, rel=1e-6)


def test_period_limit_and_the_map_are_checked():
    F = lambda h, x: 0.5 * h + x  # noqa: E731
    h, x = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="max_period"):
        stability.attractor(F, h, x, max_period=0)
    with pytest.raises(ValueError, match="shape"):
        stability.attractor(lambda h, x: h[:, :2], h, x)
    with pytest.raises(ValueError, match="not finite"):
        stability.attractor(F, torch.full((2, 3), math.nan), x)


def test_a_cycle_longer_than_the_limit_is_not_reported_as_a_shorter_one():
    rs = torch.tensor([[3.5]], dtype=torch.float64)  # a 4-cycle
    att = stability.attractor(LOGISTIC, torch.full((1, 1), 0.3, dtype=torch.float64), rs, max_iter=500, max_period=3)
    assert att.kind == ["unsettled"]


def test_measurements_on_a_cycle_use_the_k_step_map():
    rs = torch.tensor([[3.2], [2.8]], dtype=torch.float64)
    att = stability.attractor(LOGISTIC, torch.full((2, 1), 0.3, dtype=torch.float64), rs, max_iter=500)
    rho = stability.on_attractor(LOGISTIC, att, rs, stability.spectral_radius)
    assert rho.tolist() == pytest.approx(att.multiplier.tolist())
    h = att.h[:1]
    assert float(power(LOGISTIC, 2)(h, rs[:1])) == pytest.approx(float(h), abs=1e-5)  # a point of the cycle


@pytest.fixture(scope="module")
def sudoku():
    model, task, _ = runs.load_model(runs.shipped_model("sudoku"))
    model = copy.deepcopy(model).double()
    batch = task.generate(task.split("easy"), 2, seed=10**12)
    F, h0, x = stability.from_model(model, batch.inputs, batch.positions)
    return F, h0, x


def test_the_shipped_sudoku_model_settles_into_two_cycles_whose_multiplier_is_that_of_f_after_f(sudoku):
    """The reported multiplier is the spectral radius of the two-step map at a cycle point: checked against the
    dense float64 Jacobian of F o F (one column per basis vector) and ARPACK's largest eigenvalues."""
    sla = pytest.importorskip("scipy.sparse.linalg")
    F, h0, x = sudoku
    att = stability.attractor(F, h0, x, max_iter=500)
    assert att.kind == ["cycle", "cycle"] and att.period.tolist() == [2, 2]
    J = stability.dense_jacobian(power(F, 2), att.h[:1], x[:1])[0]
    dense = abs(sla.eigs(J.numpy(), k=4, which="LM", return_eigenvectors=False)).max()
    assert float(att.multiplier[0]) == pytest.approx(dense, rel=1e-6)
    one_step = stability.spectral_radius(F, att.h[:1], x[:1])
    assert abs(float(one_step) - dense) > 1e-3  # the one-step map's radius is a different number


def test_analyze_refuses_a_period_limit_below_one(tmp_path, capsys):
    run = runs.shipped_model("prefix-sums")
    assert cli.main(["analyze", str(run), "--max-period", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "max_period" in err or "max-period" in err
    assert len(err.splitlines()) == 1
