"""Property-based tests: random and adversarial input to every parser and CLI entry point.

Each must either succeed or fail with one clear line and exit code 2: no traceback, no other
exception, and no partial file left behind. ``CASES`` examples per property (``CLI_CASES`` for
those that run whole commands).
"""

import json
import os
import pickle
import string
from pathlib import Path

import chess
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looped import cli, runs
from looped.config import ConfigError
from looped.model import LoopedConfig, LoopedTransformer
from looped.tasks import TASKS, InputError, get_task
from looped.config import TrainConfig

CASES, CLI_CASES = 100, 25
FUZZ = settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ_CLI = settings(FUZZ, max_examples=CLI_CASES)

VALID_SUDOKU = "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."
VALID_FEN = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"


def mutations(base: str, alphabet: str):
    """``base`` with random characters replaced, inserted or deleted."""
    return st.lists(st.tuples(st.integers(0, len(base)), st.sampled_from(["sub", "ins", "del"]),
                              st.sampled_from(alphabet)), max_size=6).map(lambda ops: _apply(base, ops))


def _apply(s: str, ops) -> str:
    for i, op, c in ops:
        i = min(i, len(s))
        s = s[:i] + c + s[i + 1:] if op == "sub" else s[:i] + c + s[i:] if op == "ins" else s[:i] + s[i + 1:]
    return s


def parses_or_input_error(task_name: str, text: str) -> None:
    try:
        get_task(task_name).parse(text)
    except InputError as e:
        assert str(e) and "\n" not in str(e)


@FUZZ
@given(st.one_of(st.text(max_size=120), mutations(VALID_SUDOKU, "0123456789.x \n")))
def test_sudoku_parser(text):
    parses_or_input_error("sudoku", text)


@FUZZ
@given(st.one_of(st.text(max_size=100), mutations(VALID_FEN, "pnbrqkPNBRQK12345678/ -wb0")))
def test_fen_parser(text):
    try:
        tokens = get_task("chess").parse(text)
    except InputError as e:
        assert str(e) and "\n" not in str(e)
        return
    board = chess.Board(" ".join(text.split()))  # accepted: a legal, unfinished position
    assert board.is_valid() and board.outcome() is None and tokens.shape == (64,)


@FUZZ
@given(st.one_of(st.text(max_size=60), st.text(alphabet="01", max_size=60)))
def test_bit_string_parser(text):
    parses_or_input_error("prefix-sums", text)


@FUZZ
@given(st.sampled_from(sorted(TASKS)), st.text(max_size=20))
def test_split_names(task_name, name):
    try:
        get_task(task_name).split(name)
    except InputError as e:
        assert str(e) and "\n" not in str(e)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=8), st.lists(st.integers(-2, 20), max_size=4))


@FUZZ
@given(st.dictionaries(st.sampled_from(["task", "seed", "steps", "minutes", "batch_size", "lr", "alpha", "train_iters",
                                        "warmup_steps", "grad_window", "bogus"]), VALUES, max_size=5))
def test_train_config_values(values):
    try:
        TrainConfig.from_dict({"steps": 10, **values})
    except ConfigError as e:
        assert "\n" not in str(e)


@FUZZ
@given(st.dictionaries(st.sampled_from(["d_model", "n_heads", "recall", "outer_norm", "init", "attention", "window",
                                        "vocab_size", "num_classes", "mlp_ratio", "groups", "bogus"]), VALUES,
                       max_size=4))
def test_model_config_values(values):
    try:
        LoopedTransformer(LoopedConfig.from_dict({**LoopedConfig().to_dict(), **values}))
    except ConfigError as e:
        assert "\n" not in str(e)


# ------------------------------------------------------------------ the CLI, in process


def run_cli(argv, capsys) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code, err):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


FLAGS = st.lists(st.sampled_from(["--steps", "--lr", "--alpha", "--batch-size", "--train-iters", "--recall",
                                  "--outer-norm", "--task", "--device", "--seed", "--window", "--grad-window",
                                  "--bogus", "-x"]), min_size=1, max_size=3)


