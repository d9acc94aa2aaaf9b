import json
import math
import zlib

import numpy as np
import pytest
import torch

from looped.reproduce import claims
from looped.model import RECALLS
from looped.reproduce.budgets import BUDGETS, NORMS
from looped.reproduce.claims import INCONCLUSIVE, NO_POWER, NOT_SUPPORTED, SUPPORTED
from looped.reproduce.report import CURVES_PNG, SCORE_PNG, write_report

TASKS = ("prefix-sums", "sudoku", "chess")
INTERNAL_WINS = frozenset({"sudoku"})  # C4 needs internal > input here, as every budget declares
N = 400  # examples per split
SEEDS = (3, 4, 5)


def bits(p, n=N, shift=0):
    """Correct on a window of round(p * n) examples starting at ``shift`` (wrapping)."""
    k = round(p * n)
    ok = np.zeros(n, dtype=bool)
    ok[(np.arange(k) + shift) % n] = True
    return "".join("1" if v else "0" for v in ok)


def record(task, recall, norm, seed, hard, *, easy=1.0, baseline=False, shift=None, reach=1.0, rho=0.5, growth=1.0,
           moves=True, sens=0.1, distinct=1.0, lip=10.0, cond=10.0, back=1.0, at_n=None):
    """A synthetic run record; its per-example outcomes reproduce ``hard`` exactly on both hard splits."""
    verdicts = {
        "reachable": reach >= 0.9 and rho is not None and rho < 1,
        "input_dependent": moves and sens is not None and sens > 1e-3 and distinct >= 0.5,
        "smooth_and_backprop_stable": lip is not None and cond is not None and lip < 1e3 and cond < 1e4 and back >= 0.9,
    }
    hard = round(hard * N) / N
    at_n = hard if at_n is None else at_n
    stability = None if baseline else {
        "n": 8, "reachable_fraction": reach, "rho_median": rho, "state_norm_growth": growth,
        "input_dependent_at_fixed_h0": moves, "sensitivity_median": sens, "distinct_fraction": distinct,
        "lipschitz_median": lip, "cond_median": cond, "backward_converged_fraction": back, "verdicts": verdicts}
    name = f"{task}-{'fixed' if baseline else f'{recall}-{norm}'}-s{seed}"
    shift = zlib.crc32(name.encode()) % N if shift is None else shift  # runs differ example by example
    return {
        "name": name, "task": task, "recall": recall, "outer_norm": norm, "seed": seed, "baseline": baseline,
        "easy": ["e"], "hard": ["h1", "h2"], "n_eval": N, "train_iters": 4, "eval_iters": 4 if baseline else 10,
        "easy_accuracy": easy, "hard_accuracy": hard, "hard_accuracy_at_train_depth": at_n,
        "hard_oracle_accuracy": max(hard, at_n), "hard_halting_accuracy": hard,
        "curves": {"e": [0.5] * 9 + [easy], "h1": [0.1] * 9 + [hard], "h2": [0.1] * 9 + [hard]},
        "correct": {"e": bits(easy), "h1": bits(hard, shift=shift), "h2": bits(hard, shift=shift)},
        "correct_at_train_depth": {"h1": bits(at_n), "h2": bits(at_n)},
        "stability": stability,
    }


UNSTABLE = dict(reach=0.0, rho=1.3, growth=1e6, back=0.0, lip=1e5, cond=1e8)
FROZEN = dict(moves=False, sens=0.0, distinct=0.1)


def paper_world(tasks=TASKS[:2], seeds=SEEDS, easy=1.0, **over):
    """Runs that behave as the paper says; ``over`` replaces hard accuracies by variant key."""
    acc = {"none_none": 0.05, "none_layernorm": 0.05, "input_none": 0.3, "internal_none": 0.3,
           "input_layernorm": 0.7, "internal_layernorm": 0.8, "fixed": 0.4}
    acc.update(over)
    rs = []
    for task in tasks:
        for seed in seeds:
            for recall in RECALLS:
                for norm in NORMS:
                    kw = FROZEN if recall == "none" else UNSTABLE if norm == "none" else {}
                    rs.append(record(task, recall, norm, seed, acc[f"{recall}_{norm}"], easy=easy, **kw))
            rs.append(record(task, "internal", "layernorm", seed, acc["fixed"], easy=easy, baseline=True))
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
            r = record(r["task"], r["recall"], r["outer_norm"], r["seed"], hard, easy=r["easy_accuracy"],
                       baseline=r["baseline"], **kw)
        out.append(r)
    return out


