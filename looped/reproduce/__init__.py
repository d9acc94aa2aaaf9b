"""``looped reproduce``: rerun the paper's study and judge each claim with numbers (rules v3).

    budgets.py  how big a reproduction is (smoke / cpu-dev / cpu / gpu)
    grid.py     the jobs (stable ids), and how one is trained, evaluated, analyzed and summarized
    claims.py   the verdicts C1-C6 (rules v3), computed from run records
    report.py   REPORT.md, summary.json and plots
"""

from __future__ import annotations

from pathlib import Path

from .budgets import BUDGETS, Budget
from .claims import Verdict, judge
from .grid import finished, jobs, run_all
from .report import write_report


def reproduce(budget: str | Budget, out: Path, workers: int = 1, progress: bool = True, command: str = "",
              only: list[str] | None = None, report_only: bool = False) -> list[Verdict]:
    """Run (or resume) the jobs of ``budget`` under ``out/runs`` (all, or those named in ``only``), then write
    ``out/REPORT.md`` from every finished job. ``report_only``: run nothing, report what is finished."""
    budget = BUDGETS[budget] if isinstance(budget, str) else budget
    out = Path(out)
    records = finished(budget, out) if report_only else run_all(budget, out, workers=workers, progress=progress, only=only)
    verdicts = judge(records, budget.internal_wins)
    write_report(out, budget.name, records, verdicts, command or f"looped reproduce --budget {budget.name} --out {out}",
                 expected=len(jobs(budget)))
    return verdicts


def job_ids(budget: str | Budget) -> list[str]:
    """The stable id of every job of ``budget``, in grid order."""
    return [spec.name for spec in jobs(BUDGETS[budget] if isinstance(budget, str) else budget)]


__all__ = ["BUDGETS", "Budget", "Verdict", "job_ids", "reproduce"]
