import json
import math

import numpy as np
import pytest

from looped.reproduce import claims
from looped.reproduce.budgets import BUDGETS, NORMS, RECALLS
from looped.reproduce.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from looped.reproduce.report import write_report

TASKS = ("prefix-sums", "sudoku", "chess")


def record(task, recall, norm, seed, hard, *, reach=1.0, rho=0.5, growth=1.0, moves=True, sens=0.1, distinct=1.0,
           lip=10.0, cond=10.0, back=1.0, n=1000):
    verdicts = {
        "reachable": reach >= 0.9 and rho is not None and rho < 1,
        "input_dependent": moves and sens > 1e-3 and distinct >= 0.5,
        "smooth_and_backprop_stable": lip is not None and cond is not None and lip < 1e3 and cond < 1e4 and back >= 0.9,
    }
    return {
        "name": f"{task}-{recall}-{norm}-s{seed}", "task": task, "recall": recall, "outer_norm": norm, "seed": seed,
        "easy": ["e"], "hard": ["h"], "n_eval": n, "easy_accuracy": 1.0, "hard_accuracy": hard,
        "hard_final_accuracy": hard, "curves": {"e": [0.5, 1.0], "h": [0.1, hard]},
        "stability": {"n": 8, "reachable_fraction": reach, "rho_median": rho, "state_norm_growth": growth,
                      "input_dependent_at_fixed_h0": moves, "sensitivity_median": sens, "distinct_fraction": distinct,
                      "lipschitz_median": lip, "cond_median": cond, "backward_converged_fraction": back,
                      "verdicts": verdicts},
    }


def paper_world(seeds=(0, 1, 2)):
    """Runs that behave as the paper says."""
    rs = []
    for task in TASKS:
        for seed in seeds:
            jitter = 0.01 * seed
            for norm in NORMS:
                rs.append(record(task, "none", norm, seed, 0.02 + jitter, moves=False, sens=0.0, distinct=0.1))
            rs.append(record(task, "input", "layernorm", seed, 0.80 + jitter))
            rs.append(record(task, "internal", "layernorm", seed, (0.92 if task == "sudoku" else 0.81) + jitter))
            for recall in ("input", "internal"):
                rs.append(record(task, recall, "none", seed, 0.30 + jitter, reach=0.0, rho=1.3, growth=1e6,
                                 back=0.0, lip=1e5, cond=1e8))
    return rs


def contrary_world(seeds=(0, 1, 2)):
    """Runs where every claim fails."""
    rs = []
    for task in TASKS:
        for seed in seeds:
            jitter = 0.01 * seed
            for norm in NORMS:  # no recall: input-dependent and as good as the rest
                rs.append(record(task, "none", norm, seed, 0.85 + jitter, reach=0.0, rho=1.2, back=0.0))
            rs.append(record(task, "input", "layernorm", seed, 0.80 + jitter, reach=0.2, rho=1.1, cond=1e9, back=0.1))
            rs.append(record(task, "internal", "layernorm", seed, 0.60 + jitter, reach=0.2, rho=1.1, cond=1e9,
                             back=0.1))
            for recall in ("input", "internal"):  # no outer norm: stable and best
                rs.append(record(task, recall, "none", seed, 0.95 + jitter))
    return rs


def test_paper_world_supports_every_claim():
    verdicts = {v.claim: v for v in claims.judge(paper_world())}
    for name in ("C1", "C2", "C3", "C4"):
        assert verdicts[name].verdict == SUPPORTED, verdicts[name].evidence


def test_contrary_world_supports_none_of_c1_to_c4():  # C5 both ways: test_c5_follows_the_correlation...
    verdicts = {v.claim: v for v in claims.judge(contrary_world())}
    for name in ("C1", "C2", "C3", "C4"):
        assert verdicts[name].verdict == NOT_SUPPORTED, (name, verdicts[name].evidence)


def test_ties_within_the_margin_are_inconclusive():
    rs = [dict(r, n_eval=30) for r in paper_world()]  # margin 1/sqrt(30) = 0.18
    for r in rs:
        if r["task"] == "sudoku" and r["recall"] == "internal" and r["outer_norm"] == "layernorm":
            r["hard_accuracy"] -= 0.10  # internal +0.02 over input on sudoku: inside the margin
    c4 = claims.check_c4(rs)
    assert c4.verdict == INCONCLUSIVE and c4.numbers["margin"] == pytest.approx(1 / math.sqrt(30))


