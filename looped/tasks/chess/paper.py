"""The chess encoding of the paper's code (``deepthinking/utils/chess_data.py``), for ``PaperChess``.

* squares in row-major order from the top: index ``8 * row + col`` with ``row = 7 - rank``;
* a board with black to move is turned half a turn (ranks and files reversed) and its colours swapped,
  so the side to move plays up the board as white; then, if that side's king stands on files a-d, the
  board is mirrored left to right;
* token 0 is an empty square and token ``p + 1`` a piece on plane ``p``: planes 0-5 the mover's pawn,
  knight, bishop, rook, queen and king, planes 6-11 the opponent's;
* two classes per square: the model marks the move's from- and to-square with class 1.
"""

from __future__ import annotations

import numpy as np
import torch

from .board import PIECES, legal_squares

PAPER_PIECES = "PNBRQK"  # plane order of the paper's code, for the mover (0-5) and the opponent (6-11)
OURS = torch.tensor([0] + [1 + PIECES.index(PAPER_PIECES[p % 6]) + 6 * (p >= 6) for p in range(12)])  # paper -> Chess token
ROW_MAJOR_TO_SQUARE = torch.tensor([(7 - i // 8) * 8 + i % 8 for i in range(64)])  # paper index -> chess square


def frame(board) -> tuple[bool, bool]:
    """(turned, mirrored): how the paper's code turns ``board`` so the side to move plays up as white."""
    import chess

    turned = board.turn == chess.BLACK
    king = board.king(board.turn)
    col = (7 - chess.square_file(king)) if turned else chess.square_file(king)
    return turned, king is not None and col < 4


def index(square: int, turned: bool, mirrored: bool) -> int:
    """The paper's row-major index of a python-chess square in the frame (turned, mirrored)."""
    row, col = 7 - square // 8, square % 8
    if turned:
        row, col = 7 - row, 7 - col
    return 8 * row + (7 - col if mirrored else col)


def encode_paper(board, uci: str | None = None) -> tuple[np.ndarray, tuple[int, int] | None]:
    """(64,) tokens of ``board`` as the paper encodes it, and the (from, to) indices of the move ``uci``."""
    import chess

    turned, mirrored = frame(board)
    tokens = np.zeros(64, dtype=np.int64)
    for square, piece in board.piece_map().items():
        plane = PAPER_PIECES.index(piece.symbol().upper()) + (0 if piece.color == board.turn else 6)
        tokens[index(square, turned, mirrored)] = plane + 1
    if uci is None:
        return tokens, None
    move = chess.Move.from_uci(uci)
    return tokens, (index(move.from_square, turned, mirrored), index(move.to_square, turned, mirrored))


def best_legal_paper(inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(N, 2) paper indices of the legal move with the highest sum of its squares' class-1 logits.
    Args: inputs (N, 64) paper tokens; logits (N, 64, 2)."""
    ours = OURS.to(inputs.device)[inputs][:, torch.argsort(ROW_MAJOR_TO_SQUARE)].cpu().numpy()  # a white-to-move board
    score = logits[..., 1].double().cpu()
    out = torch.full((inputs.shape[0], 2), -1, dtype=torch.long)
    to_index = torch.argsort(ROW_MAJOR_TO_SQUARE)  # chess square -> paper index
    for i, row in enumerate(ours):
        moves = to_index[torch.from_numpy(legal_squares(row.tobytes()))]
        if len(moves):
            out[i] = moves[(score[i, moves[:, 0]] + score[i, moves[:, 1]]).argmax()]
    return out
