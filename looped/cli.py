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
import warnings
from dataclasses import fields
from pathlib import Path

from . import analysis, stability
from .config import ARCHITECTURES, DEFAULT_ARCH, LoopedError, TrainConfig
from .presets import PRESETS, preset
from .breadth import SELECT, VARY, WEIGHTS, Breadth
from .evaluation import EVAL_N, Halting
from .runs import Run
from .tasks import TASKS, InputError, task_class

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


def build_parser(argv: list[str] | None = None) -> Parser:
    """The parser; ``argv`` (the command line, when known) makes ``looped train --help`` show each default
    as it applies to the ``--task`` and ``--preset`` given."""
    p = Parser(prog="looped", description="Looped transformers: train, evaluate, solve, analyze.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a looped transformer")
    t.add_argument("--task", default="prefix-sums", help=TASK_HELP)
    t.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="data directory of a task that reads files (sequences: train.jsonl and <split>.jsonl)")
    t.add_argument("--out", type=Path, required=True, help="run directory")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (only the budget applies)")
    t.add_argument("--arch", choices=tuple(ARCHITECTURES), default=None,
                   help="looped: this project's looped transformer (default); paper: the paper's block; dtnet: the "
                        "DeepThinking DT-net baseline (1D tasks)")
    t.add_argument("--preset", choices=PRESETS, default=None,
                   help="paper: the paper's recipe for the task (--arch paper, width 256, 8 heads, 30 iterations, "
                        "batch 500, lr 1e-3, step decay, 100 epochs); paper-cpu: the same at width 64, batch 64 and "
                        "2,000-3,000 steps, for a 2-core CPU. Flags given beside it override it")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    task_name, model_shown, train_shown = shown_defaults(argv or [])
    for_task = f" for --task {task_name}" if task_name else ""
    training = t.add_argument_group(f"training (defaults{for_task}{' with the preset' if train_shown else ''})")
    add_config_flags(training, [TrainConfig], "train", training.add_mutually_exclusive_group(), train_shown)
    add_config_flags(t.add_argument_group(f"model (defaults{for_task or ' of the architecture'}, per --arch)"),
                     list(ARCHITECTURES.values()), "model", shown=model_shown)

    e = sub.add_parser("eval", help="accuracy and residual at every iteration")
    e.add_argument("run", type=Path)
    e.add_argument("--split", type=csv_list, default=None,
                   help="comma-separated split names, e.g. 32,512 or easy,hardest (default: the task's eval splits)")
    e.add_argument("--max-iters", type=int, default=None, help="default: 4x the training depth")
    e.add_argument("--n", type=int, default=EVAL_N, help="examples per split (default: %(default)s)")
    e.add_argument("--seed", type=int, default=0, help="which evaluation set (default: %(default)s)")
    e.add_argument("--out", type=Path, default=None, help="where to write eval.json/eval.png (default RUN/eval)")
    e.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="the task's data directory, if it moved since training (default: the one the run records)")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--compile", action="store_true", help="torch.compile the loop step (faster long evals)")
    add_halting(e, "off: every example runs --max-iters (accuracy at each fixed iteration)")
    add_breadth(e)
    e.add_argument("--device", default="auto")
    e.add_argument("--quiet", action="store_true")

    a = sub.add_parser("analyze", help="fixed-point stability: reachability, input-dependence, geometry")
    a.add_argument("run", type=Path)
    a.add_argument("--split", default=None, help="default: the task's training split")
    a.add_argument("--n", type=int, default=analysis.N_EXAMPLES, help="examples to analyze (default: %(default)s)")
    a.add_argument("--max-iter", type=int, default=analysis.MAX_ITER, help="iterations at most (default: %(default)s)")
    a.add_argument("--tol", type=float, default=analysis.TOL,
                   help="relative k-step residual that counts as settled (default: %(default)s)")
    a.add_argument("--max-period", type=int, default=stability.MAX_PERIOD,
                   help="the longest cycle looked for (default: %(default)s)")
    a.add_argument("--seed", type=int, default=0, help="which examples (default: %(default)s)")
    a.add_argument("--out", type=Path, default=None, help="default: RUN/analysis")
    a.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    a.add_argument("--device", default="auto")

    r = sub.add_parser("reproduce", help="rerun the paper's study and judge its claims (resumable jobs)")
    r.add_argument("--budget", choices=("smoke", "cpu-dev", "cpu", "gpu"), default="smoke",
                   help="smoke: minutes; cpu-dev: the development phase (seeds 0-2, the paper's learning rates; writes "
                        "DEVELOPMENT.md, no verdicts); cpu: "
                        "the held-out run on 2 cores; gpu: paper scale on one GPU (default: %(default)s)")
    r.add_argument("--out", type=Path, default=None, help="output folder (required but with --list); rerun the same "
                                                          "command to resume")
    r.add_argument("--workers", type=int, default=1, help="jobs in parallel (processes; default: %(default)s)")
    r.add_argument("--list", action="store_true", help="print the budget's job ids, one per line, and run nothing")
    r.add_argument("--only", type=csv_list, default=None, metavar="ID[,ID...]",
                   help="run only these jobs (skipped when done), then report on every finished job")
    r.add_argument("--report", action="store_true", help="run nothing; write the report from the finished jobs")
    r.add_argument("--development", type=Path, default=None, metavar="DEV_OUT",
                   help="a held-out report shows, for each task not learned, its easy accuracy along training in this "
                        "development output folder")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    m = sub.add_parser("import-paper", help="a run directory from a checkpoint of the paper's code, for eval, "
                                            "analyze and solve")
    m.add_argument("checkpoint", type=Path, help="the paper's checkpoint (torch.save with 'net', or a state dict; "
                                                 "or .safetensors)")
    m.add_argument("--config", type=Path, required=True, metavar="CONFIG.yaml",
                   help="its model config (the Hydra keys hidden_dim, injection_type, ...; or the whole Hydra config)")
    m.add_argument("--task", required=True, help="the task it was trained on (prefix-sums, sudoku, chess)")
    m.add_argument("--out", type=Path, required=True, help="the new run directory")

    s = sub.add_parser("solve", help="solve your own input with a trained model")
    s.add_argument("task", help=TASK_HELP)
    s.add_argument("input", nargs="?", help="one input, e.g. a bit string")
    s.add_argument("--file", type=Path, help="one input per line; prints one answer per line")
    s.add_argument("--model", type=Path, default=None, help="run directory (default: the model shipped for TASK)")
    s.add_argument("--max-iters", type=int, default=None, help="default: 4 x length, at least 64")
    add_halting(s, "off: run --max-iters")
    add_breadth(s)
    s.add_argument("--device", default="auto")
    return p


