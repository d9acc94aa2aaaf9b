"""Chess puzzles, easy to hard: find the next move (DeepThinking protocol).

Splits:

- ``mate1`` ... ``mate5``: generated mate-in-N puzzles (``scripts/chess_data.py``, shipped in
  ``looped/data/chess``). Models train on ``mate1`` and ``mate2``; about one position in
  ``HOLDOUT`` of those is kept out of training for evaluation, chosen by a hash of its encoding so
  that a repeated or mirrored position never lands on both sides. ``mate3`` to ``mate5`` are never trained on.
- ``rated-LO-HI``: real Lichess puzzles rated in ``[LO, HI)``, extracted at setup time
  (``python scripts/chess_data.py lichess``).

``Chess`` encodes a position as 64 mover-relative tokens (``board.py``) with positions (rank, file).
The target marks the move's from-square (1) and to-square (2) on the 64 squares. The readout has two
channels per square, a from-score and a to-score; the loss is a softmax over the 64 squares for each
(two 64-way cross-entropies), so the model ranks squares rather than classifying each on its own.
Scores: ``exact``, the top from-square and the top to-square are the move's (the paper's top-2
squares protocol, with the two squares' roles told apart); and ``legal``, the legal move with the
highest ``log p(from) + log p(to)`` is the solution.

``PaperChess`` is the same puzzles as the paper's code encodes them (``paper.py``), for models
imported from it: its tokens and square order, two classes per square marking the move's squares;
``exact`` is the paper's (the two squares with the highest class-1 logit are the move's), ``legal``
the legal move with the highest sum of its squares' class-1 logits.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import torch

from ..base import Batch, InputError, ModelSettings, PaperRecipe, Split, Task
from .board import (FLIP_FILES, LINES, RANKS_FILES, LegalTable, best_legal, board_from_fen, encode_board, encode_rows,
                    move_squares, square_scores, targets_for, verify_moves)
from .data import MAX_MATE, read_lichess, read_shards
from .paper import best_legal_paper, encode_paper, frame, index

MATES = tuple(f"mate{n}" for n in range(1, MAX_MATE + 1))
RATING_BANDS = ((0, 1000), (1000, 1400), (1400, 1800), (1800, 2200), (2200, 3000))
RATED = tuple(f"rated-{lo}-{hi}" for lo, hi in RATING_BANDS)
HOLDOUT = 10  # positions whose encoding hashes to 0 mod HOLDOUT are held out of training


@functools.lru_cache(maxsize=None)
def generated() -> dict[str, np.ndarray]:
    """All shipped generated puzzles, encoded: tokens (N, 64), move (N, 2), mate (N,), depth (N,), held (N,)."""
    rows = read_shards()
    data = encode_rows(rows, mate=[r["mate"] for r in rows], depth=[r["depth"] for r in rows])
    data["held"] = np.array([zlib.crc32(t.tobytes()) % HOLDOUT == 0 for t in data["tokens"]], dtype=bool)
    return data


@functools.lru_cache(maxsize=None)
def rated() -> dict[str, np.ndarray]:
    """The extracted Lichess puzzles, encoded, with ``rating`` (N,)."""
    try:
        rows = read_lichess()
    except FileNotFoundError:
        raise InputError(
            "the rated Lichess puzzles are not extracted yet: run python scripts/chess_data.py lichess"
        ) from None
    return encode_rows(rows, rating=[r["rating"] for r in rows])


@functools.lru_cache(maxsize=None)
def generated_paper() -> dict[str, np.ndarray]:
    rows = read_shards()
    return encode_rows(rows, encode_paper, mate=[r["mate"] for r in rows])


@functools.lru_cache(maxsize=None)
def rated_paper() -> dict[str, np.ndarray]:
    try:
        rows = read_lichess()
    except FileNotFoundError:
        raise InputError("the rated Lichess puzzles are not extracted yet: run python scripts/chess_data.py lichess") from None
    return encode_rows(rows, encode_paper, rating=[r["rating"] for r in rows])


class Chess(Task):
    name = "chess"
    vocab_size = 13
    num_classes = 2
    train_splits = ("mate1", "mate2")
    eval_splits = MATES + RATED
    can_augment = True
    can_mask_loss = True
    model_settings = ModelSettings(board=(8, 8), attention="groups", groups=LINES, causal=False, position_sizes=(8, 8),
                                   d_model=64, n_heads=4)
    paper_recipe = PaperRecipe(epoch_examples=40_000, cpu_steps=3_000)  # 80% of 50,000 puzzles
    _legal: LegalTable | None = None  # built on the first masked_loss

    def split(self, name: str) -> Split:
        name = str(name).strip()
        if name in MATES:
            return Split(name=name, difficulty=MATES.index(name) + 1)
        if name in RATED:
            return Split(name=name, difficulty=RATING_BANDS[RATED.index(name)][0])
        raise InputError(f"unknown chess split {name!r}; choose from {', '.join(MATES + RATED)}")

    def input_length(self, split: Split) -> int:
        return 64

    def encoded(self, rated_set: bool) -> dict[str, np.ndarray]:
        """The generated puzzles (``generated``), or the rated ones (``rated``), in this task's encoding."""
        return rated() if rated_set else generated()

    def _pool(self, split: Split, training: bool) -> dict[str, np.ndarray]:
        if split.name in RATED:
            if training:
                raise InputError("models train on generated puzzles, not on the rated set")
            data = self.encoded(rated_set=True)
            lo, hi = RATING_BANDS[RATED.index(split.name)]
            keep = (data["rating"] >= lo) & (data["rating"] < hi)
        else:
            data = self.encoded(rated_set=False)
            held = generated()["held"]  # the same puzzles are held out in every encoding
            keep = (data["mate"] == split.difficulty) & (~held if training else held | (split.difficulty > 2))
        idx = np.flatnonzero(keep)
        if not len(idx):
            raise InputError(f"no chess puzzles for split {split.name!r}; generate or extract them first")
        return {"tokens": data["tokens"][idx], "move": data["move"][idx]}

    def generate(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` puzzles of ``split`` drawn without replacement (all of them if fewer exist)."""
        pool = self._pool(split, training=False)
        order = np.random.default_rng([seed, split.difficulty]).permutation(len(pool["move"]))[:n]
        return self._batch(pool, np.sort(order))

    def train_batch(self, split: Split, n: int, seed: int) -> Batch:
        pool = self._pool(split, training=True)
        return self._batch(pool, np.random.default_rng([seed, 17]).integers(0, len(pool["move"]), size=n))

    def augment(self, batch: Batch, seed: int) -> Batch:
        """Each position mirrored left to right (files a <-> h) with probability 1/2, its move with it.

        Every move but castling is symmetric under this flip; the generated positions have no castling
        rights and no en passant, so their puzzles stay valid with the same solution.
        """
        flip = torch.from_numpy(np.random.default_rng([seed, 19]).random(len(batch)) < 0.5)
        inputs, targets = batch.inputs.clone(), batch.targets.clone()
        inputs[flip] = batch.inputs[flip][:, FLIP_FILES]
        targets[flip] = batch.targets[flip][:, FLIP_FILES]
        return Batch(inputs, targets, batch.positions)

    def _batch(self, pool: dict[str, np.ndarray], idx: np.ndarray) -> Batch:
        return Batch(torch.from_numpy(pool["tokens"][idx]), targets_for(pool["move"][idx]), RANKS_FILES)

    def parse(self, text: str) -> torch.Tensor:
        return torch.from_numpy(encode_board(board_from_fen(text))[0])

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the from-square over the 64 squares plus that of the to-square.
        Args: logits (N, 64, 2), targets (N, 64) as in ``targets_for``."""
        ce = torch.nn.functional.cross_entropy
        squares = move_squares(targets)
        return ce(logits[..., 0], squares[:, 0]) + ce(logits[..., 1], squares[:, 1])

    def masked_loss(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the move over the position's legal moves (and the move itself), each scored
        ``logit_from + logit_to`` (the ranking ``best_legal`` decodes with).
        Args: inputs (N, 64) tokens, logits (N, 64, 2), targets (N, 64) as in ``targets_for``."""
        squares = move_squares(targets)
        move = 64 * squares[:, 0] + squares[:, 1]  # (N,)
        legal = self._legal_table().mask(inputs)  # (N, 4096)
        legal[torch.arange(len(move), device=legal.device), move] = True
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        scores = (logits[..., :, None, 0] + logits[..., None, :, 1]).flatten(1)  # (N, 4096)
        return torch.nn.functional.cross_entropy(scores.masked_fill(~legal, float("-inf")), move)

    def _legal_table(self) -> LegalTable:
        """The legal moves of the training positions and of their file flips, built once per process."""
        cls = type(self)
        if cls._legal is None:
            tokens = np.concatenate([self._pool(self.split(s), training=True)["tokens"] for s in self.train_splits])
            cls._legal = LegalTable(np.concatenate([tokens, tokens[:, FLIP_FILES.numpy()]]))
        return cls._legal

    def predict(self, inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The top from-square marked 1 and the top to-square marked 2. Args: logits (N, 64, 2).
        Returns (N, 64)."""
        out = torch.zeros(logits.shape[:-1], dtype=torch.long, device=logits.device)
        out.scatter_(-1, logits[..., 0].argmax(-1, keepdim=True), 1)
        return out.scatter_(-1, logits[..., 1].argmax(-1, keepdim=True), 2)

    def metrics(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """Per puzzle: ``exact`` (top from- and to-square are the move's) and ``legal`` (the best legal
        move is the move)."""
        move = best_legal(inputs, logits).to(targets.device)
        return {
            "exact": self.score(self.predict(inputs, logits), targets),
            "legal": (move == move_squares(targets)).all(dim=1),
        }

    def decode(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> str:
        return self._move(text, logits).uci()

    def describe(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> list[str]:
        board = board_from_fen(text)
        move = self._move(text, logits)
        return [f"move: {move.uci()} ({board.san(move)})"]

    def _move(self, text: str, logits: torch.Tensor):
        """The legal move of the real position with the best ``log p(from) + log p(to)`` (queen on promotion)."""
        import chess

        board = board_from_fen(text)
        scores = square_scores(logits).tolist()
        square = chess.square_mirror if board.turn == chess.BLACK else int
        moves = [m for m in board.legal_moves if m.promotion in (None, chess.QUEEN)]
        return max(moves, key=lambda m: scores[square(m.from_square)][0] + scores[square(m.to_square)][1])

    def positions(self, length: int) -> torch.Tensor:
        return RANKS_FILES

    def for_paper(self) -> "Task":
        return PaperChess()

    def view(self, inputs: torch.Tensor, index: int, seed: int):
        """View 0 is the position; view 1 mirrors it left to right (files a <-> h), as ``augment`` does; no more."""
        if index > 1:
            return None
        if index == 0:
            return inputs, lambda logits: logits
        flip = FLIP_FILES.to(inputs.device)
        return inputs[:, flip], lambda logits: logits[:, flip]

    def verify(self, inputs: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor | None:
        """The predicted move (top from- and to-square) starts the position's fastest forced mate, checked by
        Stockfish through python-chess; None (no checker) where Stockfish is not installed."""
        return verify_moves(inputs, move_squares(prediction))


class PaperChess(Chess):
    """``Chess`` in the paper's encoding (the module docstring)."""

    can_augment = False
    can_mask_loss = False

    def encoded(self, rated_set: bool) -> dict[str, np.ndarray]:
        return rated_paper() if rated_set else generated_paper()

    def parse(self, text: str) -> torch.Tensor:
        return torch.from_numpy(encode_paper(board_from_fen(text))[0])

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The paper's: cross-entropy of each square's two classes against the move's squares."""
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), (targets > 0).long().flatten())

    def predict(self, inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """1 on the two squares with the highest class-1 logit, 0 elsewhere. Returns (N, 64)."""
        out = torch.zeros(logits.shape[:-1], dtype=torch.long, device=logits.device)
        return out.scatter_(-1, logits[..., 1].topk(2, dim=-1).indices, 1)

    def score(self, prediction: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (prediction == (targets > 0).long()).all(dim=1)

    def metrics(self, inputs: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        move = best_legal_paper(inputs, logits).to(targets.device)
        squares = torch.stack([(targets == 1).int().argmax(1), (targets == 2).int().argmax(1)], dim=1)
        return {"exact": self.score(self.predict(inputs, logits), targets), "legal": (move == squares).all(dim=1)}

    def _move(self, text: str, logits: torch.Tensor):
        """The legal move of the real position whose squares have the highest class-1 logits (queen on promotion)."""
        import chess

        board = board_from_fen(text)
        turned, mirrored = frame(board)
        score = logits[..., 1].tolist()
        moves = [m for m in board.legal_moves if m.promotion in (None, chess.QUEEN)]
        return max(moves, key=lambda m: score[index(m.from_square, turned, mirrored)]
                   + score[index(m.to_square, turned, mirrored)])

    def for_paper(self) -> Task:
        return self

    def view(self, inputs: torch.Tensor, index: int, seed: int):
        """Only the position itself: the paper's frame is already mirrored to put the king on files e-h."""
        return (inputs, lambda logits: logits) if index == 0 else None

    def verify(self, inputs: torch.Tensor, prediction: torch.Tensor) -> None:
        return None