def variant(recall, norm):
    return lambda r: not r["baseline"] and (r["recall"], r["outer_norm"]) == (recall, norm)


def test_paper_world_supports_c1_to_c4_and_c6():
    v = verdicts(paper_world())
    assert [v[c] for c in ("C1", "C2", "C3", "C4", "C6")] == [SUPPORTED] * 5, v


@pytest.mark.parametrize("claim, world", [
    ("C1", lambda: edit(paper_world(), lambda r: r["recall"] == "none", moves=True, sens=0.1)),  # share 0 < 50%
    ("C1", lambda: paper_world(none_none=0.85)),  # no recall as good as the best recall variant
    ("C2", lambda: edit(paper_world(), lambda r: claims.RECALL_NORM(r) and not r["baseline"], **UNSTABLE)),
    ("C2", lambda: paper_world(input_none=0.9)),
    ("C3", lambda: paper_world(input_none=0.9, internal_none=0.9)),  # outer norm lowers accuracy
    ("C4", lambda: paper_world(internal_layernorm=0.6)),  # clearly below input
    ("C6", lambda: paper_world(fixed=0.85)),
])
def test_each_claim_can_fail(claim, world):
    rs = world()
    assert verdicts(rs)[claim] == NOT_SUPPORTED


def test_c3_instability_gap_at_or_below_zero_fails():
    rs = edit(paper_world(), lambda r: not r["baseline"] and r["recall"] != "none" and r["outer_norm"] == "none",
              hard=0.3)  # stable now, like the normed runs
    assert verdicts(rs)["C3"] == NOT_SUPPORTED


@pytest.mark.parametrize("claim, world", [
    ("C1", lambda: edit(paper_world(), lambda r: r["recall"] == "none" and r["seed"] == 3, moves=True, sens=0.1)),
    ("C1", lambda: paper_world(none_layernorm=0.79)),  # +0.01: CI covers 0
    ("C2", lambda: paper_world(input_none=0.79)),
    ("C3", lambda: paper_world(input_none=0.79, internal_none=0.79, input_layernorm=0.8)),
    ("C4", lambda: paper_world(input_layernorm=0.795)),  # internal ahead on sudoku by 0.005
    ("C6", lambda: paper_world(fixed=0.795)),
])
def test_each_claim_can_be_inconclusive(claim, world):
    rs = world()
    assert verdicts(rs)[claim] == INCONCLUSIVE, claims.judge(rs, INTERNAL_WINS)[int(claim[1]) - 1].evidence


def test_c2_stability_share_between_half_and_four_fifths_is_inconclusive():
    rs = edit(paper_world(), lambda r: claims.RECALL_NORM(r) and not r["baseline"] and r["seed"] == 3
              and r["recall"] == "input", **UNSTABLE)  # 2 of 12 fail: 83% -> supported; make it 4 of 12
    rs = edit(rs, lambda r: claims.RECALL_NORM(r) and not r["baseline"] and r["seed"] == 4 and r["recall"] == "input",
              **UNSTABLE)
    assert verdicts(rs)["C2"] == INCONCLUSIVE


def test_no_learned_task_means_no_power_for_every_claim():
    rs = paper_world(easy=0.4)
    assert set(verdicts(rs).values()) == {NO_POWER}


def test_c4_has_no_power_without_a_learned_sudoku():
    rs = paper_world(tasks=("prefix-sums",))
    v = verdicts(rs)
    assert v["C4"] == NO_POWER and v["C1"] == SUPPORTED


def test_c4_requires_internal_ahead_only_where_the_plan_says():
    rs = paper_world(tasks=("prefix-sums", "sudoku"), input_layernorm=0.805)  # internal behind, not clearly
    assert claims.check_c4(rs, frozenset({"sudoku"})).verdict == NOT_SUPPORTED
    c4 = claims.check_c4(rs, frozenset({"chess"}))  # no learned task needs internal ahead
    assert c4.verdict == NO_POWER and {p["internal_minus_input"]["status"] for p in c4.tasks.values()} == {"holds"}