def shown_defaults(argv: list[str]) -> tuple[str | None, dict, dict]:
    """(task name, {architecture: {field: default}}, {field: default}) that ``looped train --help`` shows: the
    task's settings as each architecture takes them, and the preset's training values."""
    def value(flag):
        for i, a in enumerate(argv):
            if a == flag and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
        return None

    try:
        cls = task_class(value("--task") or "prefix-sums")
    except LoopedError:
        return None, {}, {}
    model = {name: {**arch.task_defaults(cls.model_settings),
                    **{k: getattr(cls, k) for k in ("vocab_size", "num_classes") if isinstance(getattr(cls, k, None), int)}}
             for name, arch in ARCHITECTURES.items()}
    train = {}
    if value("--preset") in PRESETS and cls.paper_recipe is not None:
        arch, model_over, train = preset(value("--preset"), cls)
        model[arch] = {**model[arch], **model_over}
    return cls.name, model, train


def add_config_flags(p, classes: list, prefix: str, budget=None, shown: dict | None = None) -> None:
    """One flag per field of the config dataclasses ``classes`` (a field several share gets one flag), dest
    ``prefix.field``, default None (so the dataclass default applies), help from the field's doc with each
    class's default, choices the union of theirs (each class checks its own). ``budget``: the mutually
    exclusive group of ``steps`` and ``minutes``. ``shown``: defaults to show instead of the dataclass's,
    by architecture name ({field: value}), or, for a single class, as {field: value}."""
    by_name: dict[str, list] = {}
    for cls in classes:
        for f in fields(cls):
            by_name.setdefault(f.name, []).append((cls, f))
    for name, owners in by_name.items():
        cls, f = owners[0]
        kind = _plain(typing.get_type_hints(cls)[name])
        helps = dict.fromkeys(g.metadata.get("help", "") for _, g in owners)
        kw = {"dest": f"{prefix}.{name}", "default": None, "help": "; ".join(helps) + _defaults(owners, shown or {})}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"], kw["metavar"] = _parser_of(kind), name.upper()
        choices = [c for _, g in owners for c in g.metadata.get("choices", ())]
        if choices:
            kw["choices"], kw["metavar"] = list(dict.fromkeys(choices)), None
        target = budget if budget is not None and name in ("steps", "minutes") else p
        target.add_argument(*f.metadata.get("flags", (f"--{name.replace('_', '-')}",)), **kw)


