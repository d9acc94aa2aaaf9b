import pytest
import torch

from looped import runs
from looped.evaluation import Halting, LimitError, accuracy_curve, check_budget
from looped.model import LoopedConfig, LoopedTransformer
from looped.solving import solve_inputs
from looped.tasks import get_task


SHIPPED = runs.shipped_model("prefix-sums")


def tiny():
    return LoopedTransformer(LoopedConfig(d_model=16, n_heads=2, window=2)).eval()


def test_accuracy_curve_matches_forward_at_every_iteration():
    model, task = tiny(), get_task("prefix-sums")
    batch = task.generate(task.split("6"), 40, seed=1)
    curve = accuracy_curve(model, task, batch, max_iters=5, chunk=7)
    assert curve.iterations.tolist() == [5] * 40
    acc, res = curve.accuracy, curve.residual
    out = model(batch.inputs, 5, logits_at=[1, 2, 3, 4, 5], track_residuals=True)
    for t in range(1, 6):
        expected = task.score(out.logits[t].argmax(-1), batch.targets).float().mean().item()
        assert acc[t - 1] == pytest.approx(expected)
    torch.testing.assert_close(torch.tensor(res, dtype=torch.float64), out.residuals.double().mean(1), rtol=1e-5, atol=1e-7)


def halting_reference(model, tokens, max_iters, halting):
    """Per sample, the step at which it halts, from one full unhalted run (no compaction)."""
    out = model(tokens, max_iters, logits_at=list(range(0, max_iters + 1)), track_residuals=True)
    stops = []
    for b in range(tokens.shape[0]):
        unchanged, stop = 0, max_iters
        for t in range(1, max_iters + 1):
            same = torch.equal(out.logits[t][b].argmax(-1), out.logits[t - 1][b].argmax(-1))
            unchanged = unchanged + 1 if same else 0
            if out.residuals[t - 1, b] < halting.tol or unchanged >= halting.patience:
                stop = t
                break
        stops.append(stop)
    return out, stops


@pytest.mark.parametrize("halting", [Halting(tol=1e-3, patience=1000), Halting(tol=1e-12, patience=4),
                                     Halting(tol=1e-2, patience=6)])
def test_halting_stops_each_input_where_a_full_run_says(halting):
    from looped import runs

    model, task, _ = runs.load_model(SHIPPED)  # trained: inputs settle at different steps
    tokens = torch.randint(0, 2, (13, 24), generator=torch.Generator().manual_seed(0))
    out, stops = halting_reference(model, tokens, 60, halting)
    assert len(set(stops)) >= 3 and max(stops) < 60
    sol = solve_inputs(model, task, tokens, None, max_iters=60, halting=halting)
    assert sol.iterations.tolist() == stops
    for b, t in enumerate(stops):
        torch.testing.assert_close(sol.logits[b], out.logits[t][b], rtol=1e-5, atol=1e-6)
    # the curve keeps each halted sample's prediction, and the batch is compacted, not masked
    batch = task.generate(task.split("24"), 13, seed=0)
    batch.inputs = tokens
    batch.targets = (tokens.cumsum(1) % 2)
    curve = accuracy_curve(model, task, batch, 60, chunk=5, halting=halting)
    assert curve.iterations.tolist() == stops
    for t in (1, 7, 30, 60):
        frozen = torch.stack([out.logits[min(t, s)][b] for b, s in enumerate(stops)])
        expected = task.score(frozen.argmax(-1), batch.targets).double().mean().item()
        assert curve.accuracy[t - 1] == pytest.approx(expected)


def test_halting_off_runs_every_input_to_the_cap():
    model, task = tiny(), get_task("prefix-sums")
    tokens = torch.randint(0, 2, (3, 9))
    sol = solve_inputs(model, task, tokens, None, max_iters=17, halting=None)
    assert sol.iterations.tolist() == [17, 17, 17]
    torch.testing.assert_close(sol.logits, model(tokens, 17).logits[17], rtol=1e-5, atol=1e-6)


def test_halting_settings_are_validated():
    from looped.tasks import InputError

    with pytest.raises(InputError):
        Halting(tol=0)
    with pytest.raises(InputError):
        Halting(patience=0)


def test_budget_limit_is_clear():
    check_budget(10, 10, 10)
    with pytest.raises(LimitError, match="lower --n or --max-iters"):
        check_budget(10_000, 100_000, 10_000)