def test_an_unlearned_task_moves_no_verdict():
    base = paper_world()
    contrary = paper_world(tasks=("chess",), easy=0.3, fixed=0.99, none_none=0.99, input_none=0.95,
                           internal_layernorm=0.01)
    contrary = edit(contrary, lambda r: claims.RECALL_NORM(r) and not r["baseline"], **UNSTABLE)
    a, b = claims.judge(base, INTERNAL_WINS), claims.judge(base + contrary, INTERNAL_WINS)
    assert [v.verdict for v in a] == [v.verdict for v in b]
    for v in b:
        assert v.tasks["chess"]["learned"] is False and v.tasks["sudoku"]["learned"] is True


def test_learned_uses_the_best_variant_mean_over_seeds_at_the_threshold():
    rs = paper_world(tasks=("prefix-sums",), easy=0.2)
    rs = [dict(r, easy_accuracy=claims.LEARNED_EASY + (0.1 if r["seed"] == 3 else -0.05))
          if variant("input", "none")(r) else r for r in rs]
    ok, best = claims.learned(rs, "prefix-sums")
    assert ok and best == pytest.approx(claims.LEARNED_EASY)  # (0.6 + 0.45 + 0.45) / 3
    rs = [dict(r, easy_accuracy=r["easy_accuracy"] - 0.01) if variant("input", "none")(r) else r for r in rs]
    assert not claims.learned(rs, "prefix-sums")[0]


def test_clearly_above_needs_two_thirds_of_seeds():
    # internal - input = +0.1 on average but behind on two of three seeds: CI may be above 0, seeds are not
    rs = paper_world(tasks=("sudoku",))
    rs = [dict(r) for r in rs]
    for r in rs:
        if variant("internal", "layernorm")(r):
            new = {3: 0.99, 4: 0.69, 5: 0.69}[r["seed"]]
            r.update(record(r["task"], "internal", "layernorm", r["seed"], new))
    c4 = claims.check_c4(rs, INTERNAL_WINS)
    part = c4.tasks["sudoku"]["internal_minus_input"]
    assert part["diff"] > 0 and part["ahead"] == pytest.approx(1 / 3) and part["status"] == "unclear"


def test_bootstrap_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    a = record("t", "input", "layernorm", 3, 0.5)
    b = record("t", "input", "none", 3, 0.5)
    for r, p in ((a, 0.6), (b, 0.5)):
        for s in ("h1", "h2"):
            r["correct"][s] = "".join("1" if v else "0" for v in rng.random(N) < p)
    c = claims.compare([(a, b)])
    d = np.concatenate([claims.outcomes(a, s) - claims.outcomes(b, s) for s in ("h1", "h2")])
    assert c.diff == pytest.approx(d.mean())
    se = np.sqrt((np.var(claims.outcomes(a, "h1") - claims.outcomes(b, "h1"))
                  + np.var(claims.outcomes(a, "h2") - claims.outcomes(b, "h2"))) / 4 / N)
    assert c.ci[0] == pytest.approx(c.diff - 1.96 * se, abs=0.2 * se)
    assert c.ci[1] == pytest.approx(c.diff + 1.96 * se, abs=0.2 * se)


def test_bootstrap_is_paired_on_examples():
    # B is A with 20 examples lost: the difference is 0.05 on every resample of the same examples only
    a = record("t", "input", "layernorm", 3, 0.5, shift=0)
    b = record("t", "input", "none", 3, 0.45, shift=0)
    c = claims.compare([(a, b)])
    assert c.diff == pytest.approx(0.05)
    d = claims.outcomes(a, "h1") - claims.outcomes(b, "h1")
    se = np.sqrt(np.var(d) / N / 2)  # two splits with identical outcomes, resampled independently
    assert c.ci[1] - c.ci[0] == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert c.ci[1] - c.ci[0] < 0.05  # unpaired, two accuracies near 0.5 would give about 0.14


def c5_world(kind, seeds=SEEDS + (6, 7, 8)):
    """Held-out runs where the score tracks accuracy within recall + outer norm ('up'), opposes it
    ('down'), copies the label ('label'), or is noise ('noise')."""
    rng = np.random.default_rng(0)
    rs = []
    for seed in seeds:
        for k, (recall, norm) in enumerate((r, n) for r in RECALLS for n in NORMS):
            ours = recall != "none" and norm != "none"
            if ours:
                q = rng.uniform(0, 1)
                hard = 0.4 + 0.6 * q
                rho = {"up": 0.95 - 0.9 * q, "down": 0.05 + 0.9 * q, "label": 0.5, "noise": rng.uniform(0.05, 0.95)}[kind]
            else:
                hard = rng.uniform(0.0, 0.45)
                rho = {"up": 1.2, "down": 1.2, "label": 1.2, "noise": rng.uniform(0.05, 1.2)}[kind]
            sens = 0.1 if ours or kind == "noise" else None if recall != "none" else 0.0  # None: unreachable
            rs.append(record("prefix-sums", recall, norm, seed, hard, rho=rho, moves=recall != "none", sens=sens))
    return rs


