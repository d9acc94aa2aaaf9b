"""Sudoku logic, compiled with numba: singles propagation, an exact solver and the puzzle generator.

A grid is an ``(81,)`` int8 array in row-major order, 0 for a blank and 1..9 for a digit.

* ``singles_rounds``: rounds of constraint propagation (all naked and hidden singles of the current
  position placed at once, per round) until the grid is full. This is the difficulty label.
* ``singles_fill``: the grid after a given number of those rounds.
* ``solve``: depth-first search with singles propagation; counts solutions up to a limit and the
  guesses it made (one per digit tried at a branch point).
* ``dig``: remove givens in a random order, keeping each removal only while the puzzle stays
  solvable by singles within a round cap (propagation tiers) or stays unique (the search tier).
"""

from __future__ import annotations

import numba
import numpy as np

STUCK = -1  # singles alone cannot finish (or not within the round cap)
CONTRADICTION = -2  # some blank has no candidate, or two singles disagree

ROWS = np.arange(81) // 9
COLS = np.arange(81) % 9
BOXES = (ROWS // 3) * 3 + COLS // 3
UNITS = np.array(
    [[r * 9 + c for c in range(9)] for r in range(9)]
    + [[r * 9 + c for r in range(9)] for c in range(9)]
    + [[(b // 3) * 27 + (b % 3) * 3 + (i // 3) * 9 + i % 3 for i in range(9)] for b in range(9)],
    dtype=np.int64,
)  # (27, 9): rows, columns, boxes
PEERS = np.array(
    [[j for j in range(81) if j != i and (ROWS[i] == ROWS[j] or COLS[i] == COLS[j] or BOXES[i] == BOXES[j])]
     for i in range(81)],
    dtype=np.int64,
)  # (81, 20)

ALL = 0x1FF  # the nine candidate bits; bit d-1 is digit d


@numba.njit(cache=True)
def _popcount(m):
    c = 0
    while m:
        m &= m - 1
        c += 1
    return c


@numba.njit(cache=True)
def _digit(m):
    """The digit of a single-bit mask."""
    d = 1
    while not (m & 1):
        m >>= 1
        d += 1
    return d


@numba.njit(cache=True)
def _kth_bit(m, k):
    """The ``k``-th lowest set bit of ``m``."""
    for _ in range(k):
        m &= m - 1
    return m & -m


@numba.njit(cache=True)
def _candidates(grid, cand):
    """Fill ``cand`` (81,) with the candidate mask of each blank (0 for filled cells)."""
    used = np.zeros(27, np.int64)  # digits present in each unit
    for i in range(81):
        if grid[i] != 0:
            bit = 1 << (grid[i] - 1)
            r, c = i // 9, i % 9
            used[r] |= bit
            used[9 + c] |= bit
            used[18 + (r // 3) * 3 + c // 3] |= bit
    for i in range(81):
        r, c = i // 9, i % 9
        if grid[i] != 0:
            cand[i] = 0
        else:
            cand[i] = ALL & ~(used[r] | used[9 + c] | used[18 + (r // 3) * 3 + c // 3])


@numba.njit(cache=True)
def _singles_round(grid, units, cand, place):
    """Place every naked and hidden single of ``grid`` at once.

    Returns the number of cells placed, 0 if there is none (stuck), or CONTRADICTION.
    """
    _candidates(grid, cand)
    place[:] = 0
    for i in range(81):
        if grid[i] == 0:
            if cand[i] == 0:
                return CONTRADICTION
            if cand[i] & (cand[i] - 1) == 0:
                place[i] = _digit(cand[i])
    for u in range(27):
        once, twice, present = 0, 0, 0
        for i in units[u]:
            if grid[i] != 0:
                present |= 1 << (grid[i] - 1)
            twice |= once & cand[i]
            once |= cand[i]
        if (once | present) != ALL:
            return CONTRADICTION  # a missing digit has no cell left
        hidden = once & ~twice
        if hidden == 0:
            continue
        for i in units[u]:
            bit = cand[i] & hidden
            if bit:
                if bit & (bit - 1):
                    return CONTRADICTION  # one cell is the only home of two digits
                d = _digit(bit)
                if place[i] != 0 and place[i] != d:
                    return CONTRADICTION
                place[i] = d
    n = 0
    for i in range(81):
        if place[i] != 0:
            grid[i] = place[i]
            n += 1
    return n


@numba.njit(cache=True)
def _is_full(grid):
    for i in range(81):
        if grid[i] == 0:
            return False
    return True


@numba.njit(cache=True)
def _rounds(grid, max_rounds, units):
    """Rounds to fill ``grid`` (in place) with singles; STUCK or CONTRADICTION otherwise."""
    cand = np.zeros(81, np.int64)
    place = np.zeros(81, np.int8)
    r = 0
    while not _is_full(grid):
        if r >= max_rounds:
            return STUCK
        n = _singles_round(grid, units, cand, place)
        if n == CONTRADICTION:
            return CONTRADICTION
        if n == 0:
            return STUCK
        r += 1
    return r


def singles_rounds(grid: np.ndarray, max_rounds: int = 81) -> int:
    """Rounds of naked-plus-hidden-single propagation that fill ``grid`` (81,).

    Returns the count (0 for a full grid), ``STUCK`` if singles cannot finish within ``max_rounds``,
    or ``CONTRADICTION``. The grid is not modified.
    """
    return int(_rounds(np.array(grid, dtype=np.int8), max_rounds, UNITS))


def singles_fill(grid: np.ndarray, rounds: int) -> np.ndarray:
    """``grid`` (81,) after at most ``rounds`` rounds of naked-plus-hidden-single propagation (fewer where it
    fills or gets stuck first); a new array, the input is not modified."""
    out = np.array(grid, dtype=np.int8)
    _rounds(out, rounds, UNITS)
    return out


@numba.njit(cache=True)
def _propagate(grid, units):
    """Singles until stuck, in place. Returns 1 if full, 0 if stuck, CONTRADICTION."""
    cand = np.zeros(81, np.int64)
    place = np.zeros(81, np.int8)
    while not _is_full(grid):
        n = _singles_round(grid, units, cand, place)
        if n == CONTRADICTION:
            return CONTRADICTION
        if n == 0:
            return 0
    return 1


@numba.njit(cache=True)
def _valid_full(grid, units):
    for u in range(27):
        seen = 0
        for i in units[u]:
            if grid[i] < 1 or grid[i] > 9:
                return False
            seen |= 1 << (grid[i] - 1)
        if seen != ALL:
            return False
    return True


@numba.njit(cache=True)
def _search(puzzle, limit, randomize, units):
    """Depth-first search with singles propagation and fewest-candidates branching.

    Returns (solutions found up to ``limit``, guesses, first solution). ``randomize`` tries
    branch digits in random order (numba's generator; seed it with ``_seed``).
    """
    grids = np.zeros((82, 81), np.int8)
    cells = np.zeros(82, np.int64)
    masks = np.zeros(82, np.int64)
    cand = np.zeros(81, np.int64)
    first = np.zeros(81, np.int8)
    grids[0] = puzzle
    depth, count, guesses = 0, 0, 0
    expand = True  # True: propagate grids[depth] and pick a branch cell; False: backtrack
    while True:
        if expand:
            st = _propagate(grids[depth], units)
            if st == 1 and _valid_full(grids[depth], units):
                if count == 0:
                    first[:] = grids[depth]
                count += 1
                if count >= limit:
                    break
                expand = False
            elif st == 0:
                _candidates(grids[depth], cand)
                best, best_n = -1, 10
                for i in range(81):
                    if grids[depth][i] == 0:
                        n = _popcount(cand[i])
                        if n < best_n:
                            best, best_n = i, n
                cells[depth], masks[depth] = best, cand[best]
            else:
                expand = False
        if not expand:  # go up to the nearest branch point with digits left
            while depth > 0 and masks[depth - 1] == 0:
                depth -= 1
            if depth == 0:
                break
            depth -= 1
        # branch: try one remaining digit of cells[depth]
        m = masks[depth]
        if m == 0:
            break
        bit = _kth_bit(m, np.random.randint(_popcount(m))) if randomize else m & -m
        masks[depth] = m & ~bit
        guesses += 1
        grids[depth + 1] = grids[depth]
        grids[depth + 1][cells[depth]] = _digit(bit)
        depth += 1
        expand = True
    return count, guesses, first


@numba.njit(cache=True)
def _seed(seed):
    np.random.seed(seed)


def solve(puzzle: np.ndarray, limit: int = 2) -> tuple[int, int, np.ndarray]:
    """Exact solver. Args: puzzle (81,) ints, 0 blank.

    Returns (number of solutions, capped at ``limit``; guesses made; the first solution or zeros).
    """
    count, guesses, first = _search(np.array(puzzle, dtype=np.int8), limit, False, UNITS)
    return int(count), int(guesses), first


def random_solution(seed: int) -> np.ndarray:
    """A random complete grid, a pure function of ``seed``. Returns (81,) int8."""
    _seed(seed % 2**32)
    count, _, grid = _search(np.zeros(81, np.int8), 1, True, UNITS)
    assert count == 1
    return grid


@numba.njit(cache=True)
def _dig(solution, order, max_rounds, unique, units):
    """Blank cells of ``solution`` in ``order`` while the puzzle stays solvable.

    ``unique=False``: a removal is kept when singles still fill the grid within ``max_rounds``.
    ``unique=True``: a removal is kept when the solution stays unique (search allowed).
    """
    puzzle = solution.copy()
    work = np.zeros(81, np.int8)
    for cell in order:
        digit = puzzle[cell]
        puzzle[cell] = 0
        if unique:
            count, _, _ = _search(puzzle, 2, False, units)
            keep = count == 1
        else:
            work[:] = puzzle
            keep = _rounds(work, max_rounds, units) >= 0
        if not keep:
            puzzle[cell] = digit
    return puzzle


def dig(solution: np.ndarray, order: np.ndarray, max_rounds: int = 81, unique: bool = False) -> np.ndarray:
    """See ``_dig``. Args: solution (81,), order (K,) cells to try. Returns the puzzle (81,) int8."""
    return _dig(np.asarray(solution, np.int8), np.asarray(order, np.int64), max_rounds, unique, UNITS)


def is_valid_solution(grid: np.ndarray, puzzle: np.ndarray | None = None) -> bool:
    """A full grid obeying every row, column and box, and agreeing with ``puzzle``'s givens."""
    grid = np.asarray(grid)
    if not _valid_full(np.asarray(grid, np.int8), UNITS):
        return False
    if puzzle is not None:
        puzzle = np.asarray(puzzle)
        return bool(np.all((puzzle == 0) | (puzzle == grid)))
    return True


def conflicts(puzzle: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of cells (i < j) that are peers and hold the same digit."""
    out = []
    for i in range(81):
        if puzzle[i]:
            out.extend((i, int(j)) for j in PEERS[i] if j > i and puzzle[j] == puzzle[i])
    return out


def random_symmetry(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random validity-preserving relabelling: band/stack order, rows/columns within them,
    transpose and digit permutation.

    Returns (cells (81,), digits (10,)): the new grid is ``digits[grid[cells]]`` (0 stays 0).
    """
    def line_order() -> np.ndarray:
        return np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])

    rows, cols = line_order(), line_order()
    cells = (rows[:, None] * 9 + cols[None, :])
    if rng.random() < 0.5:
        cells = cells.T
    digits = np.concatenate([[0], 1 + rng.permutation(9)])
    return cells.reshape(81), digits
