"""CLI smoke runs: real subprocesses, real exit codes, no tracebacks."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from looped.tasks.prefix_sums import prefix_parity
from looped import runs
from looped.tasks import get_task


def looped(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "looped", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_user_error(proc):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    proc = looped("train", "--task", "prefix-sums", "--recall", "internal", "--outer-norm", "layernorm",
                  "--steps", "6", "--seed", "1", "--out", out, "--d-model", "16", "--heads", "2",
                  "--train-iters", "4", "--batch-size", "8", "--quiet", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    return out


def test_train_writes_a_run_directory(run_dir):
    for name in ("config.json", "metrics.jsonl", "model.safetensors", "checkpoint.safetensors"):
        assert (run_dir / name).is_file()


def test_train_resume_continues(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    proc = looped("train", "--out", copy, "--resume", "--steps", "9", "--quiet")
    assert proc.returncode == 0, proc.stderr
    steps = [json.loads(line)["step"] for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))


def test_eval_json_contract(run_dir, tmp_path):
    proc = looped("eval", run_dir, "--split", "8,16", "--max-iters", "5", "--n", "20", "--json", "--quiet",
                  "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["task"] == "prefix-sums" and result["run"] == str(run_dir)
    assert [r["split"] for r in result["results"]] == ["8", "16"]
    for r in result["results"]:
        assert r["n"] == 20
        assert sorted(map(int, r["accuracy_by_iteration"])) == [1, 2, 3, 4, 5]
        assert r["best_accuracy"] == max(r["accuracy_by_iteration"].values())
        assert r["final_accuracy"] == r["accuracy_by_iteration"]["5"]
        assert r["accuracy_by_iteration"][str(r["best_iteration"])] == r["best_accuracy"]
    assert (tmp_path / "eval.png").stat().st_size > 1000
    assert json.loads((tmp_path / "eval.json").read_text()) == result


def test_eval_json_names_the_splits_of_every_task_the_same_way(run_dir, tmp_path, capsys):
    """One schema for every task: a prefix-sums length and a sudoku tier are both ``"split"``, a name."""
    from looped import cli

    sudoku = runs.shipped_model("sudoku")
    if not (sudoku / "model.safetensors").exists():
        pytest.skip("no shipped sudoku model")
    found = []
    for run, split in ((run_dir, "8"), (sudoku, "easy")):
        args = ["eval", run, "--split", split, "--n", "2", "--max-iters", "2", "--json", "--quiet", "--out", tmp_path / split]
        assert cli.main([str(a) for a in args]) == 0
        found.append(json.loads(capsys.readouterr().out))
    ps, sd = found
    assert ps.keys() == sd.keys()
    (a,), (b,) = ps["results"], sd["results"]
    assert (a["split"], b["split"]) == ("8", "easy")
    assert set(a) < set(b)  # the same fields, and sudoku's other metrics
    assert all(k.startswith("best_") or k.endswith("_by_iteration") for k in set(b) - set(a))


def test_solve_one_input_and_a_file(run_dir, tmp_path):
    proc = looped("solve", "prefix-sums", "0110101", "--model", run_dir)
    assert proc.returncode == 0, proc.stderr
    answer = proc.stdout.split()[0]
    assert len(answer) == 7 and set(answer) <= {"0", "1"}
    inputs = ["0110", "1", "111000111"]
    f = tmp_path / "in.txt"
    f.write_text("\n".join(inputs) + "\n")
    proc = looped("solve", "prefix-sums", "--file", f, "--model", run_dir)
    assert proc.returncode == 0, proc.stderr
    assert [len(a) for a in proc.stdout.split()] == [len(s) for s in inputs]


def test_shipped_model_solves_without_model_flag():
    shipped = runs.shipped_model("prefix-sums")
    if not (shipped / "model.safetensors").exists():
        pytest.skip("no shipped prefix-sums model")
    task = get_task("prefix-sums")
    batch = task.generate(task.split("48"), 3, seed=2024)
    lines = ["".join(map(str, row)) for row in batch.inputs.tolist()]
    proc = looped("solve", "prefix-sums", lines[0])
    assert proc.returncode == 0, proc.stderr
    expected = "".join(map(str, prefix_parity(batch.inputs[0]).tolist()))
    assert proc.stdout.split()[0] == expected


@pytest.mark.parametrize(
    "args",
    [
        ("solve", "prefix-sums", "01x1"),
        ("solve", "prefix-sums", ""),
        ("solve", "prefix-sums"),
        ("solve", "sudokuu", "0101"),
        ("solve", "prefix-sums", "0101", "--model", "/nonexistent/run"),
        ("solve", "prefix-sums", "--file", "/nonexistent/file.txt"),
        ("train", "--out", "/tmp/x", "--steps", "0"),
        ("train", "--out", "/tmp/x"),
        ("train", "--out", "/tmp/x", "--steps", "5", "--recall", "sideways"),
        ("train", "--out", "/tmp/x", "--steps", "5", "--bogus-flag"),
        ("eval", "/nonexistent/run"),
        ("train", "--out", "/tmp/x", "--steps", "5", "--device", "bogus"),
        ("train", "--out", "/tmp/x", "--steps", "5", "--device", "cuda:7"),
        ("train", "--out", "/tmp/x", "--steps", "5", "--seed", "-1"),
        ("train", "--out", "/tmp/x", "--steps", "5", "--augment"),  # prefix sums has no augmentation
        ("train", "--out", "/tmp/x", "--steps", "5", "--masked-loss"),  # nor a masked loss
        ("eval", "/nonexistent/run", "--split", "impossible"),
        ("frobnicate",),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args):
    assert_user_error(looped(*args))


def test_bad_line_in_a_file_names_the_line(run_dir, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("0101\n01a1\n")
    proc = looped("solve", "prefix-sums", "--file", f, "--model", run_dir)
    assert_user_error(proc)
    assert "line 2" in proc.stderr


def test_eval_rejects_a_bad_length(run_dir):
    assert_user_error(looped("eval", run_dir, "--split", "32,abc", "--max-iters", "2"))


def test_eval_refuses_work_beyond_the_limit_up_front(run_dir):
    proc = looped("eval", run_dir, "--split", "100000", "--n", "100000", "--max-iters", "1000")
    assert_user_error(proc)
    assert "LOOPED_MAX_ELEMENTS" in proc.stderr


def test_resuming_a_directory_without_training_state_is_refused(run_dir, tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    cfg = json.loads((run_dir / "config.json").read_text())
    del cfg["train"]
    (shipped / "config.json").write_text(json.dumps(cfg))
    shutil.copy(run_dir / "model.safetensors", shipped)
    assert_user_error(looped("train", "--out", shipped, "--resume", "--steps", "3"))


def test_config_with_wrong_types_is_refused(run_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["d_model"] = "abc"
    (bad / "config.json").write_text(json.dumps(cfg))
    assert_user_error(looped("solve", "prefix-sums", "0101", "--model", bad))
    assert_user_error(looped("train", "--out", bad, "--resume", "--steps", "8"))


def test_corrupt_checkpoint_is_refused(run_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((run_dir / "config.json").read_text())
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    assert_user_error(looped("solve", "prefix-sums", "0101", "--model", bad))
    (bad / "config.json").write_text("{not json")
    assert_user_error(looped("solve", "prefix-sums", "0101", "--model", bad))


def test_existing_run_is_not_overwritten(run_dir):
    before = (run_dir / "model.safetensors").read_bytes()
    assert_user_error(looped("train", "--out", run_dir, "--steps", "2"))
    assert (run_dir / "model.safetensors").read_bytes() == before


def test_analyze_writes_verdicts_json_markdown_and_plots(run_dir, tmp_path):
    proc = looped("analyze", run_dir, "--n", "4", "--max-iter", "60", "--out", tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["verdicts"]) == {"reachable", "input_dependent", "smooth_and_backprop_stable"}
    verdict_lines = [ln for ln in proc.stderr.splitlines() if ln.split("?")[0] in
                     ("reachable", "input-dependent", "smooth and backprop-stable")]
    assert len(verdict_lines) == 3
    assert proc.stderr.splitlines()[0].startswith("attractors of 4 examples")  # the class shares come first
    assert f"analysis written to {tmp_path}" in proc.stderr
    assert "Warning" not in proc.stderr  # no library warning (torch.jit and the like) leaks to the user
    for name in ("analysis.json", "analysis.md", "residuals.png", "multiplier.png", "sensitivity.png"):
        assert (tmp_path / name).stat().st_size > 0
    text = (tmp_path / "analysis.json").read_text()
    assert "NaN" not in text and "Infinity" not in text


def test_a_reader_that_leaves_early_gets_no_error_message():
    proc = subprocess.Popen([sys.executable, "-m", "looped", "solve", "prefix-sums", "0110" * 64],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # as `| head` does before the answer is written
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == "", err


def test_eval_progress_names_its_unit(run_dir, tmp_path):
    proc = looped("eval", run_dir, "--split", "8", "--n", "4", "--max-iters", "3", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "example-iterations" in proc.stderr and "Warning" not in proc.stderr


def test_analyze_rejects_bad_arguments(run_dir):
    assert_user_error(looped("analyze", run_dir, "--n", "0"))
    assert_user_error(looped("analyze", run_dir, "--split", "banana"))


@pytest.fixture(scope="module")
def sudoku_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sudoku"
    proc = looped("train", "--task", "sudoku", "--steps", "3", "--out", out, "--d-model", "16", "--heads", "2",
                  "--train-iters", "3", "--batch-size", "4", "--augment", "--quiet", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    return out


def sudoku_puzzles(n):
    from looped.tasks.sudoku.task import build_set

    s = build_set("easy", n, seed=7, workers=1)
    return ["".join(str(d) for d in p) for p in s["puzzles"]]


def test_solve_sudoku_prints_grid_validity_and_iterations(sudoku_run, tmp_path):
    puzzle = sudoku_puzzles(1)[0].replace("0", ".")
    proc = looped("solve", "sudoku", puzzle, "--model", sudoku_run, "--max-iters", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 13 and lines[11] in ("valid: yes", "valid: no")
    assert lines[12].startswith("# iterations: ") and 1 <= int(lines[12].split()[-1]) <= 5
    puzzles = sudoku_puzzles(3)
    f = tmp_path / "in.txt"
    f.write_text("\n".join(puzzles) + "\n")
    proc = looped("solve", "sudoku", "--file", f, "--model", sudoku_run, "--max-iters", "5")
    assert proc.returncode == 0, proc.stderr
    answers = proc.stdout.split()
    assert len(answers) == 3 and all(len(a) == 81 and set(a) <= set("123456789") for a in answers)


@pytest.mark.parametrize(
    "puzzle",
    ["123", "1" * 82, "12345678x" + "0" * 72, "11" + "0" * 79, "12345678" + "0" * 17 + "9" + "0" * 55],
)
def test_bad_sudoku_gives_one_line_and_exit_2(sudoku_run, puzzle):
    assert_user_error(looped("solve", "sudoku", puzzle, "--model", sudoku_run))


def test_sudoku_model_refuses_other_tasks_input(sudoku_run):
    assert_user_error(looped("solve", "prefix-sums", "0101", "--model", sudoku_run))


@pytest.fixture(scope="module")
def chess_run(tmp_path_factory):
    from looped.tasks.chess.data import read_shards

    if not read_shards():
        pytest.skip("no generated chess puzzles shipped")
    out = tmp_path_factory.mktemp("runs") / "chess"
    proc = looped("train", "--task", "chess", "--steps", "3", "--out", out, "--d-model", "16", "--heads", "2",
                  "--train-iters", "2", "--batch-size", "4", "--quiet", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    return out


def test_solve_chess_prints_a_legal_move_in_uci_and_san(chess_run, tmp_path):
    import chess

    fens = ["6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1", "6k1/5ppp/8/8/8/8/r4PPP/6K1 b - - 0 1",
            "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"]
    proc = looped("solve", "chess", fens[1], "--model", chess_run, "--max-iters", "3")
    assert proc.returncode == 0, proc.stderr
    first, its = proc.stdout.splitlines()
    uci, san = first.removeprefix("move: ").split()
    board = chess.Board(fens[1])
    move = chess.Move.from_uci(uci)
    assert move in board.legal_moves and san == f"({board.san(move)})"
    assert its.startswith("# iterations: ")
    f = tmp_path / "fens.txt"
    f.write_text("\n".join(fens) + "\n")
    proc = looped("solve", "chess", "--file", f, "--model", chess_run, "--max-iters", "3")
    assert proc.returncode == 0, proc.stderr
    moves = proc.stdout.split()
    assert len(moves) == 3 and all(chess.Move.from_uci(m) in chess.Board(x).legal_moves for m, x in zip(moves, fens))


@pytest.mark.parametrize("fen", ["", "rnbqkbnr/pppppppp w", "8/8/8/8/8/8/8/8 w - - 0 1",
                                 "R5k1/5ppp/8/8/8/8/5PPP/6K1 b - - 0 1", "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"])
def test_bad_fen_gives_one_line_and_exit_2(fen):
    assert_user_error(looped("solve", "chess", fen, "--model", "models/no-such-model"))


def test_analyze_on_a_divergent_model_says_unreachable_without_nan(tmp_path):
    out = tmp_path / "div"
    proc = looped("train", "--task", "prefix-sums", "--steps", "1", "--out", out, "--d-model", "16", "--heads", "2",
                  "--recall", "input", "--outer-norm", "none", "--init-scale", "50", "--quiet", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    proc = looped("analyze", out, "--split", "8", "--n", "2", "--max-iter", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in the analysis JSON"))
    assert result["verdicts"]["reachable"] is False
    assert "reachable? no" in proc.stderr and "nan" not in proc.stderr.lower()
    growth = result["reachability"]["state_norm_growth_median"]
    assert growth is None or growth > 10  # the state blows up without outer norm


def test_every_config_field_has_a_train_flag_defaulting_to_the_dataclass():
    from dataclasses import fields

    from looped import cli
    from looped.dtnet import DTNetConfig
    from looped.model import LoopedConfig
    from looped.config import TrainConfig

    args = cli.build_parser().parse_args(["train", "--out", "x"])
    for prefix, cls in (("train", TrainConfig), ("model", LoopedConfig), ("model", DTNetConfig)):
        for f in fields(cls):
            assert getattr(args, f"{prefix}.{f.name}") is None, f.name  # None: the dataclass default applies
    assert cli.given(args, "train") == {} and cli.given(args, "model") == {}


def test_train_flags_reach_the_run_config(tmp_path, capsys):
    from looped import cli

    out = tmp_path / "r"
    assert cli.main(["train", "--out", str(out), "--steps", "2", "--batch-size", "4", "--train-iters", "2",
                     "--d-model", "8", "--heads", "2", "--mlp-ratio", "2", "--grad-clip", "0.5",
                     "--min-lr-ratio", "0.2", "--eval-size", "3", "--train-splits", "8,16", "--no-causal",
                     "--layers-per-loop", "2", "--quiet", "--device", "cpu"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert {k: cfg["train"][k] for k in ("grad_clip", "min_lr_ratio", "eval_size", "train_splits", "lr")} == {
        "grad_clip": 0.5, "min_lr_ratio": 0.2, "eval_size": 3, "train_splits": ["8", "16"], "lr": 2e-3}
    assert {k: cfg["model"][k] for k in ("mlp_ratio", "causal", "n_heads", "layers_per_loop", "window")} == {
        "mlp_ratio": 2, "causal": False, "n_heads": 2, "layers_per_loop": 2, "window": 4}
    assert "task" not in cfg["train"] and cfg["task"] == "prefix-sums"
    out = tmp_path / "dt"
    assert cli.main(["train", "--arch", "dtnet", "--width", "8", "--blocks", "1", "--out", str(out), "--steps", "1",
                     "--batch-size", "2", "--train-iters", "2", "--quiet", "--device", "cpu"]) == 0
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["width"], model["blocks"]) == (8, 1)


def test_a_flag_of_another_architecture_is_refused(tmp_path):
    proc = looped("train", "--arch", "dtnet", "--recall", "none", "--steps", "1", "--out", tmp_path / "r")
    assert_user_error(proc)
    assert "--recall does not apply to --arch dtnet" in proc.stderr and not (tmp_path / "r").exists()


# -- what a new user meets (streams, messages, defaults) ------------------------------------------------------

def test_results_go_to_stdout_and_progress_and_logs_to_stderr(run_dir, tmp_path):
    proc = looped("eval", run_dir, "--split", "8", "--n", "10", "--max-iters", "3", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["split", "n", "best_it"]  # the table, on stdout
    assert f"eval written to {tmp_path}" in proc.stderr and "best_it" not in proc.stderr
    proc = looped("eval", run_dir, "--split", "8", "--n", "10", "--max-iters", "3", "--json", "--out", tmp_path)
    assert json.loads(proc.stdout)["results"][0]["n"] == 10  # nothing but the JSON on stdout
    assert "Warning" not in proc.stderr and "warn(" not in proc.stderr


def test_eval_warns_once_per_split_when_accuracy_still_rises_at_the_cap(tmp_path):
    from looped.evaluation import Curve, still_rising

    rising = Curve("512", [0.1 * t for t in range(1, 11)], [0.0] * 10, torch.zeros(3))
    flat = Curve("32", [0.5] * 10, [0.0] * 10, torch.zeros(3))
    assert still_rising(rising) and not still_rising(flat)
    shipped = runs.shipped_model("prefix-sums")
    proc = looped("eval", shipped, "--split", "64,128", "--n", "20", "--max-iters", "24", "--out", tmp_path)
    warnings = [ln for ln in proc.stderr.splitlines() if "still rising" in ln]
    assert proc.returncode == 0 and len(warnings) == 1 and "split 64" in warnings[0] and "--max-iters 24" in warnings[0]


def test_an_existing_run_is_refused_in_the_words_of_each_interface(run_dir):
    import looped as api

    proc = looped("train", "--out", run_dir, "--steps", "2", "--quiet")
    assert_user_error(proc)
    assert "--resume" in proc.stderr and "--out" in proc.stderr
    with pytest.raises(runs.RunError, match=r"looped\.resume") as err:
        api.train("prefix-sums", run_dir, api.TrainConfig(steps=2), progress=False)
    assert "--resume" not in str(err.value)


def test_a_moved_data_folder_names_the_data_flag(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, n in (("train", 4), ("long", 8)):
        rows = [json.dumps({"input": "01" * (n // 2), "target": "10" * (n // 2)}) for _ in range(6)]
        (data / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert looped("train", "--task", "sequences", "--data", data, "--steps", "2", "--d-model", "8", "--heads", "2",
                  "--train-iters", "2", "--batch-size", "4", "--out", out, "--quiet").returncode == 0
    shutil.move(data, tmp_path / "moved")
    proc = looped("eval", out, "--split", "long", "--max-iters", "2", "--quiet")
    assert_user_error(proc)
    assert "long.jsonl is missing" in proc.stderr and "--data DIR" in proc.stderr
    assert looped("eval", out, "--split", "long", "--max-iters", "2", "--quiet", "--data",
                  tmp_path / "moved").returncode == 0


def test_a_byte_order_mark_and_crlf_line_ends_are_read_as_text(run_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = "\r\n".join(json.dumps({"input": "0110", "target": "0100"}) for _ in range(5))
    (data / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + rows.encode() + b"\r\n")
    from looped.tasks import get_task

    task = get_task("sequences", data)
    assert task.vocab_size == 2 and task.split("train").difficulty == 4
    inputs = tmp_path / "inputs.txt"
    inputs.write_bytes(b"\xef\xbb\xbf0110\r\n1011\r\n")
    proc = looped("solve", "prefix-sums", "--file", inputs, "--model", run_dir, "--max-iters", "3")
    assert proc.returncode == 0, proc.stderr
    assert [len(ln) for ln in proc.stdout.split()] == [4, 4]


def test_help_shows_each_default_as_it_applies_to_the_task():
    out = looped("train", "--task", "sequences", "--help").stdout
    causal = out[out.index("--causal, --no-causal"):].split("--position-sizes")[0]
    assert "(default: off)" in " ".join(causal.split())
    out = looped("train", "--task", "prefix-sums", "--help").stdout
    causal = out[out.index("--causal, --no-causal"):].split("--position-sizes")[0]
    assert "(default: on)" in " ".join(causal.split())
    assert "(default: 1000)" in " ".join(looped("eval", "--help").stdout.split())


def test_batched_solving_gives_the_answers_and_iterations_of_one_at_a_time():
    from looped import solve

    model, task, _ = runs.load_model(runs.shipped_model("sudoku"))
    from looped.tasks.sudoku.task import puzzle_set

    texts = ["".join(map(str, p)) for tier in ("easy", "hardest", "search") for p in puzzle_set(tier, 8, seed=5)["puzzles"]]
    together = solve(model, task, texts, batch_size=16)
    alone = [solve(model, task, [t])[0] for t in texts]
    assert [(a.answer, a.iterations) for a in together] == [(a.answer, a.iterations) for a in alone]
    assert len({a.iterations for a in alone}) > 3  # inputs halt at different steps
