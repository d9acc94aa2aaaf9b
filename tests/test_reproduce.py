import json
import math
import zlib

import numpy as np
import pytest
import torch

from looped import stats
from looped.reproduce import claims
from looped.reproduce.budgets import BUDGETS, NORMS, RECALLS
from looped.reproduce.claims import INCONCLUSIVE, NO_POWER, NOT_SUPPORTED, SUPPORTED
from looped.reproduce.report import CURVES_PNG, SCORE_PNG, write_report

from conftest import load_script

TASKS = ("prefix-sums", "sudoku", "chess")
INTERNAL_WINS = frozenset({"sudoku"})  # C4 needs internal > external here, as every budget declares
N = 400  # examples per split
SEEDS = (10, 11, 12)


def bits(p, n=N, shift=0):
    """Correct on a window of round(p * n) examples starting at ``shift`` (wrapping)."""
    k = round(p * n)
    ok = np.zeros(n, dtype=bool)
    ok[(np.arange(k) + shift) % n] = True
    return "".join("1" if v else "0" for v in ok)


def record(task, recall, norm, seed, hard, *, residual="add", easy=1.0, baseline=False, shift=None, reach=True,
           mult=0.5, growth=1.0, sens=0.1, prec=1e-7, settled=1.0, smooth=True, at_n=None):
    """A synthetic rules-v3 run record; its per-example outcomes reproduce ``hard`` exactly on both hard splits."""
    verdicts = {"reachable": reach, "input_dependent": sens is not None and sens > 1e-3, "smooth_and_backprop_stable": smooth}
    hard = round(hard * N) / N
    at_n = hard if at_n is None else at_n
    stability = None if baseline else {
        "n": 64, "verdicts": verdicts, "settled_fraction": settled, "multiplier_median": mult, "state_norm_growth": growth,
        "sensitivity_median": sens, "precision_median": prec, "attractor_shares": {"fixed point": 1.0},
        "examples": [{"kind": "fixed", "period": 1, "settled_at": 5, "multiplier": mult, "prediction_since": 3,
                      "one_step": {"t": [1], "r": [0.1]}, "k_step": {"t": [1], "r": [0.1]}}]}
    name = f"{task}-{'fixed' if baseline else f'{recall}-{norm}-{residual}'}-s{seed}"
    shift = zlib.crc32(name.encode()) % N if shift is None else shift  # runs differ example by example
    return {
        "rules": 3, "name": name, "task": task, "recall": recall, "norm": norm, "residual": residual,
        "variant": "fixed" if baseline else f"{recall}/{norm}/{residual}", "seed": seed, "lr": 1e-3, "baseline": baseline,
        "easy": ["e"], "hard": ["h1", "h2"], "n_eval": N, "train_iters": 1 if baseline else 4,
        "eval_iters": 1 if baseline else 10, "easy_accuracy": easy, "hard_accuracy": hard,
        "hard_accuracy_at_train_depth": at_n, "hard_oracle_accuracy": max(hard, at_n), "hard_halting_accuracy": hard,
        "curves": {"e": [0.5] * 9 + [easy], "h1": [0.1] * 9 + [hard], "h2": [0.1] * 9 + [hard]},
        "correct": {"e": bits(easy), "h1": bits(hard, shift=shift), "h2": bits(hard, shift=shift)},
        "correct_at_train_depth": {"h1": bits(at_n), "h2": bits(at_n)}, "development": None, "stability": stability,
    }


UNSTABLE = dict(reach=False, mult=1.3, growth=1e6, smooth=False)
FROZEN = dict(sens=0.0)


def paper_world(tasks=TASKS[:2], seeds=SEEDS, easy=1.0, **over):
    """Runs that behave as the paper says; ``over`` replaces hard accuracies by variant key (recall_norm)."""
    acc = {f"none_{n}": 0.05 for n in NORMS} | {f"{r}_{n}": 0.3 for r in ("external", "internal") for n in ("pre", "peri")}
    acc |= {"external_post": 0.7, "internal_post": 0.8, "fixed": 0.4}
    acc.update(over)
    rs = []
    for task in tasks:
        for seed in seeds:
            for recall in RECALLS:
                for norm in NORMS:
                    kw = FROZEN if recall == "none" else UNSTABLE if norm != "post" else {}
                    rs.append(record(task, recall, norm, seed, acc[f"{recall}_{norm}"], easy=easy, **kw))
            rs.append(record(task, "none", "post", seed, acc["fixed"], easy=easy, baseline=True))
    return rs


def verdicts(rs):
    return {v.claim: v.verdict for v in claims.judge(rs, INTERNAL_WINS)}


def edit(rs, match, **changes):
    """Copies of ``rs`` with ``changes`` applied to the records for which ``match(record)`` is true."""
    out = []
    for r in rs:
        if match(r):
            kw = dict(changes)
            hard = kw.pop("hard", r["hard_accuracy"])
            r = record(r["task"], r["recall"], r["norm"], r["seed"], hard, easy=r["easy_accuracy"],
                       baseline=r["baseline"], **kw)
        out.append(r)
    return out


def variant(recall, norm):
    return lambda r: not r["baseline"] and (r["recall"], r["norm"]) == (recall, norm)


