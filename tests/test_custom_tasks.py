"""Bring your own task: a Task subclass defined here, and JSONL data files, through the CLI and the Python API."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import looped
from looped import Batch, Task, cli
from looped.tasks import InputError, get_task, task_from_record, task_record

ROOT = Path(__file__).resolve().parent.parent
TINY = {"d_model": 16, "n_heads": 2}
TINY_FLAGS = ["--d-model", "16", "--heads", "2", "--train-iters", "4", "--batch-size", "32", "--warmup-steps", "5",
              "--eval-every", "20", "--checkpoint-every", "40", "--quiet", "--device", "cpu"]


class Successor(Task):
    """Each digit d of 0-2 becomes (d + 1) mod 3. The whole task: everything else is a default."""

    name = "test-successor"
    vocab_size = num_classes = 3
    train_splits = ("8",)
    eval_splits = ("8", "16")

    def generate(self, split, n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(0, 3, (n, split.difficulty), generator=g)
        return Batch(x, (x + 1) % 3)


def looped_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)])}
    return subprocess.run([sys.executable, "-m", "looped", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def in_process(capsys, *args):
    """``looped ARGS`` in this process (fast, for refusals): a CompletedProcess-like result."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def assert_user_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def successor(text: str) -> str:
    return "".join(str((int(c) + 1) % 3) for c in text)


def small_config(steps=40):
    return looped.TrainConfig(steps=steps, warmup_steps=5, batch_size=32, train_iters=4, eval_every=20,
                              checkpoint_every=40, device="cpu")


