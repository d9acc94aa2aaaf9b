"""Sudoku, easy to hard: a seeded offline generator with a ladder of difficulty tiers.

Difficulty is the number of rounds of constraint propagation that solve a puzzle, where one
round places every naked and hidden single of the current position at once. Tiers:

==========  ===============  ==============================================
tier        rounds           how it is made
==========  ===============  ==============================================
easy        1-3              givens removed while singles finish within a
medium      4-6              target round count drawn from the tier
hard        7-9
harder      10-12
hardest     13+              givens removed while singles finish at all
search      needs search     one step past that, kept only if still unique
==========  ===============  ==============================================

Every puzzle has exactly one solution: a puzzle that singles fill has only that solution, and
the ``search`` tier is checked with the exact solver. Each set carries per-puzzle labels
(givens, rounds, guesses of the solver). Models train on ``easy`` and ``medium``.

Encoding: 81 tokens (0 blank, 1-9 digits), positions (row, column, box), targets the solution
digits as classes 0-8.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from ..base import Batch, InputError, ModelSettings, PaperRecipe, Split, Task
from ..cache import load_or_build
from . import logic

TIERS: dict[str, tuple[int, int | None]] = {  # name -> (min rounds, max rounds); None: no cap
    "easy": (1, 3),
    "medium": (4, 6),
    "hard": (7, 9),
    "harder": (10, 12),
    "hardest": (13, None),
    "search": (0, None),
}
SEARCH = "search"
GENERATOR_VERSION = 1
TRAIN_POOL_SIZE = 20_000
TRAIN_POOL_SEED = 0
CACHE_MIN = 256  # sets at least this large are cached on disk
CHUNK = 500  # puzzles per parallel work item
POSITIONS = torch.from_numpy(np.stack([logic.ROWS, logic.COLS, logic.BOXES], axis=1))  # (81, 3)


def make_puzzle(tier: str, seed: int, index: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Puzzle ``index`` of ``tier``, a pure function of its arguments.

    Returns (puzzle (81,) int8, solution (81,) int8, rounds (-1 for ``search``), guesses).
    """
    t = list(TIERS).index(tier)
    rng = np.random.default_rng([seed, t, index])
    # four puzzles share a base grid, each under its own random symmetry
    base = logic.random_solution(int(np.random.default_rng([seed, t, index // 4, 1]).integers(2**32)))
    cells, digits = logic.random_symmetry(rng)
    solution = digits[base[cells]].astype(np.int8)
    lo, hi = TIERS[tier]
    while True:
        if tier == SEARCH:
            minimal = logic.dig(solution, rng.permutation(81))
            puzzle = logic.dig(minimal, rng.permutation(81), unique=True)
        else:
            cap = 81 if hi is None else int(rng.integers(lo, hi + 1))
            puzzle = logic.dig(solution, rng.permutation(81), max_rounds=cap)
        rounds = logic.singles_rounds(puzzle)
        ok = rounds == logic.STUCK if tier == SEARCH else lo <= rounds <= (hi or 81)
        if ok:
            count, guesses, _ = logic.solve(puzzle)
            assert count == 1, "generated puzzle is not unique"
            return puzzle, solution, (-1 if tier == SEARCH else rounds), guesses


def _make_chunk(args: tuple[str, int, int, int]) -> dict[str, np.ndarray]:
    tier, seed, start, stop = args
    made = [make_puzzle(tier, seed, i) for i in range(start, stop)]
    return {
        "puzzles": np.stack([m[0] for m in made]),
        "solutions": np.stack([m[1] for m in made]),
        "rounds": np.array([m[2] for m in made], np.int16),
        "guesses": np.array([m[3] for m in made], np.int32),
    }


def build_set(tier: str, n: int, seed: int, workers: int | None = None, progress: bool = False) -> dict:
    """``n`` puzzles of ``tier``: arrays puzzles, solutions (n, 81) int8, givens, rounds, guesses (n,).

    Work is split into chunks over ``workers`` processes (default: all cores); the result does not
    depend on the number of workers.
    """
    jobs = [(tier, seed, s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    bar = tqdm(total=n, disable=not progress, desc=f"sudoku {tier}", unit="puzzle", leave=False)
    parts = []
    if workers <= 1:
        for job in jobs:
            parts.append(_make_chunk(job))
            bar.update(job[3] - job[2])
    else:
        with ProcessPoolExecutor(workers) as pool:
            for job, part in zip(jobs, pool.map(_make_chunk, jobs)):
                parts.append(part)
                bar.update(job[3] - job[2])
    bar.close()
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["givens"] = (out["puzzles"] > 0).sum(1).astype(np.int16)
    return out


def puzzle_set(tier: str, n: int, seed: int, progress: bool = False) -> dict:
    """``build_set``, read from the on-disk cache when the set is large enough to be worth keeping."""
    if n < CACHE_MIN:
        return build_set(tier, n, seed, workers=1)
    meta = {"task": "sudoku", "tier": tier, "n": n, "seed": seed, "generator_version": GENERATOR_VERSION}
    return load_or_build(f"sudoku-{tier}-n{n}-s{seed}-v{GENERATOR_VERSION}", meta,
                         lambda: build_set(tier, n, seed, progress=progress))


@functools.lru_cache(maxsize=8)
def train_pool(tier: str) -> dict:
    return puzzle_set(tier, TRAIN_POOL_SIZE, TRAIN_POOL_SEED, progress=True)


def encode(puzzles: np.ndarray, solutions: np.ndarray, offset: int = 1) -> Batch:
    """Puzzles (N, 81) as tokens; solutions as class ids ``digit - offset``."""
    inputs = torch.from_numpy(np.asarray(puzzles, np.int64))
    targets = torch.from_numpy(np.asarray(solutions, np.int64) - offset)
    return Batch(inputs=inputs, targets=targets, positions=POSITIONS)


class Sudoku(Task):
    name = "sudoku"
    vocab_size = 10  # 0 blank, 1-9
    num_classes = 9  # class = digit - offset
    offset = 1
    train_splits = ("easy", "medium")
    eval_splits = tuple(TIERS)
    can_augment = True
    model_settings = ModelSettings(board=(9, 9), attention="groups", groups=tuple(map(tuple, POSITIONS.tolist())),
                                   causal=False, position_sizes=(9, 9, 9), d_model=64, n_heads=4)
    paper_recipe = PaperRecipe(epoch_examples=50_000, cpu_steps=3_000)  # at most 50,000 puzzles

    def split(self, name: str) -> Split:
        name = str(name).strip()
        if name not in TIERS:
            raise InputError(f"unknown sudoku tier {name!r}; choose from {', '.join(TIERS)}")
        return Split(name=name, difficulty=list(TIERS).index(name))

    def input_length(self, split: Split) -> int:
        return 81

    def generate(self, split: Split, n: int, seed: int) -> Batch:
        s = puzzle_set(split.name, n, seed)
        return encode(s["puzzles"], s["solutions"], self.offset)

    def train_batch(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` puzzles drawn from the fixed training set of ``split`` (``TRAIN_POOL_SIZE`` puzzles)."""
        pool = train_pool(split.name)
        idx = np.random.default_rng([seed, 11]).integers(0, len(pool["puzzles"]), size=n)
        return encode(pool["puzzles"][idx], pool["solutions"][idx], self.offset)

    def augment(self, batch: Batch, seed: int) -> Batch:
        """An independent random symmetry per puzzle (digits, bands, stacks, rows, columns, transpose)."""
        rng = np.random.default_rng([seed, 13])
        inputs, targets = batch.inputs.clone(), batch.targets.clone()
        for i in range(len(batch)):
            cells, digits = logic.random_symmetry(rng)
            cells, digits = torch.from_numpy(cells), torch.from_numpy(digits)
            inputs[i] = digits[batch.inputs[i, cells]]
            targets[i] = digits[batch.targets[i, cells] + self.offset] - self.offset
        return Batch(inputs=inputs, targets=targets, positions=batch.positions)

    def parse(self, text: str) -> torch.Tensor:
        s = "".join(str(text).split())
        if not s:
            raise InputError("empty input: expected 81 characters, digits 1-9 and 0 or . for blanks")
        bad = sorted(set(s) - set("0123456789."))
        if bad:
            raise InputError(f"a sudoku may only contain digits 1-9 and 0 or . for blanks, found {''.join(bad)!r}")
        if len(s) != 81:
            raise InputError(f"a sudoku has 81 cells, got {len(s)} characters")
        grid = np.array([0 if c == "." else int(c) for c in s], dtype=np.int8)
        clash = logic.conflicts(grid)
        if clash:
            i, j = clash[0]
            raise InputError(
                f"givens contradict each other: {grid[i]} appears at r{i // 9 + 1}c{i % 9 + 1} "
                f"and r{j // 9 + 1}c{j % 9 + 1}"
            )
        if logic.solve(grid, limit=1)[0] == 0:
            raise InputError("this sudoku has no solution")
        return torch.from_numpy(grid.astype(np.int64))

    def decode(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> str:
        return "".join(str(int(d) + self.offset) for d in logits.argmax(-1).tolist())

    def describe(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> list[str]:
        grid = (logits.argmax(-1) + self.offset).numpy()
        lines = []
        for r in range(9):
            row = " ".join(str(d) for d in grid[9 * r : 9 * r + 9])
            lines.append(" | ".join([row[0:5], row[6:11], row[12:17]]))
            if r in (2, 5):
                lines.append("------+-------+------")
        valid = bool(valid_grids(inputs[None], torch.from_numpy(grid)[None])[0])
        lines.append(f"valid: {'yes' if valid else 'no'}")
        return lines

    def positions(self, length: int) -> torch.Tensor:
        return POSITIONS

    def for_paper(self) -> "Task":
        return PaperSudoku()

    def view(self, inputs: torch.Tensor, index: int, seed: int):
        """A random symmetry per puzzle (digits, bands, stacks, rows, columns, transpose), seeded by
        ``(seed, index, row)``; index 0 is the puzzle itself."""
        n = len(inputs)
        if index == 0:
            return inputs, lambda logits: logits
        sym = [logic.random_symmetry(np.random.default_rng([seed, index, i])) for i in range(n)]
        cells = torch.from_numpy(np.stack([c for c, _ in sym])).to(inputs.device)  # (N, 81)
        digits = torch.from_numpy(np.stack([d for _, d in sym])).to(inputs.device)  # (N, 10)
        viewed = digits.gather(1, inputs.gather(1, cells))
        classes = digits[:, self.offset :] - self.offset  # view class of each original class (N, C)

        def back(logits: torch.Tensor) -> torch.Tensor:
            moved = logits.gather(2, classes[:, None, :].expand(-1, logits.shape[1], -1))
            return torch.empty_like(logits).scatter_(1, cells[:, :, None].expand_as(logits), moved)

        return viewed, back

    def verify(self, inputs: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """A valid grid that keeps the givens: every generated or parsed puzzle has exactly one solution."""
        return valid_grids(inputs, prediction + self.offset)

    def metrics(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """Per puzzle: ``exact`` grid, ``blank_accuracy`` (share of blanks right), ``valid`` (a correct
        sudoku that keeps the givens). Args: inputs, targets (N, 81); logits (N, 81, 9)."""
        prediction = self.predict(inputs, logits)
        blank = inputs == 0
        right = (prediction == targets) & blank
        return {
            "exact": self.score(prediction, targets),
            "blank_accuracy": right.sum(1) / blank.sum(1).clamp(min=1),
            "valid": valid_grids(inputs, prediction + self.offset),
        }


class PaperSudoku(Sudoku):
    """Sudoku as the paper's code encodes it, for models imported from it: ten classes, class = digit."""

    num_classes = 10
    offset = 0

    def for_paper(self) -> "Task":
        return self


_UNITS = torch.from_numpy(logic.UNITS)


def valid_grids(inputs: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """(N,) bool: each row, column and box of ``digits`` (N, 81) holds 1-9 once, and givens are kept."""
    onehot = torch.nn.functional.one_hot(digits.clamp(0, 9), 10)[..., 1:]  # (N, 81, 9); a 0 counts for no digit
    per_unit = onehot[:, _UNITS.to(digits.device)].sum(2)  # (N, 27, 9)
    complete = (per_unit == 1).all(dim=(1, 2))
    kept = ((inputs == 0) | (inputs == digits)).all(dim=1)
    return complete & kept