def test_paper_world_supports_c1_to_c4_and_c6():
    v = verdicts(paper_world())
    assert [v[c] for c in ("C1", "C2", "C3", "C4", "C6")] == [SUPPORTED] * 5, v


@pytest.mark.parametrize("claim, world", [
    ("C1", lambda: edit(paper_world(), lambda r: r["recall"] == "none", sens=0.1)),  # share 0 < 50%
    ("C1", lambda: paper_world(none_pre=0.85)),  # no recall as good as the best recall variant
    ("C2", lambda: edit(paper_world(), lambda r: claims.recall_outer(r) and not r["baseline"], **UNSTABLE)),
    ("C2", lambda: paper_world(external_peri=0.95)),  # recall + post clearly below another variant
    ("C3", lambda: paper_world(external_pre=0.9, internal_pre=0.9)),  # post lowers accuracy against pre
    ("C4", lambda: paper_world(internal_post=0.6)),  # clearly below external
    ("C6", lambda: paper_world(fixed=0.85)),
])
def test_each_claim_can_fail(claim, world):
    assert verdicts(world())[claim] == NOT_SUPPORTED


def test_c3_instability_gap_at_or_below_zero_fails():
    rs = edit(paper_world(), lambda r: not r["baseline"] and r["recall"] != "none" and r["norm"] != "post", hard=0.3)
    assert verdicts(rs)["C3"] == NOT_SUPPORTED  # stable now, like the post runs


@pytest.mark.parametrize("claim, world", [
    ("C1", lambda: edit(paper_world(), lambda r: r["recall"] == "none" and r["seed"] == 10, sens=0.1)),  # 6 of 9
    ("C1", lambda: paper_world(none_pre=0.795)),  # best recall ahead by +0.005 only
    ("C3", lambda: paper_world(external_pre=0.695, internal_pre=0.795)),  # post ahead of pre by 0.005 only
    ("C4", lambda: paper_world(external_post=0.795)),  # internal ahead on sudoku by 0.005
    ("C6", lambda: paper_world(fixed=0.795)),
])
def test_each_claim_can_be_inconclusive(claim, world):
    rs = world()
    assert verdicts(rs)[claim] == INCONCLUSIVE, claims.judge(rs, INTERNAL_WINS)[int(claim[1]) - 1].evidence


def test_c2_stability_share_between_half_and_four_fifths_is_inconclusive():
    rs = edit(paper_world(), lambda r: claims.recall_outer(r) and not r["baseline"] and r["seed"] in (10, 11)
              and r["recall"] == "external", smooth=False)  # 4 of 12 fail: 67%
    assert verdicts(rs)["C2"] == INCONCLUSIVE


def test_no_learned_task_means_no_power_for_every_claim():
    assert set(verdicts(paper_world(easy=0.4)).values()) == {NO_POWER}


def test_c4_has_no_power_without_a_learned_sudoku():
    v = verdicts(paper_world(tasks=("prefix-sums",)))
    assert v["C4"] == NO_POWER and v["C1"] == SUPPORTED


def test_c4_requires_internal_ahead_only_where_the_plan_says():
    rs = paper_world(tasks=("prefix-sums", "sudoku"), external_post=0.805)  # internal behind, not clearly
    assert claims.check_c4(rs, frozenset({"sudoku"})).verdict == NOT_SUPPORTED
    c4 = claims.check_c4(rs, frozenset({"chess"}))
    assert c4.verdict == NO_POWER and {p["internal_minus_external"]["status"] for p in c4.tasks.values()} == {"holds"}


def test_an_unlearned_task_moves_no_verdict():
    base = paper_world()
    contrary = paper_world(tasks=("chess",), easy=0.3, fixed=0.99, none_pre=0.99, external_pre=0.95, internal_post=0.01)
    contrary = edit(contrary, lambda r: claims.recall_outer(r) and not r["baseline"], **UNSTABLE)
    a, b = claims.judge(base, INTERNAL_WINS), claims.judge(base + contrary, INTERNAL_WINS)
    assert [v.verdict for v in a] == [v.verdict for v in b]
    for v in b:
        assert v.tasks["chess"]["learned"] is False and v.tasks["sudoku"]["learned"] is True


def test_learned_uses_the_best_variant_mean_over_seeds_at_the_threshold():
    rs = paper_world(tasks=("prefix-sums",), easy=0.2)
    rs = [dict(r, easy_accuracy=claims.LEARNED_EASY + (0.1 if r["seed"] == 10 else -0.05))
          if variant("external", "pre")(r) else r for r in rs]
    ok, best = claims.learned(rs, "prefix-sums")
    assert ok and best == pytest.approx(claims.LEARNED_EASY)
    rs = [dict(r, easy_accuracy=r["easy_accuracy"] - 0.01) if variant("external", "pre")(r) else r for r in rs]
    assert not claims.learned(rs, "prefix-sums")[0]


