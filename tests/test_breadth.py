"""Test-time compute in breadth: views map back exactly, the checker accepts only valid answers, breadth 1 is
the plain loop, and trajectories are chosen as declared."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import looped
from looped import runs
from looped.breadth import Breadth, choose
from looped.model import Looped
from looped.tasks import get_task
from looped.tasks.sudoku import logic
from looped.tasks.sudoku.task import puzzle_set

UNITS = torch.from_numpy(logic.UNITS)  # (27, 9) cells of each row, column and box
PEERS = torch.zeros(81, 81)
for unit in UNITS:
    PEERS[unit[:, None], unit[None, :]] = 1
PEERS.fill_diagonal_(0)


class Propagation(Looped):
    """A hand-built sudoku model that is equivariant by construction: the state holds each cell's candidate
    digits, and one step removes the digits of solved peers (naked singles). It commutes with every relabelling
    of digits and every permutation of cells that maps rows, columns and boxes to rows, columns and boxes."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # a parameter, so that the model has a device

    def embed_input(self, tokens, positions=None):
        given = nn.functional.one_hot(tokens, 10)[..., 1:].float()  # (B, 81, 9); a blank is all zeros
        return torch.where(given.sum(-1, keepdim=True) > 0, given, torch.ones_like(given))

    def initial_state(self, x, generator=None):
        return x

    def step(self, h, x):
        solved = (h.sum(-1, keepdim=True) == 1).float() * h  # (B, 81, 9) the digits of solved cells
        taken = torch.einsum("ij,bjd->bid", PEERS, solved) > 0
        return torch.where(taken & (h.sum(-1, keepdim=True) > 1), torch.zeros_like(h), h)

    def readout(self, h):
        return torch.log(h + 1e-9)


def test_a_view_solved_and_mapped_back_equals_solving_the_original():
    task, model = get_task("sudoku"), Propagation()
    batch = task.generate(task.split("easy"), 12, seed=4)
    with torch.no_grad():
        plain = model(batch.inputs, 40).logits[40]
        assert task.score(plain.argmax(-1), batch.targets).all()  # singles solve easy puzzles
        for index in (1, 2, 3):
            view, back = task.view(batch.inputs, index, seed=9)
            assert not torch.equal(view, batch.inputs)
            assert torch.equal(back(model(view, 40).logits[40]), plain)  # exactly, logit for logit


def test_the_checker_accepts_a_solution_and_nothing_else():
    task = get_task("sudoku")
    batch = task.generate(task.split("hard"), 20, seed=2)
    assert task.verify(batch.inputs, batch.targets).all()
    rng = np.random.default_rng(0)
    for _ in range(200):
        pred = batch.targets.clone()
        i = int(rng.integers(20))
        cells = rng.choice(81, size=int(rng.integers(1, 4)), replace=False)
        pred[i, cells] = torch.from_numpy(rng.integers(0, 9, size=len(cells)))
        ok = task.verify(batch.inputs, pred)
        assert bool(ok[i]) == torch.equal(pred[i], batch.targets[i])  # only the unique solution passes


def test_breadth_one_gives_todays_answers_exactly():
    model, task, _ = runs.load_model(runs.shipped_model("sudoku"))
    texts = ["".join(map(str, p)) for p in puzzle_set("hardest", 6, seed=3)["puzzles"]]
    plain = looped.solve(model, task, texts)
    one = looped.solve(model, task, texts, breadth=1, select="vote")
    assert [(a.answer, a.iterations) for a in one] == [(a.answer, a.iterations) for a in plain]
    (c0,) = looped.evaluate(model, task, "hard", 30, n=20)
    (c1,) = looped.evaluate(model, task, "hard", 30, n=20, breadth=Breadth(k=1))
    assert c0.accuracy == c1.accuracy and torch.equal(c0.iterations, c1.iterations)


def test_verification_stops_an_input_once_one_trajectory_is_accepted():
    model, task, _ = runs.load_model(runs.shipped_model("sudoku"))
    texts = ["".join(map(str, p)) for p in puzzle_set("easy", 6, seed=3)["puzzles"]]
    answers = looped.solve(model, task, texts, breadth=4, select="verify")
    alone = looped.solve(model, task, texts)
    for a, b in zip(answers, alone):
        assert a.answer == b.answer  # easy puzzles: the plain answer is already right
        assert a.iterations <= 4 * b.iterations  # siblings stop when one is accepted


def test_votes_pick_the_most_common_answer_and_the_checker_wins_over_votes():
    task = get_task("sudoku")
    batch = task.generate(task.split("easy"), 1, seed=1)
    right = nn.functional.one_hot(batch.targets, 9).float()
    wrong = right.roll(1, dims=-1)
    logits = torch.stack([wrong, wrong, right])  # (k=3, N=1, 81, 9): two trajectories agree on a wrong grid
    residual = torch.ones(3, 1)
    verified = torch.tensor([[False], [False], [True]])
    assert int(choose(task, batch.inputs, logits, residual, verified, Breadth(k=3, select="vote"))) in (0, 1)
    assert int(choose(task, batch.inputs, logits, residual, verified, Breadth(k=3, select="verify"))) == 2


def test_bad_breadth_options_are_refused_in_one_line(capsys):
    from looped import cli

    assert cli.main(["solve", "prefix-sums", "0110", "--breadth", "0"]) == 2
    assert "--breadth" in capsys.readouterr().err
    assert cli.main(["solve", "prefix-sums", "0110", "--breadth", "2"]) == 2  # prefix sums has no views
    assert "--vary restarts" in capsys.readouterr().err
    assert cli.main(["solve", "prefix-sums", "0110", "--breadth", "2", "--vary", "restarts"]) == 0
    with pytest.raises(looped.InputError, match="select"):
        Breadth(k=2, select="majority")
