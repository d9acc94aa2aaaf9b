"""Chess puzzles, easy to hard: find the next move (DeepThinking protocol).

Splits:

- ``mate1`` ... ``mate5``: generated mate-in-N puzzles (``scripts/chess_data.py``, shipped in
  ``looped/data/chess``). Models train on ``mate1`` and ``mate2``; about one position in
  ``HOLDOUT`` of those is kept out of training for evaluation, chosen by a hash of its encoding so
  that a repeated or mirrored position never lands on both sides. ``mate3`` to ``mate5`` are never trained on.
- ``rated-LO-HI``: real Lichess puzzles rated in ``[LO, HI)``, extracted at setup time
  (``python scripts/chess_data.py lichess``).

Encoding: 64 tokens, one per square (a1 = 0, h8 = 63), after mirroring black-to-move boards so the
mover is always white. Token 0 is empty; 1-6 are the mover's K, Q, B, N, R, P and 7-12 the
opponent's (the 12 mover-relative planes). Positions are (rank, file). The target marks the move's
from-square (1) and to-square (2) on the 64 squares. The readout has two channels per square, a
from-score and a to-score; the loss is a softmax over the 64 squares for each (two 64-way
cross-entropies), so the model ranks squares rather than classifying each on its own.

Scores: ``exact``, the top from-square and the top to-square are the move's (the paper's top-2
squares protocol, with the two squares' roles told apart); and ``legal``, the legal move with the
highest ``log p(from) + log p(to)`` is the solution. Legal moves are
rebuilt from the 64 tokens, which do not record castling rights or en passant: castling is
allowed when king and rook stand on their home squares, and en passant is not generated.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import torch

from ..base import Batch, InputError, ModelSettings, Split, Task
from .data import MAX_MATE, read_lichess, read_shards

PIECES = "KQBNRP"  # token 1 + index for the mover, 7 + index for the opponent
MATES = tuple(f"mate{n}" for n in range(1, MAX_MATE + 1))
RATING_BANDS = ((0, 1000), (1000, 1400), (1400, 1800), (1800, 2200), (2200, 3000))
RATED = tuple(f"rated-{lo}-{hi}" for lo, hi in RATING_BANDS)
HOLDOUT = 10  # positions whose encoding hashes to 0 mod HOLDOUT are held out of training
_RANKS_FILES = torch.tensor([[sq // 8, sq % 8] for sq in range(64)])  # (64, 2)
# Attention groups of a square: its rank, file, diagonal, anti-diagonal and the whole board. Each
# head learns a bias per kind, so a head can look along the lines that queens, rooks, bishops,
# kings and pawns move on; the whole-board group keeps every square (and knight jumps) in reach.
LINES = tuple((r, f, r - f + 7, r + f, 0) for r, f in _RANKS_FILES.tolist())
# The king's neighbourhood instead: four partitions of the board into 2x2 blocks (offset by a rank
# and/or a file); two squares share a block of one of them exactly when they are a king's move
# apart, so information crosses the board one square per iteration, as in a 3x3 convolution.
NEIGHBOURS = tuple(tuple(((r + a) // 2) * 8 + (f + b) // 2 for a, b in ((0, 0), (1, 0), (0, 1), (1, 1)))
                   for r, f in _RANKS_FILES.tolist())
# Lines without the whole board: a square sees only the squares a queen on it could reach on an
# empty board, so a piece's reach crosses the board over iterations (the shipped model's groups).
LINES_ONLY = tuple(g[:4] for g in LINES)


def encode_board(board) -> tuple[np.ndarray, bool]:
    """(64,) int64 tokens of ``board`` seen from the side to move, and whether it was mirrored."""
    import chess

    mirrored = board.turn == chess.BLACK
    b = board.mirror() if mirrored else board
    tokens = np.zeros(64, dtype=np.int64)
    for square, piece in b.piece_map().items():
        tokens[square] = 1 + PIECES.index(piece.symbol().upper()) + (0 if piece.color == chess.WHITE else 6)
    return tokens, mirrored


def encode_move(uci: str, mirrored: bool) -> tuple[int, int]:
    """(from, to) squares of a UCI move in the encoded (mover-as-white) frame."""
    import chess

    move = chess.Move.from_uci(uci)
    if mirrored:
        return chess.square_mirror(move.from_square), chess.square_mirror(move.to_square)
    return move.from_square, move.to_square


def decode_board(tokens: np.ndarray):
    """The white-to-move board that ``tokens`` encode (castling inferred from home squares)."""
    import chess

    board = chess.Board(None)
    for square in np.flatnonzero(tokens).tolist():
        t = int(tokens[square]) - 1
        board.set_piece_at(square, chess.Piece.from_symbol(PIECES[t % 6] if t < 6 else PIECES[t % 6].lower()))
    board.turn = chess.WHITE
    board.castling_rights = _home_castling(board)
    return board


def _home_castling(board) -> int:
    import chess

    rights = 0
    for color, king, rooks in ((chess.WHITE, chess.E1, (chess.A1, chess.H1)), (chess.BLACK, chess.E8, (chess.A8, chess.H8))):
        if board.piece_at(king) == chess.Piece(chess.KING, color):
            for rook in rooks:
                if board.piece_at(rook) == chess.Piece(chess.ROOK, color):
                    rights |= chess.BB_SQUARES[rook]
    return rights


@functools.lru_cache(maxsize=200_000)
def legal_squares(tokens: bytes) -> np.ndarray:
    """(M, 2) from- and to-squares of the legal moves in the encoded position (tokens as int64 bytes)."""
    board = decode_board(np.frombuffer(tokens, dtype=np.int64))
    pairs = {(m.from_square, m.to_square) for m in board.legal_moves}
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def square_scores(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of each square being the from- and the to-square. Args/Returns: (..., 64, 2)."""
    return logits.float().log_softmax(dim=-2)