def test_seeds_that_disagree_keep_a_difference_from_being_clear():
    """internal - external = +0.1 on average but behind on two of three seeds: not clearly above 0."""
    rs = paper_world(tasks=("sudoku",))
    for r in rs:
        if variant("internal", "post")(r):
            r.update(record(r["task"], "internal", "post", r["seed"], {10: 0.99, 11: 0.69, 12: 0.69}[r["seed"]]))
    part = claims.check_c4(rs, INTERNAL_WINS).tasks["sudoku"]["internal_minus_external"]
    assert part["diff"] > 0 and part["ahead"] == pytest.approx(1 / 3) and part["status"] == "unclear"
    assert part["per_unit"] == pytest.approx([0.29, -0.01, -0.01])


def test_the_two_level_bootstrap_resamples_seeds_then_examples():
    """A hand-computed case: A is right and B wrong on every example of seed 10, the reverse on seed 11, so
    resampling examples changes nothing and every resample is (k - (2 - k)) / 2 for k draws of seed 10:
    -1, 0 or +1 with odds 1:2:1; the interval is [-1, +1] and the point estimate 0."""
    a = [record("t", "external", "post", 10, 1.0), record("t", "external", "post", 11, 0.0)]
    b = [record("t", "internal", "post", 10, 0.0), record("t", "internal", "post", 11, 1.0)]
    c = claims.compare(list(zip(a, b)))
    assert c.diff == pytest.approx(0.0) and c.ci == pytest.approx((-1.0, 1.0))
    draws = stats.two_level_means([[claims.outcomes(x, s) - claims.outcomes(y, s) for s in ("h1", "h2")]
                                   for x, y in zip(a, b)], resamples=4000, rng=0)
    values, counts = np.unique(draws, return_counts=True)
    assert values.tolist() == [-1.0, 0.0, 1.0] and counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.03)


def test_the_bootstrap_is_paired_on_examples():
    """B is A with 20 examples lost, on every seed: each resample shows the same +0.05."""
    a = [record("t", "external", "post", s, 0.5, shift=0) for s in SEEDS]
    b = [record("t", "internal", "post", s, 0.45, shift=0) for s in SEEDS]
    c = claims.compare(list(zip(a, b)))
    assert c.diff == pytest.approx(0.05) and c.ci[1] - c.ci[0] < 0.05


def c5_world(kind, seeds=SEEDS + (13, 14, 15)):
    """Held-out runs where the score tracks accuracy within recall + post ('up'), opposes it ('down'), copies
    the label ('label'), or is noise ('noise')."""
    rng = np.random.default_rng(0)
    rs = []
    for seed in seeds:
        for recall in RECALLS:
            for norm in NORMS:
                ours = recall != "none" and norm == "post"
                if ours:
                    q = rng.uniform(0, 1)
                    hard = 0.4 + 0.6 * q
                    mult = {"up": 0.95 - 0.9 * q, "down": 0.05 + 0.9 * q, "label": 0.5, "noise": rng.uniform(0.05, 0.95)}[kind]
                else:
                    hard = rng.uniform(0.0, 0.45)
                    mult = {"up": 3.0, "down": 3.0, "label": 3.0, "noise": rng.uniform(0.05, 1.2)}[kind]
                sens = 0.1 if ours or kind == "noise" else None if recall != "none" else 0.0  # None: nothing settled
                rs.append(record("prefix-sums", recall, norm, seed, hard, mult=mult, sens=sens))
    return rs


def test_c5_supported_when_the_score_ranks_within_the_label():
    v = claims.check_c5(c5_world("up"))
    assert v.verdict == SUPPORTED, v.evidence
    assert v.numbers["spearman_score"] > v.numbers["spearman_label"]


def test_c5_score_that_copies_the_label_is_not_supported():
    rs = c5_world("label")
    v = claims.check_c5(rs)
    assert v.numbers["spearman_score"] == pytest.approx(v.numbers["spearman_label"])
    assert v.verdict != SUPPORTED


def test_c5_not_supported_when_the_score_loses_to_the_label():
    v = claims.check_c5(c5_world("down"))
    assert v.verdict == NOT_SUPPORTED, v.evidence
    assert v.numbers["diff_ci"][1] < 0


def test_c5_noise_score_is_not_supported():
    assert claims.check_c5(c5_world("noise")).verdict in (INCONCLUSIVE, NOT_SUPPORTED)


def test_c5_inconclusive_with_few_runs():
    v = claims.check_c5(c5_world("up", seeds=(3,)))
    assert v.verdict == INCONCLUSIVE, v.evidence


def test_c5_ignores_development_seeds_and_unlearned_tasks():
    assert claims.check_c5(c5_world("up", seeds=claims.DEV_SEEDS)).verdict == NO_POWER
    rs = c5_world("up") + [dict(r, task="chess", name="c" + r["name"], easy_accuracy=0.1) for r in c5_world("down")]
    v = claims.check_c5(rs)
    assert v.verdict == SUPPORTED and v.numbers["held_out_runs"] == 54


def test_spearman_matches_pearson_of_ranks_with_ties():
    a = np.array([1.0, 2.0, 2.0, 5.0, 3.0])
    b = np.array([10.0, 30.0, 20.0, 50.0, 40.0])
    ra = np.array([0, 1.5, 1.5, 4, 3])
    rb = np.array([0, 2, 1, 4, 3])
    assert claims.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert math.isnan(claims.spearman(np.ones(4), np.arange(4.0)))