# ------------------------------------------------------------------ a task class, by import path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "run"
    proc = looped_cli("train", "--task", f"{__name__}:Successor", "--steps", "40", "--out", out, *TINY_FLAGS)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_task_class_trains_evaluates_and_solves_through_the_cli(cli_run, tmp_path):
    config = json.loads((cli_run / "config.json").read_text())
    assert config["task"] == "test-successor" and config["task_class"] == f"{__name__}:Successor"
    proc = looped_cli("eval", cli_run, "--split", "16", "--n", "64", "--max-iters", "4", "--json", "--quiet",
                      "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["split"] == "16" and result["best_accuracy"] > 0.9  # chance is 3^-16
    proc = looped_cli("solve", f"{__name__}:Successor", "0122", "--model", cli_run, "--max-iters", "4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == successor("0122")

def test_resume_finds_the_task_class_again(cli_run, tmp_path, capsys):
    shutil.copytree(cli_run, tmp_path / "run")
    assert in_process(capsys, "train", "--out", tmp_path / "run", "--resume", "--steps", "42", "--quiet").returncode == 0
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 42


def test_the_cli_and_the_python_api_give_the_same_curve_by_default_and_with_halting_off(cli_run, tmp_path):
    model, task, _ = looped.load(cli_run)
    for off in (False, True):
        flags = ["--halting", "off"] if off else []
        proc = looped_cli("eval", cli_run, "--split", "8,16", "--max-iters", "3", *flags, "--json", "--quiet",
                          "--out", tmp_path)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        by_cli = [[r["accuracy_by_iteration"][str(t)] for t in (1, 2, 3)] for r in out["results"]]
        kwargs = {"halting": None} if off else {}
        curves = looped.evaluate(model, task, ["8", "16"], max_iters=3, **kwargs)  # the same defaults: n, halting
        assert [c.accuracy for c in curves] == by_cli and out["results"][0]["n"] == looped.evaluation.EVAL_N


def test_a_task_class_trains_evaluates_solves_and_analyzes_through_the_api(tmp_path):
    looped.register(Successor)
    run = looped.train(Successor, tmp_path / "run", small_config(),
                       looped.model_config(Successor(), overrides=TINY), progress=False)
    model, task, config = looped.load(run)
    assert isinstance(task, Successor) and config.task is task and config.to_dict()["task"] == "test-successor"
    (curve,) = looped.evaluate(model, task, "16", max_iters=4, n=64)
    assert curve.n == 64 and len(curve.accuracy) == 4 and max(curve.accuracy) > 0.9
    answers = looped.solve(model, task, ["0122", "210"], max_iters=4)
    assert [a.answer for a in answers] == [successor("0122"), successor("210")]
    report = looped.analyze(model, task, n=2, max_iter=20)
    assert report["task"] == "test-successor" and report["n"] == 2
    assert next(model.parameters()).dtype == torch.float32  # analyze works on a copy
    proc = looped_cli("solve", "test-successor", "2201", "--model", run, "--max-iters", "4")  # a new process
    assert proc.returncode == 0, proc.stderr  # finds the class again from the run's import path
    assert proc.stdout.splitlines()[0] == successor("2201")


def test_the_minimal_task_gets_default_splits_parse_and_decode():
    task = Successor()
    assert task.split("16").difficulty == 16 and task.split("100").difficulty == 100
    assert task.input_length(task.split("12")) == 12
    assert task.parse("0210").tolist() == [0, 2, 1, 0]
    logits = torch.nn.functional.one_hot(torch.tensor([2, 0, 1]), 3).float()
    assert task.decode("012", task.parse("012"), logits) == "201"
    for bad in ("", "0130", "ab"):
        with pytest.raises(InputError):
            task.parse(bad)
    with pytest.raises(InputError):
        task.split("easy")


class NotATask:
    name = "nope"


class Abstract(Task):
    name = "abstract"


class NoVocabulary(Task):
    name = "no-vocab"
    num_classes = 2
    train_splits = eval_splits = ("8",)

    def generate(self, split, n, seed):
        raise AssertionError("never called")


@pytest.mark.parametrize("path, words", [
    ("no_such_module_for_looped:Task", ["cannot import", "no_such_module_for_looped"]),
    (f"{__name__}:Missing", ["no attribute", "Missing"]),
    (f"{__name__}:NotATask", ["not a Task subclass"]),
    (f"{__name__}:successor", ["not a Task subclass"]),
    (f"{__name__}:Abstract", ["does not implement", "generate"]),
    (f"{__name__}:NoVocabulary", ["lacks the attribute", "vocab_size"]),
    ("no-such-task", ["unknown task"]),
    (":Successor", ["package.module:ClassName"]),
])
def test_bad_task_paths_are_refused_before_anything_is_written(tmp_path, capsys, path, words):
    out = tmp_path / "run"
    assert_user_error(in_process(capsys, "train", "--task", path, "--steps", "2", "--out", out, *TINY_FLAGS), *words)
    assert not out.exists()


def test_register_refuses_a_taken_name_and_non_tasks():
    with pytest.raises(InputError):
        looped.register(NotATask)

    class Clash(Successor):
        name = "prefix-sums"

    with pytest.raises(InputError):
        looped.register(Clash)


# ------------------------------------------------------------------ your own data, no code


def write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def mapping_rows(rng, length, n, table="abc", out="xyz"):
    rows = []
    for _ in range(n):
        s = "".join(rng.choice(list(table)) for _ in range(length))
        rows.append({"input": s, "target": s.translate(str.maketrans(table, out))})
    return rows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    import random

    rng = random.Random(0)
    d = tmp_path_factory.mktemp("data")
    write_jsonl(d / "train.jsonl", mapping_rows(rng, 6, 200))
    write_jsonl(d / "test.jsonl", mapping_rows(rng, 12, 40))
    return d


def test_sequences_from_files_train_evaluate_and_solve_through_the_cli(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    proc = looped_cli("train", "--task", "sequences", "--data", data_dir, "--steps", "40", "--out", run, *TINY_FLAGS)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((run / "config.json").read_text())["task_config"]
    assert saved["symbols"] == ["a", "b", "c"] and saved["classes"] == ["x", "y", "z"]
    assert saved["splits"] == {"test": 12, "train": 6}
    proc = looped_cli("eval", run, "--split", "test", "--max-iters", "4", "--json", "--quiet", "--out", tmp_path / "e")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["split"] == "test" and result["n"] == 40 and result["best_accuracy"] > 0.9
    proc = looped_cli("solve", "sequences", "abcca", "--model", run, "--max-iters", "4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "xyzzx"
    assert_user_error(in_process(capsys, "solve", "sequences", "abd", "--model", run), "unknown symbol", "'d'")
    # a split file edited after training, with a symbol the run never saw: named by file and line
    write_jsonl(data_dir / "late.jsonl", [{"input": "aa", "target": "xx"}, {"input": "aq", "target": "xx"}])
    try:
        assert_user_error(in_process(capsys, "eval", run, "--split", "late", "--quiet", "--out", tmp_path / "f"),
                          "late.jsonl:2", "unknown input symbol")
    finally:
        (data_dir / "late.jsonl").unlink()
    assert not (tmp_path / "f" / "eval.json").exists()
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    proc = in_process(capsys, "eval", run, "--split", "test", "--max-iters", "2", "--n", "5", "--data", moved,
                      "--json", "--quiet", "--out", tmp_path / "g")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["n"] == 5
    assert_user_error(in_process(capsys, "eval", run, "--data", tmp_path / "nowhere", "--quiet"), "does not exist")


def test_integer_sequences_through_the_api(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    g = torch.Generator().manual_seed(0)
    for name, length in (("train", 5), ("long", 20)):
        x = torch.randint(0, 3, (100, length), generator=g)
        write_jsonl(d / f"{name}.jsonl", [{"input": r, "target": [10 * v for v in r]} for r in x.tolist()])
    run = looped.train("sequences", tmp_path / "run", small_config(), data=d,
                       model=looped.model_config(get_task("sequences", d), overrides=TINY), progress=False)
    model, task, _ = looped.load(run)
    assert task.eval_splits == ("train", "long") and task.classes == [0, 10, 20]
    (curve,) = looped.evaluate(model, task, "long", max_iters=4)
    assert curve.n == 100 and max(curve.accuracy) > 0.9
    assert looped.solve(model, task, ["[2, 0, 1]"], max_iters=4)[0].answer == "[20, 0, 10]"


def test_a_saved_sequences_task_rebuilds_without_reading_its_files(data_dir):
    task = get_task("sequences", data_dir)
    again = task_from_record(task_record(task))
    assert again.symbols == task.symbols and again.eval_splits == ("train", "test")
    assert again.parse("cab").tolist() == [2, 0, 1]


def test_shipped_tasks_are_recorded_by_name_so_their_modules_can_move():
    for name in ("prefix-sums", "sudoku", "chess"):
        record = task_record(get_task(name))
        assert record["task"] == name and "task_class" not in record
        assert type(task_from_record(record)) is type(get_task(name))
    configs = [json.loads(p.read_text()) for d in ("looped/models", "docs", "lab")
               for p in sorted((ROOT / d).rglob("config.json"))]
    runs = [c for c in configs if "task" in c and "model" in c]
    assert len(runs) >= 3  # the shipped models at least
    for config in runs:  # every committed run config names its task so that it loads today
        assert not str(config.get("task_class", "")).startswith("looped."), config["task_class"]
        assert task_from_record(config).name == config["task"]


@pytest.mark.parametrize("content, words", [
    ('{"input": "ab", "target": "x"}\n', ["train.jsonl:1", "equal"]),
    ('{"input": "ab", "target": "xy"}\nnot json\n', ["train.jsonl:2", "not a JSON line"]),
    ("", ["train.jsonl", "empty file"]),
    ("\n\n", ["train.jsonl", "empty file"]),
    ('{"input": "ab", "target": "xy"}\n{"input": "abc", "target": "xyz"}\n', ["train.jsonl:2", "one length per file"]),
    ('{"input": [1, 2], "target": "xy"}\n', ["train.jsonl:1", "both be strings or both lists"]),
    ('{"input": "ab", "target": "xy", "extra": 1}\n', ["train.jsonl:1", "keys"]),
    ('{"input": "", "target": ""}\n', ["train.jsonl:1", "empty input"]),
])
def test_bad_data_files_are_refused_by_file_and_line_and_nothing_is_written(tmp_path, capsys, content, words):
    d = tmp_path / "data"
    d.mkdir()
    (d / "train.jsonl").write_text(content)
    out = tmp_path / "run"
    assert_user_error(in_process(capsys, "train", "--task", "sequences", "--data", d, "--steps", "2", "--out", out,
                                 *TINY_FLAGS), *words)
    assert not out.exists()


def test_an_eval_file_with_symbols_outside_the_training_vocabulary_is_refused_at_train_time(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write_jsonl(d / "train.jsonl", [{"input": "ab", "target": "xy"}])
    write_jsonl(d / "test.jsonl", [{"input": "abab", "target": "xyxy"}, {"input": "abcd", "target": "xyxy"}])
    with pytest.raises(InputError, match=r"test.jsonl:2: unknown input symbol 'c'"):
        get_task("sequences", d)


def test_sequences_needs_a_data_directory(tmp_path):
    for data in (None, tmp_path / "absent", tmp_path):
        with pytest.raises(InputError):
            get_task("sequences", data)
    with pytest.raises(InputError, match="reads no files"):
        get_task("prefix-sums", tmp_path)