def _defaults(owners: list, shown: dict) -> str:
    """`` (default: X)``, or per architecture where they differ; ``shown`` overrides the dataclass defaults."""
    values = {}
    for cls, f in owners:
        arch = _arch_name(cls)
        override = shown.get(arch, shown) if arch in shown else (shown if len(owners) == 1 else {})
        default = override.get(f.name, f.default) if isinstance(override, dict) else f.default
        if default is not None:
            values[arch] = _shown(default)
    if not values:
        return ""
    if len(set(values.values())) == 1:
        return f" (default: {next(iter(values.values()))})"
    return " (default: " + ", ".join(f"{v} for {k}" for k, v in values.items()) + ")"


def _arch_name(cls) -> str:
    return next((name for name, c in ARCHITECTURES.items() if c is cls), cls.__name__)


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


def add_breadth(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("test-time compute in breadth")
    g.add_argument("--breadth", type=int, default=1, metavar="K",
                   help="trajectories per input, run as one batch (default: %(default)s)")
    g.add_argument("--select", choices=SELECT, default="verify",
                   help="verify: a trajectory the task's checker accepts (sudoku: a valid grid keeping the givens), "
                        "else a vote; vote: the answer most trajectories give (default: %(default)s)")
    g.add_argument("--vary", choices=VARY, default="views",
                   help="views: the task's symmetries (sudoku: digits, bands, stacks, rows, columns, transpose); "
                        "restarts: noise on the initial state (default: %(default)s)")
    g.add_argument("--vote-weight", choices=WEIGHTS, default="equal",
                   help="how votes count: equally, by confidence, or by final residual (default: %(default)s)")


def breadth_of(args: argparse.Namespace) -> Breadth:
    return Breadth(k=args.breadth, vary=args.vary, select=args.select, weight=args.vote_weight)


def halting_of(args: argparse.Namespace) -> Halting | None:
    halting = Halting(tol=args.tol, patience=args.patience)  # validates both even when off
    return halting if args.halting == "on" else None


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module=r"torch(\.|$)")  # PyTorch's own deprecation notices are not the user's
    try:
        args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(str(err), file=sys.stderr)
    except BrokenPipeError:  # the reader left (`looped solve ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
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

    if args.resume:
        if args.preset is not None:
            raise UsageError("looped train: --preset makes a new run; a resumed run keeps its recipe")
        train_cfg = TrainConfig(**given(args, "train"))  # validates the new budget
        out = resume(args.out, steps=train_cfg.steps, minutes=train_cfg.minutes, progress=not args.quiet)
    else:
        task = get_task(args.task, args.data)
        arch, model_over, train_over = recipe(args, task)
        foreign = sorted(set(model_over) - {f.name for f in fields(ARCHITECTURES[arch])})
        if foreign:
            raise UsageError(f"looped train: --{foreign[0].replace('_', '-')} does not apply to --arch {arch}")
        out = train(task, args.out, TrainConfig(**train_over), model_config(task, arch, model_over),
                    progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # torchrun: only the main process reports
        print(f"run saved to {out}", file=sys.stderr)
    return 0


def recipe(args: argparse.Namespace, task) -> tuple[str, dict, dict]:
    """(architecture, model overrides, training config values) of ``looped train``: the preset's, if any,
    under the flags given (a budget given replaces the preset's)."""
    arch, model_over, train_over = (args.arch or DEFAULT_ARCH), {}, {}
    flags = given(args, "train")
    if args.preset is not None:
        arch, model_over, train_over = preset(args.preset, task, flags.get("steps"))
        if args.arch not in (None, arch):
            raise UsageError(f"looped train: --preset {args.preset} trains --arch {arch}, not --arch {args.arch}")
        if "minutes" in flags:
            train_over.pop("steps")
    return arch, {**model_over, **given(args, "model")}, {**train_over, **flags}


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_run, still_rising, table

    result, curves, out = evaluate_run(
        args.run, splits=args.split, n=args.n, max_iters=args.max_iters, seed=args.seed,
        out=args.out, device=args.device, progress=not args.quiet, compile=args.compile, halting=halting_of(args),
        data=args.data, breadth=breadth_of(args),
    )
    print(json.dumps(result) if args.json else "\n".join(table(curves)))
    for c in curves:
        if still_rising(c):
            T = result["max_iters"]
            print(f"looped: warning: split {c.split}: accuracy still rising at --max-iters {T} "
                  f"({c.accuracy[-1 - max(1, T // 10)]:.4f} -> {c.accuracy[-1]:.4f} over the last {max(1, T // 10)} "
                  f"iterations); a larger --max-iters may help", file=sys.stderr)
    print(f"eval written to {out}", file=sys.stderr)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_run, verdict_lines, write_report

    result = analyze_run(args.run, args.split, args.n, args.max_iter, args.tol, args.seed, args.device,
                         max_period=args.max_period)
    out = args.out if args.out is not None else Run(args.run).folder("analysis")
    write_report(result, out)
    for line in verdict_lines(result):
        print(line, file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result))
    print(f"analysis written to {out}", file=sys.stderr)
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from .solving import solve_command

    if (args.input is None) == (args.file is None):
        raise UsageError("looped solve: give exactly one of INPUT or --file F")
    if args.file is not None:
        if not args.file.is_file():
            raise InputError(f"cannot read {args.file}: no such file")
        try:
            lines = [ln for ln in args.file.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
        except UnicodeDecodeError:
            raise InputError(f"{args.file} is not a text file") from None
    else:
        lines = [args.input]
    halting = halting_of(args)
    for line in solve_command(args.task, lines, args.model, args.max_iters, halting, args.device, args.file is None,
                              breadth_of(args)):
        print(line)
    return 0


def cmd_import_paper(args: argparse.Namespace) -> int:
    from .paper_checkpoint import import_paper

    out = import_paper(args.checkpoint, args.config, args.task, args.out)
    print(f"run saved to {out}", file=sys.stderr)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import BUDGETS, develop, job_ids, reproduce

    if args.workers < 1:
        raise InputError(f"--workers must be positive, got {args.workers}")
    if args.list:
        print("\n".join(job_ids(args.budget)))
        return 0
    if args.out is None:
        raise UsageError("looped reproduce: --out is required (but with --list)")
    how = dict(workers=args.workers, progress=not args.quiet, only=args.only, report_only=args.report)
    if BUDGETS[args.budget].development:
        if args.development is not None:
            raise UsageError("looped reproduce: --development goes with a held-out budget, not a development one")
        for task, c in develop(args.budget, args.out, **how).items():
            lr = "none yet" if c["chosen_lr"] is None else f"{c['chosen_lr']:g}"
            print(f"{task}: learning rate {lr} (jobs compared: {c['compared_on']}), "
                  f"{'learned' if c['learned'] else 'not learned'}")
        print(f"development report: {args.out / 'DEVELOPMENT.md'}", file=sys.stderr)
        return 0
    for v in reproduce(args.budget, args.out, development=args.development, **how):
        print(f"{v.claim} {v.verdict}: {v.evidence}")
    print(f"report: {args.out / 'REPORT.md'}", file=sys.stderr)
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "analyze": cmd_analyze, "solve": cmd_solve, "reproduce": cmd_reproduce,
            "import-paper": cmd_import_paper}


if __name__ == "__main__":
    sys.exit(main())