def test_c5_supported_when_the_score_ranks_within_the_label():
    v = claims.check_c5(c5_world("up"))
    assert v.verdict == SUPPORTED, v.evidence
    assert v.numbers["spearman_within_recall_outer_norm"] > 0.9
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
    assert v.verdict == SUPPORTED and v.numbers["held_out_runs"] == 36


def test_spearman_matches_pearson_of_ranks_with_ties():
    a = np.array([1.0, 2.0, 2.0, 5.0, 3.0])
    b = np.array([10.0, 30.0, 20.0, 50.0, 40.0])
    ra = np.array([0, 1.5, 1.5, 4, 3])
    rb = np.array([0, 2, 1, 4, 3])
    assert claims.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert math.isnan(claims.spearman(np.ones(4), np.arange(4.0)))


def test_stability_score_is_the_contraction_of_input_dependent_fixed_points():
    assert claims.stability_score(record("t", "input", "layernorm", 0, 1.0, rho=0.25)) == pytest.approx(0.8)
    assert claims.stability_score(record("t", "input", "none", 0, 1.0, rho=1.5)) == pytest.approx(0.4)
    assert claims.stability_score(record("t", "input", "none", 0, 1.0, rho=None)) == 0.0
    assert claims.stability_score(record("t", "input", "none", 0, 1.0, sens=None)) == 0.0  # not measurable
    assert claims.stability_score(record("t", "none", "layernorm", 0, 1.0, rho=0.3, **FROZEN)) == 0.0


def test_report_is_complete_and_json_has_no_nan(tmp_path):
    rs = paper_world(tasks=TASKS[:2]) + paper_world(tasks=("chess",), easy=0.3)
    rs[0]["stability"]["rho_median"] = None
    vs = claims.judge(rs, INTERNAL_WINS)
    write_report(tmp_path, "test", rs, vs, "looped reproduce --budget test")
    text = (tmp_path / "REPORT.md").read_text()
    for v in vs:
        assert f"**{v.claim}**" in text and v.verdict in text
    assert "| chess | **no** |" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rules"] == 2
    assert [v["verdict"] for v in summary["verdicts"]] == [v.verdict for v in vs]
    for v in summary["verdicts"]:
        assert set(v["tasks"]) == set(TASKS) and v["tasks"]["chess"]["learned"] is False
    assert len(summary["runs"]) == len(rs)
    for r in summary["runs"]:
        assert {"seed", "n_eval", "easy_accuracy", "hard_accuracy", "baseline"} <= set(r) and "correct" not in r
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
            assert len(plan.seeds) >= 3 and plan.n_eval >= 1000
            assert not set(plan.seeds) & set(claims.DEV_SEEDS)  # every run held out
            # worst-case CI half-width of a paired difference of accuracies: 1.96 * sqrt(1 / (splits * n))
            assert 1.96 * math.sqrt(1 / (len(plan.hard) * plan.n_eval)) <= 0.05
    sudoku = {p.task: p for p in BUDGETS["cpu"].plans}["sudoku"]
    assert sudoku.steps >= 3000