@pytest.mark.parametrize("halting", [Halting(tol=1e-12, patience=4), Halting(tol=1e-2, patience=6)])
def test_per_example_correctness_without_and_with_halting(halting):
    """Without halting: each example's exact match at the iterations asked for; with halting: each
    example's at the step where it halts (what ``looped reproduce`` keeps per run)."""
    model, task, _ = runs.load_model(SHIPPED)
    batch = task.generate(task.split("24"), 13, seed=0)
    out, stops = halting_reference(model, batch.inputs, 40, halting)
    full = accuracy_curve(model, task, batch, 40, chunk=5, correct_at=(3, 40))
    for t in (3, 40):
        assert full.correct[t].tolist() == task.score(out.logits[t].argmax(-1), batch.targets).tolist()
        assert full.accuracy[t - 1] == pytest.approx(full.correct[t].double().mean().item())
    halted = accuracy_curve(model, task, batch, 40, chunk=5, halting=halting, correct_at=(40,))
    assert halted.iterations.tolist() == stops
    expected = [bool(task.score(out.logits[s][b : b + 1].argmax(-1), batch.targets[b : b + 1])) for b, s in enumerate(stops)]
    assert halted.correct[40].tolist() == expected
    assert halted.accuracy[-1] == pytest.approx(sum(expected) / len(expected))


def test_correctness_asked_past_the_last_iteration_is_refused():
    from looped.tasks import InputError

    model, task = tiny(), get_task("prefix-sums")
    with pytest.raises(InputError, match="1..5"):
        accuracy_curve(model, task, task.generate(task.split("6"), 4, seed=1), 5, correct_at=(6,))


def test_every_metric_is_kept_per_example_at_the_iterations_asked():
    model, task, _ = runs.load_model(runs.shipped_model("sudoku"))
    batch = task.generate(task.split("easy"), 12, seed=3)
    curve = accuracy_curve(model, task, batch, max_iters=6, correct_at=(2, 6), chunk=5)
    assert set(curve.per_example) == {"exact", "blank_accuracy", "valid"}
    for t in (2, 6):
        for name in curve.per_example:
            mean = curve.accuracy[t - 1] if name == "exact" else curve.extra[name][t - 1]
            assert curve.per_example[name][t].double().mean().item() == pytest.approx(mean)
    row = curve.as_dict()
    assert len(row["correct_by_iteration"]["6"]) == 12 and set(row["correct_by_iteration"]["6"]) <= {"0", "1"}
    assert isinstance(row["blank_accuracy_correct_by_iteration"]["2"], list)  # fractions stay numbers


@pytest.mark.parametrize("halting", [Halting(tol=1e-12, patience=4), Halting(tol=1e-2, patience=6)])
def test_halting_replayed_on_a_full_pass_gives_what_halting_gives(halting):
    """One pass without halting, the rule replayed on it: the same halting steps, curve and per-example
    correctness as a pass with halting on (which drops halted examples from the batch)."""
    model, task, _ = runs.load_model(SHIPPED)
    batch = task.generate(task.split("24"), 13, seed=0)
    _, stops = halting_reference(model, batch.inputs, 40, halting)
    assert len(set(stops)) >= 3
    full = accuracy_curve(model, task, batch, 40, chunk=5, correct_at=(3, 40), replay=halting)
    halted = accuracy_curve(model, task, batch, 40, chunk=5, correct_at=(3, 40), halting=halting)
    assert full.iterations.tolist() == [40] * 13 and full.replayed.iterations.tolist() == stops
    assert full.replayed.accuracy == pytest.approx(halted.accuracy)
    assert full.replayed.residual == pytest.approx(halted.residual, rel=1e-4)
    for t in (3, 40):
        assert full.replayed.correct[t].tolist() == halted.correct[t].tolist()
    assert full.accuracy == accuracy_curve(model, task, batch, 40, chunk=5).accuracy  # the full curve is untouched


def test_replay_is_refused_beside_halting():
    from looped.tasks import InputError

    model, task = tiny(), get_task("prefix-sums")
    with pytest.raises(InputError, match="replayed"):
        accuracy_curve(model, task, task.generate(task.split("6"), 4, seed=1), 5, halting=Halting(), replay=Halting())
