"""The paper's claims under rules v3, each judged from run records (``grid.make_record``), never by hand.

The rules were declared in issue 41 before any run they judge; they are implemented here as written.

**Runs.** Prefix sums, sudoku and chess (this project's offline data; the paper's sets cannot be
fetched). The paper's block (``--arch paper``) at the budget's sizes. Variants: recall {none,
external, internal} x norm {pre, peri, post} (plus GRU + peri where a budget adds it), and the
15-block fixed-depth baseline, per task and seed. "Outer normalization" is ``post``.

**Development, then held out.** Seeds ``DEV_SEEDS`` choose the learning rate and the steps per task
(``budgets.py`` records the choices); only held-out runs (other seeds) are judged.

**Metrics.** Hard accuracy at the evaluation cap ``T_max``, halting off, averaged over the task's hard
splits, per-example correctness kept. Best-over-iterations and halting accuracy are reported, never
judged. Stability on easy data only, with the attractor-aware toolkit (``looped analyze``).

**Uncertainty.** For a difference A - B on a task: the seed-averaged difference with a ``CI_LEVEL``
percentile interval from a two-level bootstrap (resample the pairing units, seeds or (recall, seed),
then examples within each, paired; ``BOOTSTRAP`` resamples). *Clearly above 0*: the lower end is
above 0 and A is ahead on at least ``SEED_SHARE`` of the units; *clearly below 0*: the mirror image.
"A > B" *holds* when A - B is clearly above 0, *fails* when the point estimate is at or below 0, and is
*unclear* otherwise.

**Power.** A task is *learned* when its best variant's seed-mean easy accuracy at ``T_max`` is at
least ``LEARNED_EASY``. Claims are judged on learned tasks only; none learned means **no power**.

**Verdicts.** **Supported** when every part holds on every learned task; **not supported** when a part
fails on some learned task; **inconclusive** otherwise.

* **C1** (no recall). Stability: in at least ``STABLE_SHARE`` of no-recall runs the median IFT
  sensitivity of the attractor to the input is below the map's precision (under ``FAIL_SHARE``: fails).
  Accuracy: best recall variant > best no-recall variant. Reported: each no-recall variant's accuracy
  at the training depth against ``T_max``.
* **C2** (recall + outer norm is stable). Stability: at least ``STABLE_SHARE`` of recall + post runs pass
  all three ``looped analyze`` verdicts (under ``FAIL_SHARE`` fails). Accuracy: the best recall + post
  variant is not clearly below the best other looped variant.
* **C3** (outer norm matters). Per learned task: the share of recall runs that are unstable (not
  reachable, or state norm growing at least ``GROWTH_LIMIT``x over the analysis budget) with pre or peri
  exceeds the share with post by at least ``C3_UNSTABLE_GAP``; and post - pre and post - peri (paired by
  recall and seed) both hold as "> 0".
* **C4** (internal recall). With post: internal - external is not clearly below 0 on any learned task,
  and internal > external holds on sudoku (sudoku not learned: no power).
* **C5** (a stability score from easy data predicts hard accuracy). Spearman, over held-out runs, of
  the frozen ``stability_score`` against hard accuracy as a fraction of the task's best run, beside the
  label baseline (1 for recall + post, else 0). Supported when the score's Spearman is at least
  ``C5_MIN_SPEARMAN`` and the bootstrap interval (over runs) of score minus label lies above 0; not
  supported when it lies below 0 or the score's own interval lies below ``C5_FLOOR``; else inconclusive.
* **C6** (iterating beats depth). Best recall + post at ``T_max`` > the fixed-depth baseline, every
  learned task.

Where the rules leave a choice, the stricter reading is taken: "best A > best B" must hold against every
B variant (the A variant with the highest seed mean must clearly beat each) and fails when its point
estimate against the best B is at or below 0; share parts count learned tasks only; a run whose
sensitivity or stability was not measurable (nothing settled) counts against the part that needs it
(not below the precision for C1, not passing for C2, unstable for C3); the baseline enters only C6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import stats
from .budgets import DEV_SEEDS

RULES = 3
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NO_POWER = "supported", "not supported", "inconclusive", "no power"
HOLDS, FAILS, UNCLEAR = "holds", "fails", "unclear"

LEARNED_EASY = 0.5
BOOTSTRAP = 2000
CI_LEVEL = 0.95
BOOTSTRAP_SEED = 0
SEED_SHARE = 2 / 3
STABLE_SHARE = 0.8
FAIL_SHARE = 0.5
GROWTH_LIMIT = 10.0
C3_UNSTABLE_GAP = 0.5
C5_MIN_SPEARMAN = 0.5
C5_FLOOR = 0.3
OUTER = "post"  # the paper's outer normalization (docs/paper.md)


def recall_outer(r: dict) -> bool:
    return r["recall"] != "none" and r["norm"] == OUTER and r.get("residual", "add") == "add"


@dataclass
class Verdict:
    claim: str
    statement: str
    verdict: str
    evidence: str
    tasks: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)


# ---- records -------------------------------------------------------------------------------------------

def grid_runs(records: list[dict]) -> list[dict]:
    return [r for r in records if not r.get("baseline")]


def tasks_of(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["task"] for r in records))


def variant(r: dict) -> tuple[str, str, str]:
    return r["recall"], r["norm"], r.get("residual", "add")


def variants(records: list[dict], task: str) -> dict[tuple[str, str, str], dict[int, dict]]:
    """Grid runs of ``task`` by (recall, norm, residual), then by seed."""
    out: dict = {}
    for r in grid_runs(records):
        if r["task"] == task:
            out.setdefault(variant(r), {})[r["seed"]] = r
    return out


def baselines(records: list[dict], task: str) -> dict[int, dict]:
    return {r["seed"]: r for r in records if r.get("baseline") and r["task"] == task}


def seed_mean(runs: dict[int, dict], key: str = "hard_accuracy") -> float:
    return float(np.mean([r[key] for r in runs.values()]))


def learned(records: list[dict], task: str) -> tuple[bool, float]:
    """(learned?, mean over seeds of the best variant's easy accuracy at T_max)."""
    best = max((seed_mean(v, "easy_accuracy") for v in variants(records, task).values()), default=0.0)
    return best >= LEARNED_EASY, best


def learned_tasks(records: list[dict]) -> list[str]:
    return [t for t in tasks_of(records) if learned(records, t)[0]]


def outcomes(r: dict, split: str) -> np.ndarray:
    """Per-example correctness (0/1) of run ``r`` on ``split`` at its judged iteration."""
    return np.frombuffer(r["correct"][split].encode(), dtype=np.uint8).astype(float) - 48.0


# ---- paired comparisons --------------------------------------------------------------------------------

@dataclass
class Comparison:
    """A - B over paired units (seeds, or (recall, seed) pairs)."""

    diff: float
    ci: tuple[float, float]
    ahead: float
    behind: float
    pairs: int
    per_unit: list[float] = field(default_factory=list)

    @property
    def clearly_above(self) -> bool:
        return self.ci[0] > 0 and self.ahead >= SEED_SHARE

    @property
    def clearly_below(self) -> bool:
        return self.ci[1] < 0 and self.behind >= SEED_SHARE

    def greater(self) -> str:
        """The prediction "A > B": holds, fails or unclear."""
        if self.clearly_above:
            return HOLDS
        return FAILS if self.diff <= 0 else UNCLEAR

    def as_dict(self) -> dict:
        return {"diff": self.diff, "ci": list(self.ci), "ahead": self.ahead, "behind": self.behind,
                "pairs": self.pairs, "per_unit": self.per_unit}


def compare(pairs: list[tuple[dict, dict]]) -> Comparison | None:
    """Hard accuracy A - B averaged over the paired units, with a two-level bootstrap interval (units, then
    examples within each unit, the same examples for A and B). None: no pairs."""
    if not pairs:
        return None
    splits = pairs[0][0]["hard"]
    diffs = [[outcomes(a, s) - outcomes(b, s) for s in splits] for a, b in pairs]
    point = float(np.mean([np.mean([d.mean() for d in unit]) for unit in diffs]))
    ci = stats.interval(stats.two_level_means(diffs, BOOTSTRAP, BOOTSTRAP_SEED), CI_LEVEL)
    per_unit = [a["hard_accuracy"] - b["hard_accuracy"] for a, b in pairs]
    return Comparison(point, ci, float(np.mean(np.array(per_unit) > 0)), float(np.mean(np.array(per_unit) < 0)),
                      len(pairs), per_unit)


def by_seed(a: dict[int, dict], b: dict[int, dict]) -> list[tuple[dict, dict]]:
    return [(a[s], b[s]) for s in sorted(a) if s in b]


def best_of(vs: dict, keys: list) -> tuple:
    return max(keys, key=lambda k: seed_mean(vs[k]))


def best_beats_all(records: list[dict], task: str, is_a, is_b) -> dict:
    """"Best A variant > best B variant", read strictly (module docstring)."""
    vs = variants(records, task)
    a_keys, b_keys = [k for k in vs if is_a(*k)], [k for k in vs if is_b(*k)]
    if not a_keys or not b_keys:
        return {"status": UNCLEAR, "note": "variants missing"}
    a, b = best_of(vs, a_keys), best_of(vs, b_keys)
    against = {k: compare(by_seed(vs[a], vs[k])) for k in b_keys}
    if any(c is None for c in against.values()):
        return {"status": UNCLEAR, "note": "no paired seeds"}
    best = against[b]
    status = FAILS if best.diff <= 0 else HOLDS if all(c.clearly_above for c in against.values()) else UNCLEAR
    return {"status": status, "a": "/".join(a), "b": "/".join(b), "a_mean": seed_mean(vs[a]), "b_mean": seed_mean(vs[b]),
            **best.as_dict()}


def combine(parts: list[str], any_learned: bool) -> str:
    if not any_learned:
        return NO_POWER
    if parts and all(p == HOLDS for p in parts):
        return SUPPORTED
    if FAILS in parts:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def share_status(share: float) -> str:
    if math.isnan(share):
        return UNCLEAR
    return HOLDS if share >= STABLE_SHARE else FAILS if share < FAIL_SHARE else UNCLEAR


def task_table(records: list[dict], judged: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for t in tasks_of(records):
        ok, easy = learned(records, t)
        out[t] = {"learned": ok, "best_easy_accuracy": easy, **judged.get(t, {})}
    return out


def _ci(p: dict) -> str:
    if "diff" not in p:
        return f"{p['status']} ({p.get('note', '')})"
    units = ", ".join(f"{v:+.3f}" for v in p.get("per_unit", []))
    return f"{p['diff']:+.3f} [{p['ci'][0]:+.3f}, {p['ci'][1]:+.3f}] ({p['status']}; per seed {units})"


def _tasks_line(table: dict, describe) -> str:
    return "; ".join(f"{t}: {describe(p)}" if p["learned"] else f"{t}: not learned (easy {p['best_easy_accuracy']:.2f})"
                     for t, p in table.items())


# ---- stability ------------------------------------------------------------------------------------------

def below_precision(r: dict) -> bool:
    """C1: the run's median IFT sensitivity of the attractor is below the map's precision (not measurable: no)."""
    s = r["stability"]
    sens, prec = s.get("sensitivity_median"), s.get("precision_median")
    return sens is not None and prec is not None and sens < prec


def input_dependent(r: dict) -> bool:
    """The median IFT sensitivity of the attractor is measured and above the map's precision."""
    s = r["stability"]
    sens, prec = s.get("sensitivity_median"), s.get("precision_median")
    return sens is not None and prec is not None and sens >= prec


def passes_all(r: dict) -> bool:
    return all(r["stability"]["verdicts"].values())


def unstable(r: dict) -> bool:
    """C3: not reachable, or the state norm grows at least GROWTH_LIMIT times (not measurable: unstable)."""
    s = r["stability"]
    growth = s.get("state_norm_growth")
    return not s["verdicts"]["reachable"] or growth is None or growth >= GROWTH_LIMIT


def stability_score(r: dict) -> float:
    """The C5 score in [0, 1], from the easy-data analysis only: the share of examples that settle into an
    attractor with a constant prediction, times ``1 / (1 + median multiplier)`` when the attractor depends on
    the input (median sensitivity above the map's precision), else 0. Candidate, to be frozen on the
    development runs before the held-out run."""
    s = r["stability"]
    if not input_dependent(r) or s.get("multiplier_median") is None:
        return 0.0
    return s["settled_fraction"] / (1.0 + s["multiplier_median"])


# ---- claims ---------------------------------------------------------------------------------------------

def _share(records: list[dict], select, passes) -> tuple[list[str], list[bool], float]:
    tasks = learned_tasks(records)
    ok = [passes(r) for r in grid_runs(records) if r["task"] in tasks and select(r)]
    return tasks, ok, float(np.mean(ok)) if ok else math.nan


def _best_minus_best(p: dict) -> str:
    """One task's accuracy comparison in words: ``A - B`` and its interval."""
    return f"{p['accuracy'].get('a', '')} - {p['accuracy'].get('b', '')} " + _ci(p["accuracy"])


def check_c1(records: list[dict]) -> Verdict:
    tasks, ok, share = _share(records, lambda r: r["recall"] == "none", below_precision)
    judged = {t: {"accuracy": best_beats_all(records, t, lambda rc, n, res: rc != "none", lambda rc, n, res: rc == "none"),
                  "depth": no_recall_depth(records, t)} for t in tasks}
    parts = [share_status(share)] + [p["accuracy"]["status"] for p in judged.values()]
    table = task_table(records, judged)
    evidence = (f"{sum(ok)}/{len(ok)} no-recall runs of learned tasks have a median attractor sensitivity below the "
                f"map's precision ({share_status(share)}); best recall minus best no-recall variant, hard accuracy at "
                "T_max: " + _tasks_line(table, _best_minus_best))
    return Verdict("C1", C1_STATEMENT, combine(parts, bool(tasks)), evidence, table,
                   {"below_precision_share": share, "runs": len(ok)})


C1_STATEMENT = "Without recall, attractors do not depend on the input, and such models extrapolate worse than with recall."


def no_recall_depth(records: list[dict], task: str) -> list[dict]:
    """Each no-recall variant's seed-mean hard accuracy at the training depth and at T_max (reported only)."""
    return [{"variant": "/".join(k), "at_train_depth": seed_mean(v, "hard_accuracy_at_train_depth"),
             "at_t_max": seed_mean(v)} for k, v in variants(records, task).items() if k[0] == "none"]


def check_c2(records: list[dict]) -> Verdict:
    tasks, ok, share = _share(records, recall_outer, passes_all)
    judged = {}
    for t in tasks:
        best = best_beats_all(records, t, lambda rc, n, res: rc != "none" and n == OUTER and res == "add",
                              lambda rc, n, res: not (rc != "none" and n == OUTER and res == "add"))
        if "diff" in best:
            below = best["ci"][1] < 0 and best["behind"] >= SEED_SHARE
            best = {**best, "status": FAILS if below else HOLDS}
        judged[t] = {"accuracy": best}
    parts = [share_status(share)] + [p["accuracy"]["status"] for p in judged.values()]
    table = task_table(records, judged)
    evidence = (f"{sum(ok)}/{len(ok)} recall + post runs of learned tasks pass all three `looped analyze` verdicts "
                f"({share_status(share)}); best recall + post minus best other looped variant (must not be clearly "
                "below 0): " + _tasks_line(table, _best_minus_best))
    return Verdict("C2", C2_STATEMENT, combine(parts, bool(tasks)), evidence, table, {"stable_share": share, "runs": len(ok)})


C2_STATEMENT = "Recall with outer normalization is reachable, input-dependent and smooth, and extrapolates at least as well as any other looped variant."


def check_c3(records: list[dict]) -> Verdict:
    tasks, judged = learned_tasks(records), {}
    for t in tasks:
        vs = variants(records, t)
        recall_runs = [r for k, v in vs.items() if k[0] != "none" and k[2] == "add" for r in v.values()]
        without = [unstable(r) for r in recall_runs if r["norm"] in ("pre", "peri")]
        with_ = [unstable(r) for r in recall_runs if r["norm"] == OUTER]
        if not without or not with_:
            judged[t] = {"instability": {"status": UNCLEAR, "note": "runs missing"}}
            continue
        gap = float(np.mean(without)) - float(np.mean(with_))
        entry = {"instability": {"status": HOLDS if gap >= C3_UNSTABLE_GAP else FAILS if gap <= 0 else UNCLEAR,
                                 "unstable_without": float(np.mean(without)), "unstable_with": float(np.mean(with_)),
                                 "gap": gap}}
        for other in ("pre", "peri"):
            pairs = [(vs[(rc, OUTER, "add")][s], vs[(rc, other, "add")][s]) for rc in ("external", "internal")
                     if (rc, OUTER, "add") in vs and (rc, other, "add") in vs
                     for s in sorted(vs[(rc, OUTER, "add")]) if s in vs[(rc, other, "add")]]
            c = compare(pairs)
            entry[f"post_minus_{other}"] = {"status": UNCLEAR, "note": "no pairs"} if c is None else \
                {"status": c.greater(), **c.as_dict()}
        judged[t] = entry
    parts = [p[k]["status"] for p in judged.values() for k in p]
    table = task_table(records, judged)
    evidence = ("per learned task, unstable share of recall runs with pre or peri vs with post (not reachable or norm "
                f"growth >= {GROWTH_LIMIT:g}x; need a gap >= {C3_UNSTABLE_GAP:.0%}), and post minus pre / post minus "
                "peri paired by recall and seed: " + _tasks_line(table, lambda p: (
                    f"{p['instability'].get('unstable_without', math.nan):.0%} vs "
                    f"{p['instability'].get('unstable_with', math.nan):.0%} ({p['instability']['status']}); "
                    f"post - pre {_ci(p.get('post_minus_pre', {'status': UNCLEAR}))}; "
                    f"post - peri {_ci(p.get('post_minus_peri', {'status': UNCLEAR}))}")))
    return Verdict("C3", C3_STATEMENT, combine(parts, bool(tasks)), evidence, table)


C3_STATEMENT = "With recall, outer normalization (post) makes the loop more stable and extrapolate better than pre or peri norms."


def check_c4(records: list[dict], internal_wins: frozenset[str]) -> Verdict:
    tasks, judged = learned_tasks(records), {}
    for t in tasks:
        vs = variants(records, t)
        c = compare(by_seed(vs.get(("internal", OUTER, "add"), {}), vs.get(("external", OUTER, "add"), {})))
        if c is None:
            judged[t] = {"internal_minus_external": {"status": UNCLEAR, "note": "no pairs"}}
            continue
        status = c.greater() if t in internal_wins else (FAILS if c.clearly_below else HOLDS)
        judged[t] = {"internal_minus_external": {"status": status, **c.as_dict()}}
    parts = [p["internal_minus_external"]["status"] for p in judged.values()]
    table = task_table(records, judged)
    powered = bool(internal_wins & set(tasks))
    strict = ", ".join(sorted(internal_wins)) or "no task"
    evidence = (f"internal minus external recall (both with post), hard accuracy at T_max; not clearly below 0 anywhere, "
                f"clearly above 0 on {strict}: " + _tasks_line(table, lambda p: _ci(p["internal_minus_external"])))
    if not powered:
        evidence = f"{strict} not learned, so C4 has no power; " + evidence
    return Verdict("C4", f"With outer normalization, internal recall is at least as good as external recall, and better "
                         f"on {strict}.", combine(parts, powered), evidence, table)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(_spearman_rows(np.asarray(a, float)[None], np.asarray(b, float)[None])[0])


def _ranks(v: np.ndarray) -> np.ndarray:
    less = (v[..., None, :] < v[..., :, None]).sum(-1)
    equal = (v[..., None, :] == v[..., :, None]).sum(-1)
    return less + (equal - 1) / 2


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    den = np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def spearman_bootstrap(score: np.ndarray, label: np.ndarray, rel: np.ndarray) -> dict:
    """Percentile intervals over resampled runs of Spearman(score, rel), Spearman(label, rel) and their
    difference; a resample with a constant side is dropped; under half valid: NaN intervals."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, len(rel), (BOOTSTRAP, len(rel)))
    s, lab = _spearman_rows(score[idx], rel[idx]), _spearman_rows(label[idx], rel[idx])
    valid = ~(np.isnan(s) | np.isnan(lab))
    if valid.sum() < BOOTSTRAP / 2:
        return {k: [math.nan, math.nan] for k in ("score_ci", "label_ci", "diff_ci")} | {"valid_resamples": int(valid.sum())}
    cis = [list(stats.interval(col, CI_LEVEL)) for col in (s[valid], lab[valid], s[valid] - lab[valid])]
    return {"score_ci": cis[0], "label_ci": cis[1], "diff_ci": cis[2], "valid_resamples": int(valid.sum())}


def relative_hard_accuracy(records: list[dict]) -> list[float]:
    best = {t: max(r["hard_accuracy"] for r in records if r["task"] == t) for t in tasks_of(records)}
    return [r["hard_accuracy"] / best[r["task"]] if best[r["task"]] > 0 else 0.0 for r in records]


def c5_runs(records: list[dict]) -> list[dict]:
    tasks = learned_tasks(records)
    return [r for r in grid_runs(records) if r["task"] in tasks and r["seed"] not in DEV_SEEDS]


def check_c5(records: list[dict]) -> Verdict:
    tasks, held = learned_tasks(records), c5_runs(records)
    table = task_table(records, {t: {"held_out_runs": sum(r["task"] == t for r in held)} for t in tasks})
    if not held:
        return Verdict("C5", C5_STATEMENT, NO_POWER, "no held-out run of a learned task", table)
    rel = np.array(relative_hard_accuracy(held))
    score = np.array([stability_score(r) for r in held])
    label = np.array([float(recall_outer(r)) for r in held])
    rho, rho_label = spearman(score, rel), spearman(label, rel)
    boot = spearman_bootstrap(score, label, rel)
    lo, hi = boot["diff_ci"]
    if rho >= C5_MIN_SPEARMAN and lo > 0:
        verdict = SUPPORTED
    elif hi < 0 or boot["score_ci"][1] < C5_FLOOR:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    sc, dc = boot["score_ci"], boot["diff_ci"]
    evidence = (f"on {len(held)} held-out runs of learned tasks ({', '.join(tasks)}), Spearman with hard accuracy / task "
                f"best: stability score {rho:.2f} [{sc[0]:.2f}, {sc[1]:.2f}], label (recall + post) {rho_label:.2f}; "
                f"score minus label {rho - rho_label:+.2f} [{dc[0]:+.2f}, {dc[1]:+.2f}]")
    return Verdict("C5", C5_STATEMENT, verdict, evidence, table,
                   {"spearman_score": rho, "spearman_label": rho_label, "held_out_runs": len(held), **boot})


C5_STATEMENT = "A stability score computed from easy data only predicts hard accuracy beyond the architecture label."


def check_c6(records: list[dict]) -> Verdict:
    tasks, judged = learned_tasks(records), {}
    for t in tasks:
        vs, base = variants(records, t), baselines(records, t)
        ours = [k for k in vs if k[0] != "none" and k[1] == OUTER and k[2] == "add"]
        if not ours or not base:
            judged[t] = {"over_fixed_depth": {"status": UNCLEAR, "note": "runs missing"}}
            continue
        best = best_of(vs, ours)
        c = compare(by_seed(vs[best], base))
        judged[t] = {"over_fixed_depth": {"status": c.greater() if c else UNCLEAR, "a": "/".join(best),
                                          "a_mean": seed_mean(vs[best]), "baseline_mean": seed_mean(base),
                                          **(c.as_dict() if c else {})}}
    parts = [p["over_fixed_depth"]["status"] for p in judged.values()]
    table = task_table(records, judged)
    evidence = ("best recall + post variant at T_max minus the 15-block fixed-depth baseline: "
                + _tasks_line(table, lambda p: f"{p['over_fixed_depth'].get('a', '')} " + _ci(p["over_fixed_depth"])))
    return Verdict("C6", C6_STATEMENT, combine(parts, bool(tasks)), evidence, table)


C6_STATEMENT = "Test-time compute beats depth: the best recall + post loop at T_max beats a 15-block fixed-depth transformer."


def judge(records: list[dict], internal_wins: frozenset[str]) -> list[Verdict]:
    """Every claim's verdict. ``internal_wins``: the tasks on which C4 needs internal > external."""
    return [check_c1(records), check_c2(records), check_c3(records), check_c4(records, internal_wins),
            check_c5(records), check_c6(records)]