def test_plan_model_overrides_reach_the_model(tmp_path):
    from looped.reproduce.grid import RunSpec, train
    from looped.tasks import get_task
    from looped.config import model_config

    for budget in BUDGETS.values():
        for plan in budget.plans:
            cfg = model_config(get_task(plan.task), overrides=dict(plan.model))
            assert all(getattr(cfg, k) == v for k, v in plan.model)
    plan = tiny_budget().plans[0]
    spec = RunSpec(plan, "input", "layernorm", 1)
    train(spec, tmp_path / "run", compile=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert {k: config[k] for k, _ in plan.model} == dict(plan.model)
    assert (config["recall"], config["outer_norm"]) == ("input", "layernorm")


def tiny_budget(steps=3):
    from looped.reproduce.budgets import SMALL, Budget, TaskPlan

    return Budget("tiny", analyze_max_iter=10, dense_limit=0, compile=False, plans=(
        TaskPlan("prefix-sums", easy=("8",), hard=("12",), seeds=(1,), steps=steps, batch_size=4, train_iters=2,
                 max_iters=4, n_eval=4, n_analyze=2, model=SMALL),
    ))


def quick_analysis(run, split, n, max_iter, tol, device, dense_limit):
    """A stand-in for ``analyze_run`` with its output's shape (the smoke reproduction runs the real one)."""
    trace = {"t": [1, 2], "r": [0.1, 0.01]}
    return {"n": n, "verdicts": {"reachable": True, "input_dependent": True, "smooth_and_backprop_stable": True},
            "attractors": {"shares": {"fixed point": {"share": 1.0, "ci95": [0.5, 1.0]}},
                           "settled_with_constant_prediction_fraction": 1.0, "multiplier_median": 0.5},
            "reachability": {"state_norm_growth_median": 1.0},
            "input_dependence": {"autonomy_input_dependent": True, "sensitivity_median": 0.1, "distinct_attractors": n},
            "geometry": {"lipschitz_median": 1.0, "cond_median": 2.0, "backward_converged_fraction": 1.0},
            "per_example": {"kind": ["fixed"] * n, "period": [1] * n, "settled_at": [2] * n, "multiplier": [0.5] * n,
                            "prediction_since": [1] * n},
            "traces": {"one_step": [trace] * n, "k_step": [trace] * n}}


def test_grid_resumes_and_skips_finished_runs(tmp_path, monkeypatch):
    from looped.reproduce import grid as grid_module
    from looped.reproduce import reproduce
    from looped.reproduce.grid import RECORD, grid

    monkeypatch.setattr(grid_module, "analyze_run", quick_analysis)
    tiny = tiny_budget()
    vs = reproduce(tiny, tmp_path, progress=False)
    assert [v.claim for v in vs] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    names = [s.name for s in grid(tiny)]
    assert len(names) == 7 and all((tmp_path / "runs" / n / RECORD).exists() for n in names)
    base = json.loads((tmp_path / "runs" / "prefix-sums-fixed-s1" / RECORD).read_text())
    assert base["baseline"] and base["eval_iters"] == 2 and base["stability"] is None
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
    from looped.reproduce.grid import evaluation, grid, train
    from looped.training import Trainer

    spec = grid(tiny_budget(steps=4))[0]
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
    whole, cut = evaluation(tmp_path / "whole", spec), evaluation(tmp_path / "cut", spec)
    assert [e["results"] for e in whole] == [e["results"] for e in cut]


def test_the_reproduction_evaluates_as_looped_eval_does(tmp_path, capsys):
    """A run's eval files are ``looped eval``'s JSON with halting off and on, on the same examples;
    the per-example outcomes the record keeps agree with its curves."""
    from looped import cli
    from looped.reproduce.grid import evaluation, grid, make_record, train

    spec = grid(tiny_budget(steps=4))[0]
    plan, run = spec.plan, tmp_path / "run"
    train(spec, run, compile=False)
    full, halted = evaluation(run, spec)
    splits = ",".join(plan.easy + plan.hard)
    for result, halting in ((full, "off"), (halted, "on")):
        assert cli.main(["eval", str(run), "--split", splits, "--n", str(plan.n_eval), "--max-iters", str(spec.eval_iters),
                         "--halting", halting, "--json", "--quiet", "--out", str(tmp_path / halting)]) == 0
        by_cli = json.loads(capsys.readouterr().out)
        assert [r.pop("correct_by_iteration", None) is not None for r in result["results"]] == [halting == "off"] * 2
        assert by_cli == result
    record = make_record(spec, *evaluation(run, spec), analysis=None)
    for s in plan.easy + plan.hard:
        ok = [c == "1" for c in record["correct"][s]]
        assert len(ok) == plan.n_eval and record["curves"][s][-1] == pytest.approx(sum(ok) / len(ok))
    (h,) = plan.hard
    at_n = [c == "1" for c in record["correct_at_train_depth"][h]]
    assert record["hard_accuracy_at_train_depth"] == pytest.approx(sum(at_n) / len(at_n))
    assert record["hard_halting_accuracy"] == halted["results"][1]["final_accuracy"]


def test_a_run_whose_loss_diverges_keeps_its_last_checkpoint(tmp_path, monkeypatch):
    from looped import runs
    from looped.reproduce.grid import DIVERGED, grid, train
    from looped.training import Trainer

    spec = grid(tiny_budget(steps=4))[0]
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