@FUZZ
@given(FLAGS, st.lists(st.sampled_from(["0", "-1", "nan", "inf", "1e99", "abc", "", "cuda:7", "0.5"]),
                       min_size=1, max_size=3))
def test_train_flags_are_checked_before_any_file_is_written(tmp_path, capsys, flags, values):
    out = tmp_path / "run"
    argv = ["train", "--out", out, "--quiet"]
    for f, v in zip(flags, values):
        argv += [f, v]
    if "--steps" not in flags:
        argv += ["--steps", "0"]  # never train: a bad value must fail, a good one fails on steps=0
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err)
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    assert cli.main(["train", "--task", "prefix-sums", "--steps", "2", "--d-model", "8", "--heads", "2", "--out",
                     str(out), "--quiet", "--device", "cpu"]) == 0
    return out


CORRUPTIONS = st.sampled_from(["truncate", "garbage", "empty", "json", "delete", "other-shape"])


@FUZZ_CLI
@given(st.sampled_from([runs.CONFIG, runs.WEIGHTS, runs.CHECKPOINT]), CORRUPTIONS, st.binary(max_size=64))
def test_corrupt_run_directories(tmp_path_factory, capsys, good_run, name, how, junk):
    run = tmp_path_factory.mktemp("c") / "run"
    run.mkdir()
    for f in good_run.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    target = run / name
    data = target.read_bytes()
    if how == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        target.write_bytes(junk + data[len(junk):])
    elif how == "empty":
        target.write_bytes(b"")
    elif how == "json":
        target.write_text(json.dumps({"task": "prefix-sums", "model": {"d_model": "wide"}}))
    elif how == "delete":
        target.unlink()
    else:  # weights of another shape
        other = LoopedTransformer(LoopedConfig(d_model=16, n_heads=2))
        runs.write_tensors(target, other.state_dict())
    before = sorted(p.name for p in run.iterdir())
    for argv in (["eval", run, "--n", "2", "--max-iters", "2", "--quiet"], ["train", "--out", run, "--resume",
                                                                             "--steps", "3", "--quiet"],
                 ["solve", "prefix-sums", "0101", "--model", run]):
        code, err = run_cli(argv, capsys)
        if code == 0:  # the damage did not touch what this command reads
            continue
        assert_one_line_error(code, err)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert set(before) <= {p.name for p in run.iterdir()}