def best_legal(inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(N, 2) from/to of the legal move with the highest ``log p(from) + log p(to)`` (-1 if none).

    Args: inputs (N, 64) tokens; logits (N, 64, 2).
    """
    scores = square_scores(logits).cpu()
    out = torch.full((inputs.shape[0], 2), -1, dtype=torch.long)
    for i, row in enumerate(inputs.cpu().numpy()):
        moves = torch.from_numpy(legal_squares(row.tobytes()))
        if len(moves):
            out[i] = moves[(scores[i, moves[:, 0], 0] + scores[i, moves[:, 1], 1]).argmax()]
    return out


@functools.lru_cache(maxsize=None)
def generated() -> dict[str, np.ndarray]:
    """All shipped generated puzzles, encoded: tokens (N, 64), move (N, 2), mate (N,), depth (N,), held (N,)."""
    rows = read_shards()
    data = _encode_rows(rows, mate=[r["mate"] for r in rows], depth=[r["depth"] for r in rows])
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
    return _encode_rows(rows, rating=[r["rating"] for r in rows])


def _encode_rows(rows: list[dict], **labels: list[int]) -> dict[str, np.ndarray]:
    import chess

    tokens = np.zeros((len(rows), 64), dtype=np.int64)
    moves = np.zeros((len(rows), 2), dtype=np.int64)
    for i, row in enumerate(rows):
        tokens[i], mirrored = encode_board(chess.Board(row["fen"]))
        moves[i] = encode_move(row["move"], mirrored)
    return {"tokens": tokens, "move": moves, **{k: np.asarray(v, dtype=np.int64) for k, v in labels.items()}}


FLIP_FILES = torch.tensor([8 * (sq // 8) + 7 - sq % 8 for sq in range(64)])  # a-file <-> h-file


def legal_mask_bits(tokens: np.ndarray) -> np.ndarray:
    """(N, 512) uint8: the legal moves of each position as packed bits, bit ``64 * from + to``.
    Args: tokens (N, 64)."""
    mask = np.zeros((len(tokens), 64 * 64), dtype=bool)
    for i, row in enumerate(np.asarray(tokens, dtype=np.int64)):
        legal = legal_squares.__wrapped__(row.tobytes())  # not through the cache: these bits are the cache
        mask[i, 64 * legal[:, 0] + legal[:, 1]] = True
    return np.packbits(mask, axis=1)


class LegalTable:
    """The legal-move bits of a fixed set of positions, looked up by tokens without python-chess;
    positions outside the set are computed on the fly. Args: tokens (P, 64)."""

    def __init__(self, tokens: np.ndarray):
        tokens = np.unique(np.asarray(tokens, dtype=np.int64), axis=0)
        self.bits = legal_mask_bits(tokens)  # (P, 512)
        self.row = {t.astype(np.uint8).tobytes(): i for i, t in enumerate(tokens)}

    def mask(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, 4096) bool legal moves, index ``64 * from + to``. Args: inputs (N, 64) tokens."""
        tokens = inputs.cpu().numpy()
        rows = [self.row.get(t.astype(np.uint8).tobytes(), -1) for t in tokens]
        bits = self.bits[rows]
        for i in np.flatnonzero(np.array(rows) < 0):
            bits[i] = legal_mask_bits(tokens[i : i + 1])[0]
        return torch.from_numpy(np.unpackbits(bits, axis=1).view(bool)).to(inputs.device)


def targets_for(moves: np.ndarray) -> torch.Tensor:
    """(N, 64) targets: 1 on each move's from-square, 2 on its to-square, 0 elsewhere. Args: moves (N, 2)."""
    t = torch.zeros(len(moves), 64, dtype=torch.long)
    idx = torch.from_numpy(moves)
    t.scatter_(1, idx[:, :1], 1)
    t.scatter_(1, idx[:, 1:], 2)
    return t


def move_squares(targets: torch.Tensor) -> torch.Tensor:
    """(N, 2) from- and to-square of each move. Args: targets (N, 64) as in ``targets_for``."""
    return torch.stack([(targets == 1).int().argmax(1), (targets == 2).int().argmax(1)], dim=1)


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

    def _pool(self, split: Split, training: bool) -> dict[str, np.ndarray]:
        if split.name in RATED:
            if training:
                raise InputError("models train on generated puzzles, not on the rated set")
            data = rated()
            lo, hi = RATING_BANDS[RATED.index(split.name)]
            keep = (data["rating"] >= lo) & (data["rating"] < hi)
        else:
            data = generated()
            held = data["held"]
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
        return Batch(torch.from_numpy(pool["tokens"][idx]), targets_for(pool["move"][idx]), _RANKS_FILES)

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
        frame = chess.square_mirror if board.turn == chess.BLACK else int
        moves = [m for m in board.legal_moves if m.promotion in (None, chess.QUEEN)]
        return max(moves, key=lambda m: scores[frame(m.from_square)][0] + scores[frame(m.to_square)][1])

    def positions(self, length: int) -> torch.Tensor:
        return _RANKS_FILES


def board_from_fen(text: str):
    """A board from a FEN, or ``InputError`` if it is malformed, illegal or the game is over."""
    import chess

    fen = " ".join(str(text).split())
    if not fen:
        raise InputError("empty input: expected a FEN such as 6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1")
    try:
        board = chess.Board(fen)
    except ValueError as e:
        raise InputError(f"invalid FEN {fen!r}: {e}") from None
    status = board.status()
    if status != chess.STATUS_VALID:
        problems = [flag.name.lower().replace("_", " ") for flag in chess.Status if flag and flag in status]
        raise InputError(f"illegal position {fen!r}: {', '.join(problems)}")
    outcome = board.outcome()
    if outcome is not None:
        raise InputError(f"the game is over in {fen!r}: {outcome.termination.name.lower().replace('_', ' ')}")
    return board