def test_stability_score_weighs_settling_by_contraction_when_the_attractor_moves_with_the_input():
    assert claims.stability_score(record("t", "external", "post", 10, 1.0, mult=0.25, settled=1.0)) == pytest.approx(0.8)
    assert claims.stability_score(record("t", "external", "post", 10, 1.0, mult=1.0, settled=0.5)) == pytest.approx(0.25)
    assert claims.stability_score(record("t", "external", "pre", 10, 1.0, mult=None)) == 0.0  # nothing settled
    assert claims.stability_score(record("t", "external", "pre", 10, 1.0, sens=None)) == 0.0  # not measurable
    assert claims.stability_score(record("t", "none", "post", 10, 1.0, **FROZEN)) == 0.0  # below the precision


def test_report_is_complete_and_json_has_no_nan(tmp_path):
    rs = paper_world(tasks=TASKS[:2]) + paper_world(tasks=("chess",), easy=0.3)
    rs[0]["stability"]["multiplier_median"] = None
    for i, r in enumerate(rs[:3]):  # runs trained on two machines, the others from records without a clock
        r["clock"] = {"machine": "CPU A" if i < 2 else "CPU B", "seconds_per_step": 0.5}
    vs = claims.judge(rs, INTERNAL_WINS)
    write_report(tmp_path, "test", rs, vs, "looped reproduce --budget test", expected=len(rs))
    text = (tmp_path / "REPORT.md").read_text()
    for v in vs:
        assert f"**{v.claim}**" in text and v.verdict in text
    assert "| chess | **no** |" in text
    assert f"Runs trained on: not recorded ({len(rs) - 3} runs); CPU A (2 runs); CPU B (1 run)." in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rules"] == 3 and summary["runs_finished"] == summary["runs_expected"] == len(rs)
    assert "| norm | residual | recall |" in text and "## Attractors on easy data" in text
    assert [v["verdict"] for v in summary["verdicts"]] == [v.verdict for v in vs]
    for v in summary["verdicts"]:
        assert set(v["tasks"]) == set(TASKS) and v["tasks"]["chess"]["learned"] is False
    assert len(summary["runs"]) == len(rs)
    for r in summary["runs"]:
        assert {"seed", "variant", "n_eval", "easy_accuracy", "hard_accuracy", "baseline"} <= set(r)
        assert "correct" not in r and (r["baseline"] or "attractor_shares" in r["stability"])
    assert sum(r["baseline"] for r in summary["runs"]) == 9
    for png in (CURVES_PNG, SCORE_PNG):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_budgets_meet_the_declared_power():
    for budget in BUDGETS.values():
        assert {p.task for p in budget.plans} == set(TASKS)
        assert budget.internal_wins == INTERNAL_WINS  # the rule C4 declares for sudoku
        for plan in budget.plans:
            assert plan.easy and plan.hard and plan.seeds and plan.max_iters >= plan.train_iters
    for name in ("cpu", "gpu"):
        for plan in BUDGETS[name].plans:
            assert len(plan.seeds) >= 3 and plan.n_eval >= 1000 and plan.n_analyze >= 64 and len(plan.lrs) == 1
            assert not set(plan.seeds) & set(claims.DEV_SEEDS)  # every run held out
    papers_rates = {"prefix-sums": {1e-4, 3e-4, 1e-3}, "sudoku": {1e-4, 3e-4, 1e-3, 3e-3}, "chess": {1e-4, 3e-4, 1e-3}}
    for plan in BUDGETS["cpu-dev"].plans:  # the paper's grid: run_all.bash, and run_sudoku_high_lr.bash for sudoku
        assert set(plan.seeds) == set(claims.DEV_SEEDS) and set(plan.lrs) == papers_rates[plan.task]
    development = {p.task: p for p in BUDGETS["cpu-dev"].plans}
    for plan in BUDGETS["cpu"].plans:  # frozen from the development phase: one of its rates, never more steps
        assert plan.lrs[0] in development[plan.task].lrs and 100 <= plan.steps <= development[plan.task].steps
        assert plan.steps % 100 == 0 and not plan.checkpoints


