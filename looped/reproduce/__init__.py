"""``looped reproduce``: rerun the paper's study on this machine and judge each claim with numbers.

    budgets.py  how big a reproduction is (smoke / cpu / gpu)
    grid.py     the runs, and how one run is trained, evaluated, analyzed and summarized
    claims.py   the verdicts C1-C6 (rules v2), computed from run records
    report.py   REPORT.md, summary.json and plots
"""

from __future__ import annotations

from pathlib import Path

from .budgets import BUDGETS, Budget
from .claims import Verdict, judge
from .grid import run_all
from .report import write_report


def reproduce(budget: str | Budget, out: Path, workers: int = 1, progress: bool = True,
              command: str = "") -> list[Verdict]:
    """Run (or resume) every run of ``budget`` under ``out/runs``, then write ``out/REPORT.md``."""
    budget = BUDGETS[budget] if isinstance(budget, str) else budget
    out = Path(out)
    records = run_all(budget, out, workers=workers, progress=progress)
    verdicts = judge(records, budget.internal_wins)
    write_report(out, budget.name, records, verdicts, command or f"looped reproduce --budget {budget.name} --out {out}")
    return verdicts


__all__ = ["BUDGETS", "Budget", "Verdict", "reproduce"]
