"""``looped reproduce``: rerun the paper's study and judge each claim with numbers (rules v3).

    budgets.py      how big a reproduction is (smoke / cpu-dev / cpu / gpu)
    grid.py         the jobs (stable ids), and how one is trained, evaluated, analyzed and summarized
    claims.py       the verdicts C1-C6 (rules v3), computed from run records
    report.py       REPORT.md, summary.json and plots
    development.py  what a development budget chooses (learning rate, steps): DEVELOPMENT.md
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..tasks import InputError
from .budgets import BUDGETS, Budget
from .claims import Verdict, judge
from .development import DEVELOPMENT_JSON, DEVELOPMENT_PNG, write_development
from .grid import finished, jobs, run_all
from .report import write_report


def reproduce(budget: str | Budget, out: Path, workers: int = 1, progress: bool = True, command: str = "",
              only: list[str] | None = None, report_only: bool = False,
              development: Path | None = None) -> list[Verdict]:
    """Run (or resume) the jobs of a held-out ``budget`` under ``out/runs`` (all, or those named in ``only``), then
    write ``out/REPORT.md`` from every finished job. ``report_only``: run nothing, report what is finished.
    ``development``: the development phase's output folder; for each task not learned, the report shows its easy
    accuracy along training there."""
    budget = _budget(budget)
    if budget.development:
        raise InputError(f"the {budget.name} budget is a development phase: it chooses, it is not judged (use develop)")
    out = Path(out)
    chosen = None if development is None else read_development(Path(development))
    records = _records(budget, out, workers, progress, only, report_only)
    verdicts = judge(records, budget.internal_wins)
    command = command or _command(budget, out) + ("" if development is None else f" --development {development}")
    write_report(out, budget.name, records, verdicts, command, expected=len(jobs(budget)), development=chosen,
                 development_png=None if development is None else copy_development_plot(Path(development), out))
    return verdicts


def read_development(folder: Path) -> dict:
    """The ``development.json`` a development budget's report wrote in ``folder``."""
    path = folder / DEVELOPMENT_JSON
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"no development report at {path} ({type(e).__name__}); write it with "
                         f"looped reproduce --budget cpu-dev --out {folder} --report") from None


def copy_development_plot(folder: Path, out: Path) -> str | None:
    """Copy the development report's plot from ``folder`` into ``out``; its name, or None when there is none."""
    if not (folder / DEVELOPMENT_PNG).exists():
        return None
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / DEVELOPMENT_PNG, out / DEVELOPMENT_PNG)
    return DEVELOPMENT_PNG


def develop(budget: str | Budget, out: Path, workers: int = 1, progress: bool = True, command: str = "",
            only: list[str] | None = None, report_only: bool = False) -> dict[str, dict]:
    """``reproduce`` for a development ``budget``: runs its jobs, then writes ``out/DEVELOPMENT.md`` with the
    learning rate each task's development runs choose; returns those choices per task (``development.choices``)."""
    budget = _budget(budget)
    if not budget.development:
        raise InputError(f"the {budget.name} budget is judged, not a development phase (use reproduce)")
    out = Path(out)
    records = _records(budget, out, workers, progress, only, report_only)
    return write_development(out, budget.name, records, command or _command(budget, out), expected=len(jobs(budget)))


def job_ids(budget: str | Budget) -> list[str]:
    """The stable id of every job of ``budget``, in grid order."""
    return [spec.name for spec in jobs(_budget(budget))]


def _budget(budget: str | Budget) -> Budget:
    return BUDGETS[budget] if isinstance(budget, str) else budget


def _records(budget: Budget, out: Path, workers: int, progress: bool, only: list[str] | None,
             report_only: bool) -> list[dict]:
    return finished(budget, out) if report_only else run_all(budget, out, workers=workers, progress=progress, only=only)


def _command(budget: Budget, out: Path) -> str:
    return f"looped reproduce --budget {budget.name} --out {out}"


__all__ = ["BUDGETS", "Budget", "Verdict", "develop", "job_ids", "reproduce"]
