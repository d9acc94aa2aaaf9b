import pytest
import torch

from looped.evaluate import LimitError, accuracy_curve, check_budget, solve_inputs
from looped.model import LoopedConfig, LoopedTransformer
from looped.tasks import get_task


def tiny():
    return LoopedTransformer(LoopedConfig(d_model=16, n_heads=2, window=2)).eval()


def test_accuracy_curve_matches_forward_at_every_iteration():
    model, task = tiny(), get_task("prefix-sums")
    batch = task.generate(task.split("6"), 40, seed=1)
    metrics, res = accuracy_curve(model, task, batch, max_iters=5, chunk=7)
    acc = metrics["exact"]
    out = model(batch.inputs, 5, logits_at=[1, 2, 3, 4, 5], track_residuals=True)
    for t in range(1, 6):
        expected = task.score(out.logits[t].argmax(-1), batch.targets).float().mean().item()
        assert acc[t - 1] == pytest.approx(expected)
    torch.testing.assert_close(torch.tensor(res, dtype=torch.float64), out.residuals.double().mean(1), rtol=1e-5, atol=1e-7)


def test_solve_stops_each_input_at_its_own_tolerance():
    model = tiny()
    tokens = torch.randint(0, 2, (3, 9))
    sol = solve_inputs(model, tokens, None, max_iters=200, tol=1e-4)
    out = model(tokens, 200, track_residuals=True)
    for b in range(3):
        below = (out.residuals[:, b] < 1e-4).nonzero()
        expected = int(below[0]) + 1 if len(below) else 200
        assert int(sol.iterations[b]) == expected
        stopped = model(tokens[b : b + 1], expected).logits[expected].argmax(-1)[0]
        assert torch.equal(sol.logits[b].argmax(-1), stopped)


def test_budget_limit_is_clear():
    check_budget(10, 10, 10)
    with pytest.raises(LimitError, match="lower --n or --max-iters"):
        check_budget(10_000, 100_000, 10_000)
