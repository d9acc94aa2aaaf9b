import shutil
import subprocess

import numpy as np
import pytest
import torch

from looped.tasks import InputError, get_task
from looped.tasks.sudoku import logic
from looped.tasks.sudoku.task import TIERS, build_set, puzzle_set, valid_grids

UNITS = [list(u) for u in logic.UNITS.tolist()]
PEERS = [set(j for u in UNITS if i in u for j in u) - {i} for i in range(81)]


def reference_round(grid):
    """Independent, slow singles propagation with Python sets: one round on ``grid`` (a list), in place;
    returns whether it placed anything."""
    cand = {i: set(range(1, 10)) - {grid[j] for j in PEERS[i]} for i in range(81) if not grid[i]}
    place = {i: next(iter(c)) for i, c in cand.items() if len(c) == 1}
    for u in UNITS:
        for d in set(range(1, 10)) - {grid[i] for i in u}:
            homes = [i for i in u if not grid[i] and d in cand[i]]
            if len(homes) == 1:
                place[homes[0]] = d
    for i, d in place.items():
        grid[i] = d
    return bool(place)


def reference_rounds(puzzle, max_rounds=81):
    """Rounds of ``reference_round`` that fill ``puzzle``, or None."""
    grid = list(int(v) for v in puzzle)
    for r in range(max_rounds + 1):
        if all(grid):
            return r
        if not reference_round(grid):
            return None
    return None


def brute_count(puzzle, limit=2):
    """Plain backtracking on the cell with fewest options (no propagation): solutions, capped."""
    grid = [int(v) for v in puzzle]

    def rec():
        options = {i: [d for d in range(1, 10) if all(grid[j] != d for j in PEERS[i])] for i in range(81) if not grid[i]}
        if not options:
            return 1
        cell = min(options, key=lambda i: len(options[i]))
        total = 0
        for d in options[cell]:
            grid[cell] = d
            total += rec()
            grid[cell] = 0
            if total >= limit:
                break
        return total

    return rec()


@pytest.fixture(scope="module")
def sets():
    return {tier: build_set(tier, 4 if tier == "search" else 12, seed=3, workers=1) for tier in TIERS}


def test_every_puzzle_has_exactly_one_solution(sets):
    for tier, s in sets.items():
        for p, sol in zip(s["puzzles"], s["solutions"]):
            assert brute_count(p) == 1, tier
            assert logic.is_valid_solution(sol, p)
            count, _, found = logic.solve(p)
            assert count == 1 and np.array_equal(found, sol)


def test_tier_labels_match_an_independent_propagator(sets):
    for tier, s in sets.items():
        lo, hi = TIERS[tier]
        for p, rounds, guesses, givens in zip(s["puzzles"], s["rounds"], s["guesses"], s["givens"]):
            assert givens == (p > 0).sum()
            if tier == "search":
                assert rounds == -1 and reference_rounds(p) is None and guesses > 0
                continue
            assert reference_rounds(p) == rounds and guesses == 0
            assert reference_rounds(p, max_rounds=rounds - 1) is None  # not solvable in k - 1 rounds
            assert lo <= rounds <= (hi or 81)


def test_singles_fill_matches_the_independent_propagator_round_by_round(sets):
    """After k rounds, the grid the independent propagator reaches; a k-round puzzle is its solution after
    k rounds and still has blanks after k - 1; the puzzle itself is left as it was."""
    for tier in ("easy", "medium", "search"):
        s = sets[tier]
        for p, sol, rounds in zip(s["puzzles"], s["solutions"], s["rounds"]):
            before = p.copy()
            grid = [int(v) for v in p]
            for k in range(1, 5):
                reference_round(grid)
                assert logic.singles_fill(p, k).tolist() == grid
            assert np.array_equal(p, before) and np.array_equal(logic.singles_fill(p, 0), p)
            if rounds > 0:
                assert np.array_equal(logic.singles_fill(p, rounds), sol)
                assert (logic.singles_fill(p, rounds - 1) == 0).any()


def test_sets_are_pure_functions_of_the_seed(tmp_path, monkeypatch):
    a = build_set("medium", 30, seed=9, workers=1)
    b = build_set("medium", 30, seed=9, workers=2)
    c = build_set("medium", 30, seed=10, workers=1)
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert not np.array_equal(a["puzzles"], c["puzzles"])
    monkeypatch.setenv("LOOPED_CACHE", str(tmp_path))
    first = puzzle_set("easy", 256, seed=1)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npz"]
    again = puzzle_set("easy", 256, seed=1)
    for k in first:
        assert np.array_equal(first[k], again[k])


