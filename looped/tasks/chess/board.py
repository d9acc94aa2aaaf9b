"""Chess boards as tokens: the encoding of positions and moves, legal moves, and scoring moves.

Encoding: 64 tokens, one per square (a1 = 0, h8 = 63), after mirroring black-to-move boards so the
mover is always white. Token 0 is empty; 1-6 are the mover's K, Q, B, N, R, P and 7-12 the
opponent's (the 12 mover-relative planes). Legal moves are rebuilt from the 64 tokens, which do not
record castling rights or en passant: castling is allowed when king and rook stand on their home
squares, and en passant is not generated.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..base import InputError

PIECES = "KQBNRP"  # token 1 + index for the mover, 7 + index for the opponent
RANKS_FILES = torch.tensor([[sq // 8, sq % 8] for sq in range(64)])  # (64, 2)
# Attention groups of a square: its rank, file, diagonal, anti-diagonal and the whole board. Each
# head learns a bias per kind, so a head can look along the lines that queens, rooks, bishops,
# kings and pawns move on; the whole-board group keeps every square (and knight jumps) in reach.
LINES = tuple((r, f, r - f + 7, r + f, 0) for r, f in RANKS_FILES.tolist())
# The king's neighbourhood instead: four partitions of the board into 2x2 blocks (offset by a rank
# and/or a file); two squares share a block of one of them exactly when they are a king's move
# apart, so information crosses the board one square per iteration, as in a 3x3 convolution.
NEIGHBOURS = tuple(tuple(((r + a) // 2) * 8 + (f + b) // 2 for a, b in ((0, 0), (1, 0), (0, 1), (1, 1)))
                   for r, f in RANKS_FILES.tolist())
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


def encode_position(board, uci: str) -> tuple[np.ndarray, tuple[int, int]]:
    """(64,) tokens of ``board`` and the (from, to) squares of its move ``uci``, in the mover-as-white frame."""
    tokens, mirrored = encode_board(board)
    return tokens, encode_move(uci, mirrored)


def encode_rows(rows: list[dict], encode=encode_position, **labels: list[int]) -> dict[str, np.ndarray]:
    """Tokens (N, 64) and moves (N, 2) of puzzle rows (``fen``, ``move``) by ``encode``, and their labels."""
    import chess

    tokens = np.zeros((len(rows), 64), dtype=np.int64)
    moves = np.zeros((len(rows), 2), dtype=np.int64)
    for i, row in enumerate(rows):
        tokens[i], moves[i] = encode(chess.Board(row["fen"]), row["move"])
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


ENGINES = ("stockfish", "/usr/games/stockfish")  # where the mate checker looks for the engine
CHECK_DEPTH = 20  # the engine's search depth for a mate score (ample for mates in at most 5)
_CHECKED: dict[tuple[bytes, tuple[int, int]], bool] = {}  # (tokens, move) -> fastest mate or not


def engine_path() -> str | None:
    import shutil

    return next((found for name in ENGINES if (found := shutil.which(name))), None)


def _attacker_mate(engine, board, attacker) -> int | None:
    """Moves ``attacker`` needs to force mate, by the engine; None when it finds none."""
    import chess.engine

    mate = engine.analyse(board, chess.engine.Limit(depth=CHECK_DEPTH))["score"].pov(attacker).mate()
    return mate if mate is not None and mate > 0 else None


def fastest_mate(engine, tokens: bytes, move: tuple[int, int]) -> bool:
    """Whether ``move`` (from, to) is legal and starts the position's fastest forced mate: the position mates
    in m and, after the move, in m - 1 (or the move mates). Args: tokens (64,) as int64 bytes."""
    import chess

    board = decode_board(np.frombuffer(tokens, dtype=np.int64))
    candidate = chess.Move(*move)
    if board.piece_type_at(move[0]) == chess.PAWN and chess.square_rank(move[1]) == 7:
        candidate.promotion = chess.QUEEN
    if candidate not in board.legal_moves:
        return False
    m = _attacker_mate(engine, board, chess.WHITE)
    if m is None:
        return False
    board.push(candidate)
    if board.is_checkmate():
        return m == 1
    return _attacker_mate(engine, board, chess.WHITE) == m - 1


def verify_moves(inputs: torch.Tensor, moves: torch.Tensor) -> torch.Tensor | None:
    """(N,) bool: each (from, to) move starts its position's fastest forced mate, by Stockfish through
    python-chess (a sound check: a move it accepts mates fastest); None where no engine is installed.
    Args: inputs (N, 64) tokens of white-to-move positions; moves (N, 2)."""
    path = engine_path()
    if path is None:
        return None
    import chess.engine

    keys = [(row.tobytes(), tuple(int(s) for s in mv)) for row, mv in zip(inputs.cpu().numpy(), moves.cpu())]
    todo = [k for k in dict.fromkeys(keys) if k not in _CHECKED]
    if todo:
        with chess.engine.SimpleEngine.popen_uci(path) as engine:
            for key in todo:
                _CHECKED[key] = fastest_mate(engine, *key)
    return torch.tensor([_CHECKED[k] for k in keys])