def c5_world(sign, seeds=(0, 1, 2, 3)):
    rs = []
    for seed in seeds:
        for k, (recall, norm) in enumerate((r, n) for r in RECALLS for n in NORMS):
            quality = (k + 1) / 6
            reach = quality
            rs.append(record("prefix-sums", recall, norm, seed, 0.5 + sign * 0.4 * (quality - 0.5) + 0.001 * seed,
                             reach=reach, rho=0.5, back=quality, distinct=quality))
    return rs


def test_c5_follows_the_correlation_in_both_directions():
    up, down = claims.check_c5(c5_world(+1)), claims.check_c5(c5_world(-1))
    assert up.verdict == SUPPORTED and up.numbers["spearman_held_out"] > 0.9
    assert down.verdict == NOT_SUPPORTED and down.numbers["spearman_held_out"] < -0.9
    assert up.numbers["held_out_runs"] == 18  # seed 0 is excluded


def test_c5_without_held_out_seeds_is_inconclusive():
    assert claims.check_c5(c5_world(+1, seeds=(0,))).verdict == INCONCLUSIVE


def test_spearman_matches_pearson_of_ranks_with_ties():
    a = np.array([1.0, 2.0, 2.0, 5.0, 3.0])
    b = np.array([10.0, 30.0, 20.0, 50.0, 40.0])
    ra = np.array([0, 1.5, 1.5, 4, 3])
    rb = np.array([0, 2, 1, 4, 3])
    assert claims.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert math.isnan(claims.spearman(np.ones(4), np.arange(4.0)))


def test_stability_score_terms():
    good = record("t", "input", "layernorm", 0, 1.0)
    assert claims.stability_score(good) == pytest.approx(1.0)
    unreachable = record("t", "input", "none", 0, 1.0, rho=None, reach=0.0, back=0.0, cond=None, lip=None)
    assert claims.stability_score(unreachable) == pytest.approx(1 / 3)  # only the input term remains
    frozen = record("t", "none", "layernorm", 0, 1.0, moves=False, sens=0.0)
    assert claims.stability_score(frozen) == pytest.approx(2 / 3)


def test_report_is_complete_and_json_has_no_nan(tmp_path):
    rs = paper_world()
    rs[0]["stability"]["rho_median"] = None
    verdicts = claims.judge(rs)
    write_report(tmp_path, "test", rs, verdicts, "looped reproduce --budget test")
    text = (tmp_path / "REPORT.md").read_text()
    for v in verdicts:
        assert f"**{v.claim}**" in text and v.verdict in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [v["verdict"] for v in summary["verdicts"]] == [v.verdict for v in verdicts]
    assert len(summary["runs"]) == len(rs)
    for png in ("accuracy_vs_iterations.png", "stability_vs_accuracy.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_budgets_cover_the_grid():
    for budget in BUDGETS.values():
        assert {p.task for p in budget.plans} == set(TASKS)
        for plan in budget.plans:
            assert plan.easy and plan.hard and plan.seeds
    assert all(len(p.seeds) >= 2 for b in ("cpu", "gpu") for p in BUDGETS[b].plans)


def test_grid_resumes_and_skips_finished_runs(tmp_path):
    from looped.reproduce import reproduce
    from looped.reproduce.budgets import Budget, TaskPlan
    from looped.reproduce.grid import RECORD, grid

    tiny = Budget("tiny", analyze_max_iter=10, dense_limit=0, compile=False, plans=(
        TaskPlan("prefix-sums", easy=("8",), hard=("12",), seeds=(1,), steps=3, batch_size=4, train_iters=2,
                 max_iters=4, n_eval=4, n_analyze=2, d_model=8, n_heads=2),
    ))
    verdicts = reproduce(tiny, tmp_path, progress=False)
    assert [v.claim for v in verdicts] == ["C1", "C2", "C3", "C4", "C5"]
    names = [s.name for s in grid(tiny)]
    assert len(names) == 6 and all((tmp_path / "runs" / n / RECORD).exists() for n in names)
    first = {n: (tmp_path / "runs" / n / RECORD).read_text() for n in names}
    stamp = {n: (tmp_path / "runs" / n / RECORD).stat().st_mtime_ns for n in names}
    (tmp_path / "runs" / names[0] / RECORD).unlink()  # as if killed before the record was written
    (tmp_path / "runs" / names[0] / "analysis.json").unlink()
    reproduce(tiny, tmp_path, progress=False)
    assert (tmp_path / "runs" / names[0] / RECORD).read_text() == first[names[0]]
    assert all((tmp_path / "runs" / n / RECORD).stat().st_mtime_ns == stamp[n] for n in names[1:])
    assert (tmp_path / "REPORT.md").exists()