def test_a_job_runs_the_papers_block_in_its_variant(tmp_path):
    from looped.reproduce.grid import jobs, train

    budget = tiny_budget()
    specs = {s.name: s for s in jobs(budget)}
    train(specs["prefix-sums-internal-post-add-s1"], tmp_path / "run", compile=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["arch"] == "paper"
    assert (config["model"]["recall"], config["model"]["norm"], config["model"]["residual"]) == ("internal", "post", "add")
    assert config["train"]["warmup"] == "exponential" and config["train"]["schedule"] == "step"
    train(specs["prefix-sums-fixed-s1"], tmp_path / "base", compile=False)
    base = json.loads((tmp_path / "base" / "config.json").read_text())
    assert base["model"]["blocks"] == 15 and base["model"]["recall"] == "none" and base["train"]["train_iters"] == 1


def test_job_ids_round_trip_and_are_unique():
    from looped.reproduce import job_ids
    from looped.reproduce.grid import jobs, job

    for budget in BUDGETS.values():
        ids = job_ids(budget)
        assert len(ids) == len(set(ids)) == len(jobs(budget))
        assert all(job(budget, name).name == name for name in ids)
    assert any("-lr0.0003-" in name for name in job_ids("cpu-dev"))
    with pytest.raises(claims_error()):
        job(BUDGETS["cpu"], "no-such-job")


def claims_error():
    from looped.tasks import InputError

    return InputError


def tiny_budget(steps=3):
    from looped.reproduce.budgets import Budget, TaskPlan

    return Budget("tiny", analyze_max_iter=10, dense_limit=0, compile=False, plans=(
        TaskPlan("prefix-sums", easy=("8",), hard=("12",), seeds=(1,), steps=steps, batch_size=4, train_iters=2,
                 max_iters=4, n_eval=4, n_analyze=2, width=16),
    ))


def quick_analysis(run, split, n, max_iter, tol, device, dense_limit):
    """A stand-in for ``analyze_run`` with its output's shape (the smoke reproduction runs the real one)."""
    trace = {"t": [1, 2], "r": [0.1, 0.01]}
    return {"n": n, "verdicts": {"reachable": True, "input_dependent": True, "smooth_and_backprop_stable": True},
            "attractors": {"shares": {"fixed point": {"share": 1.0, "ci95": [0.5, 1.0]}},
                           "settled_with_constant_prediction_fraction": 1.0, "multiplier_median": 0.5},
            "reachability": {"state_norm_growth_median": 1.0},
            "input_dependence": {"autonomy_input_dependent": True, "sensitivity_median": 0.1, "precision_median": 1e-8,
                                 "distinct_attractors": n},
            "geometry": {"lipschitz_median": 1.0, "cond_median": 2.0, "backward_converged_fraction": 1.0},
            "per_example": {"kind": ["fixed"] * n, "period": [1] * n, "settled_at": [2] * n, "multiplier": [0.5] * n,
                            "prediction_since": [1] * n},
            "traces": {"one_step": [trace] * n, "k_step": [trace] * n}}


def test_grid_resumes_and_skips_finished_runs(tmp_path, monkeypatch):
    import looped.reproduce.grid as grid_module
    from looped.reproduce import reproduce
    from looped.reproduce.grid import RECORD, jobs

    monkeypatch.setattr(grid_module, "analyze_run", quick_analysis)
    tiny = tiny_budget()
    vs = reproduce(tiny, tmp_path, progress=False)
    assert [v.claim for v in vs] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    names = [s.name for s in jobs(tiny)]
    assert len(names) == 10 and all((tmp_path / "runs" / n / RECORD).exists() for n in names)
    base = json.loads((tmp_path / "runs" / "prefix-sums-fixed-s1" / RECORD).read_text())
    assert base["baseline"] and base["eval_iters"] == 1 and base["stability"] is None
    assert base["clock"]["seconds_per_step"] > 0 and "torch" in base["clock"]["machine"]
    assert len(base["correct"]["12"]) == 4 and set(base["correct"]["12"]) <= {"0", "1"}
    first = {n: (tmp_path / "runs" / n / RECORD).read_text() for n in names}
    stamp = {n: (tmp_path / "runs" / n / RECORD).stat().st_mtime_ns for n in names}
    (tmp_path / "runs" / names[0] / RECORD).unlink()  # as if killed before the record was written
    (tmp_path / "runs" / names[0] / "analysis.json").unlink()
    reproduce(tiny, tmp_path, progress=False)
    assert (tmp_path / "runs" / names[0] / RECORD).read_text() == first[names[0]]
    assert all((tmp_path / "runs" / n / RECORD).stat().st_mtime_ns == stamp[n] for n in names[1:])
    assert (tmp_path / "REPORT.md").exists()


class Killed(Exception):
    pass


def test_a_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from looped import runs
    from looped.reproduce.grid import evaluation, jobs, train
    from looped.training import Trainer

    spec = jobs(tiny_budget(steps=4))[0]
    train(spec, tmp_path / "whole", compile=False)
    step = Trainer.train_step

    def dies_after_two(self):
        if self.step == 2:  # its step-2 checkpoint is on disk
            raise Killed
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", dies_after_two)
    with pytest.raises(Killed):
        train(spec, tmp_path / "cut", compile=False)
    monkeypatch.setattr(Trainer, "train_step", step)
    train(spec, tmp_path / "cut", compile=False)
    assert [m["step"] for m in runs.Run(tmp_path / "cut").read_metrics()] == [1, 2, 3, 4]
    a, b = (runs.read_tensors(tmp_path / d / runs.WEIGHTS) for d in ("whole", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    whole, cut = evaluation(tmp_path / "whole", spec, False), evaluation(tmp_path / "cut", spec, False)
    assert [e["results"] for e in whole] == [e["results"] for e in cut]


def test_the_reproduction_evaluates_as_looped_eval_does(tmp_path, capsys):
    """A run's eval files are ``looped eval``'s JSON with halting off and on (replayed on the same pass), on the
    same examples; the per-example outcomes the record keeps agree with its curves."""
    from looped import cli
    from looped.reproduce.grid import evaluation, jobs, make_record, train

    spec = jobs(tiny_budget(steps=4))[0]
    plan, run = spec.plan, tmp_path / "run"
    train(spec, run, compile=False)
    full, halted = evaluation(run, spec, False)
    splits = ",".join(plan.easy + plan.hard)
    for result, halting in ((full, "off"), (halted, "on")):
        assert cli.main(["eval", str(run), "--split", splits, "--n", str(plan.n_eval), "--max-iters", str(spec.eval_iters),
                         "--halting", halting, "--json", "--quiet", "--out", str(tmp_path / halting)]) == 0
        by_cli = json.loads(capsys.readouterr().out)
        assert all(r.pop("correct_by_iteration", None) is not None for r in result["results"])  # kept for both
        assert by_cli == result
    record = make_record(spec, *evaluation(run, spec, False), analysis=None, development=None)
    for s in plan.easy + plan.hard:
        ok = [c == "1" for c in record["correct"][s]]
        assert len(ok) == plan.n_eval and record["curves"][s][-1] == pytest.approx(sum(ok) / len(ok))
    (h,) = plan.hard
    at_n = [c == "1" for c in record["correct_at_train_depth"][h]]
    assert record["hard_accuracy_at_train_depth"] == pytest.approx(sum(at_n) / len(at_n))
    assert record["hard_halting_accuracy"] == halted["results"][1]["final_accuracy"]


def test_a_run_whose_loss_diverges_keeps_its_last_checkpoint(tmp_path, monkeypatch):
    from looped import runs
    from looped.reproduce.grid import DIVERGED, jobs, train
    from looped.training import Trainer

    spec = jobs(tiny_budget(steps=4))[0]
    step = Trainer.train_step

    def diverges_at_three(self):
        if self.step == 2:
            raise FloatingPointError("non-finite loss at step 3")
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", diverges_at_three)
    train(spec, tmp_path, compile=False)
    assert (tmp_path / DIVERGED).exists() and (tmp_path / runs.WEIGHTS).exists()
    monkeypatch.setattr(Trainer, "train_step", step)
    train(spec, tmp_path, compile=False)  # not retrained
    assert [m["step"] for m in runs.Run(tmp_path).read_metrics()] == [1, 2]


def test_two_processes_running_disjoint_jobs_write_what_one_process_writes(tmp_path, monkeypatch):
    """The jobs split between two processes into one folder give the records of one process running all."""
    import subprocess
    import sys

    from looped.reproduce import job_ids

    ids = job_ids("smoke")[:2]  # prefix sums: none/pre, none/peri
    run = lambda out, chosen: subprocess.Popen(  # noqa: E731
        [sys.executable, "-m", "looped", "reproduce", "--budget", "smoke", "--out", str(out), "--only", ",".join(chosen),
         "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    both = [run(tmp_path / "two", ids[:1]), run(tmp_path / "two", ids[1:])]
    one = run(tmp_path / "one", ids)
    for p in both + [one]:
        assert p.wait() == 0, p.stderr.read()
    for name in ids:
        a, b = (json.loads((tmp_path / d / "runs" / name / "record.json").read_text()) for d in ("one", "two"))
        for key in ("stability", "clock"):  # the analysis names its run folder, the clock differs; the rest agrees exactly
            a.pop(key), b.pop(key)
        assert a == b


# ---- development (what seeds 0-2 choose) -----------------------------------------------------------------

def dev_record(task, recall, norm, seed, lr, easy, *, baseline=False, marks=None):
    r = record(task, recall, norm, seed, 0.1, easy=easy, baseline=baseline)
    r["lr"], r["steps"] = lr, 3000
    r["development"] = {"easy_accuracy_by_step": {str(s): a for s, a in (marks or {}).items()}}
    return r


def dev_world(easy_by_lr, seeds=(0, 1)):
    """Every job of one task at each rate; ``easy_by_lr[lr](recall, norm, seed)`` gives its easy accuracy."""
    rs = []
    for lr, easy in easy_by_lr.items():
        for seed in seeds:
            rs += [dev_record("sudoku", r, n, seed, lr, easy(r, n, seed)) for r in RECALLS for n in NORMS]
            rs.append(dev_record("sudoku", "none", "post", seed, lr, easy("fixed", "", seed), baseline=True))
    return rs


def test_development_chooses_the_rate_with_the_best_mean_over_all_jobs_not_the_best_variant():
    from looped.reproduce.development import task_choice

    peaked = lambda r, n, s: 0.9 if (r, n) == ("internal", "post") else 0.1  # noqa: E731
    even = lambda r, n, s: 0.4  # noqa: E731
    c = task_choice(dev_world({1e-3: peaked, 3e-4: even}), "sudoku")
    assert c["rates"][1e-3]["mean_easy"] == pytest.approx((0.9 + 9 * 0.1) / 10)
    assert c["rates"][3e-4]["mean_easy"] == pytest.approx(0.4)
    assert c["chosen_lr"] == 3e-4 and c["compared_on"] == 20 and c["seeds"] == [0, 1]
    assert c["rates"][1e-3]["learned"] and not c["rates"][3e-4]["learned"] and not c["learned"]


def test_development_compares_rates_on_the_jobs_finished_at_every_rate():
    from looped.reproduce.development import task_choice

    rs = dev_world({1e-4: lambda r, n, s: 0.5, 1e-3: lambda r, n, s: 0.6 if s == 0 else 0.2})
    rs = [r for r in rs if not (r["lr"] == 1e-4 and r["seed"] == 1)]  # 1e-3's weak seed 1 has no 1e-4 twin
    c = task_choice(rs, "sudoku")
    assert c["compared_on"] == 10 and c["seeds"] == [0]
    assert c["rates"][1e-3]["runs"] == 20 and c["rates"][1e-3]["mean_easy"] == pytest.approx(0.6)
    assert c["chosen_lr"] == 1e-3


def test_development_breaks_a_tie_towards_the_lower_rate():
    from looped.reproduce.development import task_choice

    c = task_choice(dev_world({1e-3: lambda r, n, s: 0.7, 1e-4: lambda r, n, s: 0.7}), "sudoku")
    assert c["chosen_lr"] == 1e-4 and c["learned"]


def test_development_curve_averages_runs_and_names_the_best_variant_at_each_mark():
    from looped.reproduce.development import along_training

    runs = [dev_record("chess", "internal", "post", s, 1e-3, 0.5, marks={1000: a, 2000: a + 0.2})
            for s, a in ((0, 0.2), (1, 0.4))]
    runs.append(dev_record("chess", "none", "pre", 0, 1e-3, 0.1, marks={1000: 0.05, 2000: 0.1}))
    marks = along_training(runs)
    assert list(marks) == [1000, 2000]
    assert marks[1000]["mean"] == pytest.approx((0.2 + 0.4 + 0.05) / 3) and marks[1000]["runs"] == 3
    assert marks[2000]["best"] == pytest.approx(0.5) and marks[2000]["best_variant"] == "internal/post/add"


def test_reproduce_on_a_development_budget_writes_its_choices_not_verdicts(tmp_path, capsys):
    from looped import cli
    from looped.reproduce import reproduce
    from looped.reproduce.grid import RECORD, jobs

    budget = BUDGETS["cpu-dev"]
    specs = [s for s in jobs(budget) if s.plan.task == "prefix-sums" and s.seed == 0]
    for s in specs:
        easy = 0.8 if s.lr == 3e-4 else 0.3
        r = dev_record(s.plan.task, s.recall, s.norm, s.seed, s.lr, easy, baseline=s.baseline, marks={500: easy / 2})
        (tmp_path / "runs" / s.name).mkdir(parents=True)
        (tmp_path / "runs" / s.name / RECORD).write_text(json.dumps(r | {"name": s.name}))
    assert cli.main(["reproduce", "--budget", "cpu-dev", "--out", str(tmp_path), "--report", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "prefix-sums: learning rate 0.0003 (jobs compared: 10), learned"
    text = (tmp_path / "DEVELOPMENT.md").read_text()
    assert f"Partial: {len(specs)} of {len(jobs(budget))} runs finished" in text and "| prefix-sums | 0.0003 |" in text
    assert "| internal/post/add | 0.300 (1) | 0.800 (1) | 0.300 (1) |" in text  # per variant, rates ascending
    saved = json.loads((tmp_path / "development.json").read_text())
    assert saved["tasks"]["prefix-sums"]["chosen_lr"] == 3e-4
    assert (tmp_path / "development.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "REPORT.md").exists()
    with pytest.raises(claims_error(), match="development phase"):
        reproduce("cpu-dev", tmp_path, report_only=True)


def test_a_development_job_records_easy_accuracy_along_training_and_is_not_analyzed(tmp_path, monkeypatch):
    from dataclasses import replace

    import looped.reproduce.grid as grid_module
    from looped.reproduce import develop
    from looped.reproduce.grid import ANALYSIS, EVAL, EVAL_HALTING, RECORD, jobs

    def no_analysis(*args, **kwargs):
        raise AssertionError("a development job is not analyzed")

    monkeypatch.setattr(grid_module, "analyze_run", no_analysis)
    tiny = tiny_budget(steps=4)
    plan = replace(tiny.plans[0], lrs=(1e-3, 3e-4), checkpoints=(2, 4))
    dev = replace(tiny, plans=(plan,), development=True)
    specs = [s for s in jobs(dev) if s.lr == 1e-3 and (s.baseline or (s.recall, s.norm) == ("internal", "post"))]
    chosen = develop(dev, tmp_path, progress=False, only=[s.name for s in specs])
    assert chosen["prefix-sums"]["chosen_lr"] == 1e-3 and chosen["prefix-sums"]["compared_on"] == 2
    for s in specs:
        run = tmp_path / "runs" / s.name
        record = json.loads((run / RECORD).read_text())
        assert not (run / ANALYSIS).exists() and not (run / EVAL_HALTING).exists()
        assert [r["split"] for r in json.loads((run / EVAL).read_text())["results"]] == ["8"]
        assert record["easy_accuracy"] == record["curves"]["8"][-1] and record["steps"] == 4
        assert (record["development"] is None) == s.baseline
        if not s.baseline:
            assert list(record["development"]["easy_accuracy_by_step"]) == ["2", "4"]


def test_each_compiled_job_starts_from_a_fresh_compile_cache(tmp_path, monkeypatch):
    """Jobs run one after another in a process would otherwise share torch.compile's cache and, past its
    recompile limit, fall back to eager: a job's numbers would depend on what ran before it."""
    import looped.reproduce.grid as grid_module
    from dataclasses import replace
    from looped.reproduce.grid import execute, jobs

    class Trained(Exception):
        pass

    calls = []

    def train(spec, path, compile):
        calls.append(("train", spec.name, compile))
        raise Trained

    monkeypatch.setattr(torch.compiler, "reset", lambda: calls.append("reset"))
    monkeypatch.setattr(grid_module, "train", train)
    budget = replace(tiny_budget(), compile=True)
    first, second = jobs(budget)[:2]
    for spec in (first, second):
        with pytest.raises(Trained):
            execute(spec, tmp_path, budget)
    assert calls == ["reset", ("train", first.name, True), "reset", ("train", second.name, True)]


def sizing_rows():
    """Three tasks' projections: core-hours per training step and per-task evaluation + analysis."""
    per_step = {"a": 0.002, "b": 0.010, "c": 0.004}
    extra = {"a": 3.0, "b": 2.0, "c": 1.0}
    return [{"task": t, "training_core_h_per_step": per_step[t], "evaluation_analysis_core_h": extra[t]}
            for t in per_step], per_step, extra


def test_sizing_keeps_learned_steps_and_shares_the_rest_equally():
    rule = load_script("held_out_cost", "lab/reproduction")
    rows, per_step, extra = sizing_rows()
    dev = {"a": 2000, "b": 3000, "c": 3000}
    sized = rule.size_steps(rows, {"a": True, "b": False, "c": False}, 40.0, dev)
    share = (40.0 - (dev["a"] * per_step["a"] + extra["a"])) / 2  # 16.5 each for b and c
    assert sized["tasks"]["a"]["steps"] == 2000
    assert sized["tasks"]["b"]["share_core_h"] == pytest.approx(share)
    b_steps = (share - extra["b"]) / per_step["b"]  # 1450 -> 1400 after rounding down to the quantum
    assert sized["tasks"]["b"]["steps"] == int(b_steps // rule.STEP_QUANTUM) * rule.STEP_QUANTUM == 1400
    assert sized["tasks"]["c"]["steps"] == 3000  # its share pays for 3875, capped at the development steps
    assert sized["core_h"] <= 40.0 and sized["overrun_core_h"] == 0.0


def test_sizing_reports_the_overrun_of_learned_tasks_and_leaves_nothing_to_the_others():
    rule = load_script("held_out_cost", "lab/reproduction")
    rows, per_step, extra = sizing_rows()
    dev = {"a": 2000, "b": 3000, "c": 3000}
    sized = rule.size_steps(rows, {"a": True, "b": True, "c": False}, 30.0, dev)
    learned_h = sum(dev[t] * per_step[t] + extra[t] for t in "ab")  # 7 + 32 = 39 > 30
    assert sized["tasks"]["c"]["steps"] == 0 and sized["tasks"]["c"]["core_h"] == 0.0  # not run
    assert sized["overrun_core_h"] == pytest.approx(learned_h - 30.0)


def test_the_report_shows_the_development_curve_of_a_task_not_learned(tmp_path):
    from looped.reproduce import copy_development_plot, read_development
    from looped.reproduce.development import write_development

    marks = {1000: 0.1, 2000: 0.2, 3000: 0.3}
    dev = [dev_record(t, r, n, 0, 1e-3, 0.3 if t == "chess" else 0.9,
                      marks={s: a + (0.1 if (r, n) == ("internal", "post") else 0.0) for s, a in marks.items()})
           for t in ("sudoku", "chess") for r in RECALLS for n in NORMS]
    write_development(tmp_path / "dev", "cpu-dev", dev, "looped reproduce --budget cpu-dev", expected=len(dev))
    rs = paper_world(tasks=("sudoku",)) + paper_world(tasks=("chess",), easy=0.3)
    out = tmp_path / "out"
    write_report(out, "test", rs, claims.judge(rs, INTERNAL_WINS), "looped reproduce", expected=len(rs),
                 development=read_development(tmp_path / "dev"),
                 development_png=copy_development_plot(tmp_path / "dev", out))
    text = (out / "REPORT.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["development"]["tasks_not_learned"]) == {"chess"}  # sudoku is learned in the held-out runs
    along = summary["development"]["tasks_not_learned"]["chess"]["along_training"]["0.001"]
    mean_3000 = (0.3 + 0.1 + 8 * 0.3) / 9  # internal/post is 0.1 ahead of the eight others
    assert along["3000"]["mean"] == pytest.approx(mean_3000) and along["3000"]["best"] == pytest.approx(0.4)
    assert "## Tasks not learned: development" in text and f"step 3000: {mean_3000:.3f} / 0.400 (internal/post/add)" in text
    assert (out / "development.png").read_bytes()[:4] == b"\x89PNG" and "(development.png)" in text


def test_a_missing_development_report_is_one_clear_error(tmp_path, capsys):
    from looped import cli

    assert cli.main(["reproduce", "--budget", "smoke", "--out", str(tmp_path / "o"), "--report",
                     "--development", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "development.json" in err[0]
