"""The ``looped`` command line: train, eval, solve, analyze, reproduce.

Bad input of any kind ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
import typing
from dataclasses import fields
from pathlib import Path

from . import analysis
from .config import ARCHITECTURES, DEFAULT_ARCH, LoopedError, TrainConfig
from .evaluation import EVAL_N, Halting
from .runs import Run
from .tasks import TASKS, InputError

USER_ERRORS = (LoopedError, FloatingPointError, OSError)


TASK_HELP = f"a task name ({', '.join(TASKS)}) or package.module:ClassName (a Task subclass)"


class UsageError(Exception):
    """Command-line usage is wrong."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def csv_list(text: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def build_parser() -> Parser:
    p = Parser(prog="looped", description="Looped transformers: train, evaluate, solve, analyze.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a looped transformer")
    t.add_argument("--task", default="prefix-sums", help=TASK_HELP)
    t.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="data directory of a task that reads files (sequences: train.jsonl and <split>.jsonl)")
    t.add_argument("--out", type=Path, required=True, help="run directory")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (only the budget applies)")
    t.add_argument("--arch", choices=tuple(ARCHITECTURES), default=DEFAULT_ARCH,
                   help="looped: the looped transformer; dtnet: the DeepThinking DT-net baseline (1D tasks)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    seen: set[str] = set()
    training = t.add_argument_group("training")
    add_config_flags(training, TrainConfig, "train", seen, training.add_mutually_exclusive_group())
    for arch, cls in ARCHITECTURES.items():
        add_config_flags(t.add_argument_group(f"model, --arch {arch} (default: the task's, else the value shown)"),
                         cls, "model", seen)

    e = sub.add_parser("eval", help="accuracy and residual at every iteration")
    e.add_argument("run", type=Path)
    e.add_argument("--split", type=csv_list, default=None,
                   help="comma-separated split names, e.g. 32,512 or easy,hardest (default: the task's eval splits)")
    e.add_argument("--max-iters", type=int, default=None, help="default: 4x the training depth")
    e.add_argument("--n", type=int, default=EVAL_N, help="examples per split")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", type=Path, default=None, help="where to write eval.json/eval.png (default RUN/eval)")
    e.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="the task's data directory, if it moved since training (default: the one the run records)")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--compile", action="store_true", help="torch.compile the loop step (faster long evals)")
    add_halting(e, "off: every example runs --max-iters (accuracy at each fixed iteration)")
    e.add_argument("--device", default="auto")
    e.add_argument("--quiet", action="store_true")

    a = sub.add_parser("analyze", help="fixed-point stability: reachability, input-dependence, geometry")
    a.add_argument("run", type=Path)
    a.add_argument("--split", default=None, help="default: the task's training split")
    a.add_argument("--n", type=int, default=analysis.N_EXAMPLES, help="examples to analyze (default: %(default)s)")
    a.add_argument("--max-iter", type=int, default=analysis.MAX_ITER, help="iterations at most (default: %(default)s)")
    a.add_argument("--tol", type=float, default=analysis.TOL,
                   help="relative-residual tolerance of the solver (default: %(default)s)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", type=Path, default=None, help="default: RUN/analysis")
    a.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    a.add_argument("--device", default="auto")

    r = sub.add_parser("reproduce", help="rerun the paper's study and judge its claims (resumable)")
    r.add_argument("--budget", choices=("smoke", "cpu", "gpu"), default="smoke",
                   help="smoke: minutes; cpu: about 10.5 hours on 2 cores; gpu: paper scale on one GPU")
    r.add_argument("--out", type=Path, required=True, help="output folder; rerun the same command to resume")
    r.add_argument("--workers", type=int, default=1, help="runs in parallel (processes)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("solve", help="solve your own input with a trained model")
    s.add_argument("task", help=TASK_HELP)
    s.add_argument("input", nargs="?", help="one input, e.g. a bit string")
    s.add_argument("--file", type=Path, help="one input per line; prints one answer per line")
    s.add_argument("--model", type=Path, default=None, help="run directory (default: the model shipped for TASK)")
    s.add_argument("--max-iters", type=int, default=None, help="default: 4 x length, at least 64")
    add_halting(s, "off: run --max-iters")
    s.add_argument("--device", default="auto")
    return p


def add_config_flags(p, cls, prefix: str, seen: set[str], budget=None) -> None:
    """One flag per field of the config dataclass ``cls``, dest ``prefix.field``, default None (so the
    dataclass default applies), help from the field's doc. Dests in ``seen`` are skipped (shared fields).
    ``budget``: the mutually exclusive group of ``steps`` and ``minutes``."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        dest = f"{prefix}.{f.name}"
        if dest in seen:
            continue
        seen.add(dest)
        flags = f.metadata.get("flags", (f"--{f.name.replace('_', '-')}",))
        kind = _plain(hints[f.name])
        shown = "" if f.default is None else f" (default: {_shown(f.default)})"
        kw = {"dest": dest, "default": None, "help": f.metadata.get("help", "") + shown}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = _parser_of(kind)
            kw["metavar"] = f.name.upper()
        if "choices" in f.metadata:
            kw["choices"], kw["metavar"] = f.metadata["choices"], None
        target = budget if budget is not None and f.name in ("steps", "minutes") else p
        target.add_argument(*flags, **kw)


def _plain(kind):
    """``int | None`` -> ``int``."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1 else kind


def _parser_of(kind):
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if item is str:
            return csv_list
        if item is int:
            return int_list
        return json_value
    return kind


def _shown(default) -> str:
    if isinstance(default, bool):
        return "on" if default else "off"
    return "none" if default == () else str(default)


def int_list(text: str) -> list[int]:
    try:
        return [int(s) for s in csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def json_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r}") from None


def given(args: argparse.Namespace, prefix: str) -> dict:
    """The config fields under ``prefix`` given on the command line."""
    return {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith(f"{prefix}.") and v is not None}


def add_halting(p: argparse.ArgumentParser, off: str) -> None:
    p.add_argument("--halting", choices=("on", "off"), default="on",
                   help=f"on (default): each input stops once it halts; {off}")
    p.add_argument("--tol", type=float, default=Halting.tol, help="halt once the relative residual is below this")
    p.add_argument("--patience", type=int, default=Halting.patience,
                   help="or once the prediction is unchanged this many steps")


def halting_of(args: argparse.Namespace) -> Halting | None:
    halting = Halting(tol=args.tol, patience=args.patience)  # validates both even when off
    return halting if args.halting == "on" else None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(str(err), file=sys.stderr)
    except USER_ERRORS as err:
        print(f"looped: error: {getattr(err, 'cli', None) or err}", file=sys.stderr)
    except KeyboardInterrupt:
        print("looped: interrupted", file=sys.stderr)
        return 130
    return 2


def cmd_train(args: argparse.Namespace) -> int:
    from .tasks import get_task
    from .config import model_config
    from .training import resume, train

    train_cfg = TrainConfig(**given(args, "train"))  # validates the flags, and on --resume the new budget
    if args.resume:
        out = resume(args.out, steps=train_cfg.steps, minutes=train_cfg.minutes, progress=not args.quiet)
    else:
        overrides = given(args, "model")
        foreign = sorted(set(overrides) - {f.name for f in fields(ARCHITECTURES[args.arch])})
        if foreign:
            raise UsageError(f"looped train: --{foreign[0].replace('_', '-')} does not apply to --arch {args.arch}")
        task = get_task(args.task, args.data)
        out = train(task, args.out, train_cfg, model_config(task, args.arch, overrides), progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # torchrun: only the main process reports
        print(f"run saved to {out}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_run

    result = evaluate_run(
        args.run, splits=args.split, n=args.n, max_iters=args.max_iters, seed=args.seed,
        out=args.out, device=args.device, progress=not args.quiet, compile=args.compile, halting=halting_of(args),
        data=args.data,
    )
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_run, verdict_lines, write_report

    result = analyze_run(args.run, args.split, args.n, args.max_iter, args.tol, args.seed, args.device)
    out = args.out if args.out is not None else Run(args.run).folder("analysis")
    write_report(result, out)
    for line in verdict_lines(result):
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from .solving import solve_command

    if (args.input is None) == (args.file is None):
        raise UsageError("looped solve: give exactly one of INPUT or --file F")
    if args.file is not None:
        if not args.file.is_file():
            raise InputError(f"cannot read {args.file}: no such file")
        try:
            lines = [ln for ln in args.file.read_text().splitlines() if ln.strip()]
        except UnicodeDecodeError:
            raise InputError(f"{args.file} is not a text file") from None
    else:
        lines = [args.input]
    halting = halting_of(args)
    for line in solve_command(args.task, lines, args.model, args.max_iters, halting, args.device, args.file is None):
        print(line)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    if args.workers < 1:
        raise InputError(f"--workers must be positive, got {args.workers}")
    command = f"looped reproduce --budget {args.budget} --out {args.out}"
    verdicts = reproduce(args.budget, args.out, workers=args.workers, progress=not args.quiet, command=command)
    for v in verdicts:
        print(f"{v.claim} {v.verdict}: {v.evidence}")
    print(f"report: {args.out / 'REPORT.md'}", file=sys.stderr)
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "analyze": cmd_analyze, "solve": cmd_solve, "reproduce": cmd_reproduce}


if __name__ == "__main__":
    sys.exit(main())