def test_symmetries_preserve_validity_uniqueness_and_rounds(sets):
    rng = np.random.default_rng(0)
    s = sets["hard"]
    for p, sol, rounds in zip(s["puzzles"][:6], s["solutions"][:6], s["rounds"][:6]):
        cells, digits = logic.random_symmetry(rng)
        p2, sol2 = digits[p[cells]], digits[sol[cells]]
        assert logic.is_valid_solution(sol2, p2) and not np.array_equal(sol2, sol)
        assert brute_count(p2) == 1
        assert reference_rounds(p2) == rounds


def test_task_augmentation_keeps_targets_consistent(sets):
    task = get_task("sudoku")
    batch = task.generate(task.split("easy"), 16, seed=2)
    aug = task.augment(batch, seed=5)
    assert not torch.equal(aug.inputs, batch.inputs)
    for x, y in zip(aug.inputs.numpy(), aug.targets.numpy()):
        assert logic.is_valid_solution(y + 1, x)
    assert ((aug.inputs == 0).sum(1) == (batch.inputs == 0).sum(1)).all()


def test_metrics_agree_with_the_numpy_checker(sets):
    task = get_task("sudoku")
    s = sets["medium"]
    batch = task.generate(task.split("medium"), 12, seed=3)
    assert np.array_equal(batch.inputs.numpy(), s["puzzles"])
    pred = batch.targets.clone()
    pred[1, 0] = (pred[1, 0] + 1) % 9  # one wrong cell
    pred[2] = pred[2][torch.from_numpy(logic.random_symmetry(np.random.default_rng(1))[0])]  # valid, other givens
    m = task.metrics(batch.inputs, torch.nn.functional.one_hot(pred, 9).float(), batch.targets)
    expected_valid = [logic.is_valid_solution(p + 1, x) for p, x in zip(pred.numpy(), batch.inputs.numpy())]
    assert m["valid"].tolist() == expected_valid
    assert m["exact"].tolist() == [i not in (1, 2) for i in range(12)]
    blanks = (batch.inputs[1] == 0).sum().item()
    if batch.inputs[1, 0] == 0:
        assert m["blank_accuracy"][1].item() == pytest.approx(1 - 1 / blanks)
    assert valid_grids(batch.inputs, batch.targets + 1).all()


def test_parse_accepts_dots_and_rejects_bad_input(sets):
    task = get_task("sudoku")
    p = sets["easy"]["puzzles"][0]
    text = "".join(str(d) for d in p)
    assert task.parse(text).tolist() == p.tolist()
    assert task.parse(text.replace("0", ".")).tolist() == p.tolist()
    with pytest.raises(InputError, match="81 cells"):
        task.parse(text[:-1])
    with pytest.raises(InputError, match="only contain"):
        task.parse(text[:-1] + "x")
    with pytest.raises(InputError, match="contradict"):
        task.parse("11" + "0" * 79)
    with pytest.raises(InputError, match="no solution"):  # no direct clash, but r1c9 has no digit left
        task.parse("12345678" + "0" * 17 + "9" + "0" * 55)


def test_describe_shows_grid_and_validity(sets):
    task = get_task("sudoku")
    batch = task.generate(task.split("easy"), 12, seed=3)
    logits = torch.nn.functional.one_hot(batch.targets[0], 9).float()
    lines = task.describe("", batch.inputs[0], logits)
    assert lines[-1] == "valid: yes" and len(lines) == 12
    assert task.decode("", batch.inputs[0], logits) == "".join(str(d) for d in sets["easy"]["solutions"][0])


@pytest.mark.skipif(shutil.which("qqwing") is None, reason="Debian qqwing not installed")
def test_qqwing_agrees_on_the_solution(sets):
    for tier in ("easy", "hardest", "search"):
        for p, sol in zip(sets[tier]["puzzles"][:3], sets[tier]["solutions"][:3]):
            text = "".join(str(d) if d else "." for d in p)
            out = subprocess.run(["qqwing", "--solve", "--count-solutions", "--one-line"], input=text,
                                 capture_output=True, text=True, check=True).stdout
            assert "".join(str(d) for d in sol) in out.replace("\n", "")
            assert "solution to the puzzle is unique" in out