class Exploit:
    """Unpickling this creates a file: proof that a loader ran untrusted code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", [runs.WEIGHTS, runs.CHECKPOINT])
def test_a_malicious_pickle_checkpoint_is_refused(tmp_path, capsys, good_run, name):
    run = tmp_path / "run"
    run.mkdir()
    for f in good_run.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"model": Exploit(marker)})
    (run / name).write_bytes(payload)
    reader = {runs.WEIGHTS: ["solve", "prefix-sums", "0101", "--model", run],  # the command that reads this file
              runs.CHECKPOINT: ["train", "--out", run, "--resume", "--steps", "3", "--quiet"]}[name]
    assert_one_line_error(*run_cli(reader, capsys))
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: unpickling it does create the marker
    assert marker.exists()


@FUZZ_CLI
@given(st.lists(st.text(alphabet=string.printable, max_size=30), min_size=1, max_size=6))
def test_solve_files_with_random_lines(tmp_path_factory, capsys, good_run, lines):
    f = tmp_path_factory.mktemp("f") / "in.txt"
    f.write_text("\n".join(lines))
    code, err = run_cli(["solve", "prefix-sums", "--file", f, "--model", good_run, "--max-iters", "2"], capsys)
    if code != 0:
        assert_one_line_error(code, err)


# ------------------------------------------------------------------ your own tasks and data files

MODULES = ["looped", "looped.tasks", "looped.tasks.base", "json", "math", "no_such_module_for_looped", "looped.nope",
           "", ".", "looped..tasks"]
TASK_PATHS = st.one_of(
    st.tuples(st.sampled_from(MODULES), st.one_of(
        st.sampled_from(["Task", "tasks.PrefixSums", "PrefixSums", "Batch", "get_task", "loads", "pi", "Sequences"]),
        st.text(max_size=12))).map(":".join),
    st.text(alphabet=st.characters(blacklist_categories=("Lu", "Ll", "Cs")), max_size=20),  # names nothing real
    mutations("prefix-sums", "-:.x"),
)


@FUZZ
@given(TASK_PATHS)
def test_task_paths(spec):
    try:
        task = get_task(spec)
    except InputError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert task.vocab_size >= 1 and task.train_splits  # a path that resolved names a real task


@FUZZ_CLI
@given(TASK_PATHS)
def test_train_task_paths_are_checked_before_any_file_is_written(tmp_path_factory, capsys, spec):
    out = tmp_path_factory.mktemp("t") / "run"
    code, err = run_cli(["train", "--task", spec, "--steps", "1", "--d-model", "8", "--heads", "2", "--batch-size", "2",
                         "--train-iters", "2", "--out", out, "--quiet", "--device", "cpu"], capsys)
    if code != 0:
        assert_one_line_error(code, err)
        assert not out.exists()


SEQUENCE = st.one_of(st.text(alphabet="abc", max_size=5), st.lists(st.integers(-2, 4), max_size=5))
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 300) | st.floats() | st.text(max_size=4),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=6)
def valid_row(n: int):
    """A well-formed line of length ``n``: strings or lists of ints."""
    return st.one_of(
        st.fixed_dictionaries({"input": st.text("abc", min_size=n, max_size=n), "target": st.text("xy", min_size=n, max_size=n)}),
        st.fixed_dictionaries({"input": st.lists(st.integers(0, 3), min_size=n, max_size=n),
                               "target": st.lists(st.integers(0, 1), min_size=n, max_size=n)}))


ROW = st.one_of(st.integers(1, 4).flatmap(valid_row), st.fixed_dictionaries({"input": SEQUENCE, "target": SEQUENCE}),
                st.fixed_dictionaries({"input": st.one_of(SEQUENCE, JSON_VALUES), "target": JSON_VALUES}), JSON_VALUES)
RANDOM_LINES = st.lists(st.one_of(ROW.map(json.dumps), ROW.map(json.dumps).map(lambda s: s[: len(s) // 2]),
                                  st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=16)), max_size=4)
VALID_LINES = st.integers(1, 4).flatmap(lambda n: st.lists(valid_row(n).map(json.dumps), min_size=1, max_size=5))
LINES = st.one_of(VALID_LINES, st.tuples(VALID_LINES, RANDOM_LINES).map(lambda t: t[0] + t[1]), RANDOM_LINES)


@FUZZ
@given(LINES, LINES)
def test_data_files(tmp_path_factory, train, later):
    d = tmp_path_factory.mktemp("d")
    (d / "train.jsonl").write_text("\n".join(train))
    try:
        task = get_task("sequences", d)
    except InputError as e:
        assert "\n" not in str(e) and "train.jsonl" in str(e)
        return
    (d / "test.jsonl").write_text("\n".join(later))  # a split added after training: checked at eval time
    try:
        batch = task.generate(task.split("test"), 4, seed=0)
    except InputError as e:
        assert "\n" not in str(e) and "test.jsonl" in str(e)
        return
    assert batch.inputs.shape == batch.targets.shape
    assert 0 <= int(batch.inputs.min()) and int(batch.inputs.max()) < task.vocab_size
    assert 0 <= int(batch.targets.min()) and int(batch.targets.max()) < task.num_classes


@FUZZ_CLI
@given(LINES)
def test_train_on_random_data_files(tmp_path_factory, capsys, lines):
    d = tmp_path_factory.mktemp("d")
    (d / "train.jsonl").write_text("\n".join(lines))
    out = d / "run"
    code, err = run_cli(["train", "--task", "sequences", "--data", d, "--steps", "1", "--d-model", "8", "--heads", "2",
                         "--batch-size", "2", "--train-iters", "2", "--out", out, "--quiet", "--device", "cpu"], capsys)
    if code != 0:
        assert_one_line_error(code, err)
        assert "train.jsonl" in err and not out.exists()
