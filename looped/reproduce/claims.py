"""The paper's claims, each judged from run records (``grid.make_record``), never written by hand.

Every check returns a ``Verdict``: ``supported``, ``not supported`` or ``inconclusive``, with the
numbers behind it. Accuracy differences count only beyond ``margin(records)``: two standard
errors of an accuracy near 50% on the smallest hard evaluation set (``1 / sqrt(n)``). "Hard
accuracy" is a run's best accuracy over iterations, averaged over the task's hard splits.

* **C1** supported: at least 80% of no-recall runs have input-independent fixed points (no move
  at fixed ``h_0``, IFT sensitivity below ``MIN_SENSITIVITY``) and, on every task, the best
  no-recall variant is below the best recall variant by more than the margin. Not supported:
  under 50% are input-independent, or on some task a no-recall variant clearly extrapolates
  (above the margin) and is within the margin of recall.
* **C2** supported: at least 80% of recall + outer-norm runs pass all three ``looped analyze``
  verdicts and, on every task, the best of them extrapolates (above the margin) and is not beaten
  by another variant by more than the margin. Not supported: under 50% pass, or another variant
  wins by more than the margin on some task.
* **C3**, over pairs of runs that differ only in the outer norm: supported when runs without it
  are unstable (norm growth over ``GROWTH_LIMIT``, ``rho >= 1`` or a failing backward solve) at
  least 50 points more often, and outer norm raises hard accuracy by more than the margin on
  average and in 80% of pairs. Not supported: runs without it are unstable less often, or outer
  norm lowers hard accuracy by more than the margin on average.
* **C4**, internal minus input recall (both with outer norm), paired by seed: supported when the
  mean is above minus the margin on every task and, on sudoku, above the margin with every seed
  positive. Not supported: below minus the margin on some task.

**The stability score** (claim C5) is fixed here, before any run, with no fitted parameter. From the
easy-data analysis only, it averages three terms in [0, 1]:

* reach: the share of samples whose iteration converges, if the median ``rho(J_h)`` is below 1 (else 0);
* input: ``min(1, distinct fraction / DISTINCT_FRACTION)`` if the fixed point moves with ``x`` at a
  fixed ``h_0`` and the median IFT sensitivity exceeds ``MIN_SENSITIVITY`` (else 0);
* smooth: the share of converging backward solves, if the median ``cond(I - J_h)`` and Lipschitz
  constant are below ``MAX_COND`` and ``MAX_LIPSCHITZ`` (else 0).

It is judged by the Spearman correlation with hard-split accuracy (as a fraction of the task's
best run) on the held-out seeds (every seed but 0, the seed used while building the toolkit),
with a bootstrap 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..analyze import DISTINCT_FRACTION, MAX_COND, MAX_LIPSCHITZ, MIN_SENSITIVITY, REACH_FRACTION

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
GROWTH_LIMIT = 10.0  # state norm growth over the solver's iterations that counts as unstable
DEV_SEED = 0
BOOTSTRAP = 2000


@dataclass
class Verdict:
    claim: str
    statement: str
    verdict: str
    evidence: str
    numbers: dict = field(default_factory=dict)


def margin(records: list[dict]) -> float:
    return 1.0 / math.sqrt(min(r["n_eval"] for r in records))


def stability_score(r: dict) -> float:
    s = r["stability"]
    reach = s["reachable_fraction"] if _below(s["rho_median"], 1.0) else 0.0
    moves = s["input_dependent_at_fixed_h0"] and not _below(s["sensitivity_median"], MIN_SENSITIVITY, none=True)
    inp = min(1.0, s["distinct_fraction"] / DISTINCT_FRACTION) if moves else 0.0
    smooth_ok = _below(s["cond_median"], MAX_COND) and _below(s["lipschitz_median"], MAX_LIPSCHITZ)
    smooth = s["backward_converged_fraction"] if smooth_ok else 0.0
    return (reach + inp + smooth) / 3


def unstable(r: dict) -> bool:
    """State norm growth, ``rho >= 1`` or a failing backward solve (C3's signs of instability)."""
    s = r["stability"]
    return (not _below(s["state_norm_growth"], GROWTH_LIMIT) or not _below(s["rho_median"], 1.0)
            or s["backward_converged_fraction"] < REACH_FRACTION)


def _below(v: float | None, limit: float, none: bool = False) -> bool:
    """``v < limit``; None (not measurable: diverged or unreachable) counts as ``none``."""
    return none if v is None else v < limit


def variant_means(records: list[dict], task: str) -> dict[tuple[str, str], float]:
    """Mean hard accuracy over seeds per (recall, outer norm) of ``task``."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r["task"] == task:
            groups.setdefault((r["recall"], r["outer_norm"]), []).append(r["hard_accuracy"])
    return {k: float(np.mean(v)) for k, v in groups.items()}


def tasks_of(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["task"] for r in records))


def check_c1(records: list[dict]) -> Verdict:
    m = margin(records)
    nr = [r for r in records if r["recall"] == "none"]
    free = [not r["stability"]["input_dependent_at_fixed_h0"]
            and _below(r["stability"]["sensitivity_median"], MIN_SENSITIVITY, none=True) for r in nr]
    share = float(np.mean(free)) if free else math.nan
    per_task = {}
    for t in tasks_of(records):
        means = variant_means(records, t)
        none_best = max(v for (rc, _), v in means.items() if rc == "none")
        recall_best = max(v for (rc, _), v in means.items() if rc != "none")
        per_task[t] = {"no_recall_best": none_best, "recall_best": recall_best}
    worse = all(p["no_recall_best"] < p["recall_best"] - m for p in per_task.values())
    # refuted where a no-recall model clearly extrapolates (above the margin) and keeps up with recall
    keeps_up = any(p["no_recall_best"] > m and p["no_recall_best"] >= p["recall_best"] - m for p in per_task.values())
    if share >= 0.8 and worse:
        verdict = SUPPORTED
    elif share < 0.5 or keeps_up:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    evidence = (f"{sum(free)}/{len(free)} no-recall runs have input-independent fixed points (h* does not move with x "
                f"at fixed h0, IFT sensitivity < {MIN_SENSITIVITY:g}); hard accuracy, best no-recall vs best recall "
                "variant: " + _pairs(per_task, "no_recall_best", "recall_best") + f" (margin {m:.3f})")
    return Verdict("C1", "Without recall, fixed points do not depend on the input, and such models do not extrapolate.",
                   verdict, evidence, {"input_independent_share": share, "per_task": per_task, "margin": m})


def check_c2(records: list[dict]) -> Verdict:
    m = margin(records)
    rl = [r for r in records if r["recall"] != "none" and r["outer_norm"] != "none"]
    ok = [all(r["stability"]["verdicts"].values()) for r in rl]
    share = float(np.mean(ok)) if ok else math.nan
    per_task = {}
    for t in tasks_of(records):
        means = variant_means(records, t)
        ours = max(v for (rc, nm), v in means.items() if rc != "none" and nm != "none")
        other = max(v for (rc, nm), v in means.items() if rc == "none" or nm == "none")
        per_task[t] = {"recall_outer_norm_best": ours, "other_best": other}
    best = all(p["other_best"] - m <= p["recall_outer_norm_best"] > m for p in per_task.values())
    beaten = any(p["other_best"] > p["recall_outer_norm_best"] + m for p in per_task.values())
    if share >= 0.8 and best:
        verdict = SUPPORTED
    elif share < 0.5 or beaten:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    evidence = (f"{sum(ok)}/{len(ok)} recall + outer-norm runs are judged reachable, input-dependent and smooth on "
                "easy data; hard accuracy, best recall + outer norm vs best other variant: "
                + _pairs(per_task, "recall_outer_norm_best", "other_best") + f" (margin {m:.3f})")
    return Verdict("C2", "Recall with outer norm is reachable, input-dependent and smooth, and extrapolates best.",
                   verdict, evidence, {"stable_share": share, "per_task": per_task, "margin": m})


def check_c3(records: list[dict]) -> Verdict:
    m = margin(records)
    index = {(r["task"], r["recall"], r["outer_norm"], r["seed"]): r for r in records}
    normed = sorted({r["outer_norm"] for r in records} - {"none"})
    plain = [r for r in records if r["recall"] != "none" and r["outer_norm"] == "none"]
    pairs = [(r, index[k]) for r in plain for n in normed
             if (k := (r["task"], r["recall"], n, r["seed"])) in index]
    if not pairs:
        return Verdict("C3", C3_STATEMENT, INCONCLUSIVE, "no matching pairs of runs", {})
    unstable_plain = float(np.mean([unstable(a) for a, _ in pairs]))
    unstable_normed = float(np.mean([unstable(b) for _, b in pairs]))
    diffs = np.array([b["hard_accuracy"] - a["hard_accuracy"] for a, b in pairs])
    positive = float(np.mean(diffs > 0))
    if unstable_plain - unstable_normed >= 0.5 and diffs.mean() > m and positive >= 0.8:
        verdict = SUPPORTED
    elif unstable_plain < unstable_normed or diffs.mean() < -m:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    evidence = (f"over {len(pairs)} pairs (same task, recall and seed): unstable without outer norm {unstable_plain:.0%}, "
                f"with it {unstable_normed:.0%} (norm growth > {GROWTH_LIMIT:g}x, rho >= 1 or backward solve failing); "
                f"hard accuracy gain from outer norm {diffs.mean():+.3f} on average, positive in {positive:.0%} of pairs "
                f"(margin {m:.3f})")
    return Verdict("C3", C3_STATEMENT, verdict, evidence, {
        "pairs": len(pairs), "unstable_without": unstable_plain, "unstable_with": unstable_normed,
        "mean_gain": float(diffs.mean()), "positive_share": positive, "margin": m})


C3_STATEMENT = "Recall without outer norm is less stable and extrapolates worse than with it."


def check_c4(records: list[dict]) -> Verdict:
    m = margin(records)
    per_task = {}
    for t in tasks_of(records):
        by_seed = {}
        for r in records:
            if r["task"] == t and r["outer_norm"] != "none" and r["recall"] in ("input", "internal"):
                by_seed.setdefault(r["seed"], {})[r["recall"]] = r["hard_accuracy"]
        diffs = [d["internal"] - d["input"] for d in by_seed.values() if len(d) == 2]
        if diffs:
            per_task[t] = {"mean_diff": float(np.mean(diffs)), "min_diff": float(min(diffs)), "seeds": len(diffs)}
    if not per_task:
        return Verdict("C4", C4_STATEMENT, INCONCLUSIVE, "no internal/input pairs", {})
    as_good = all(p["mean_diff"] >= -m for p in per_task.values())
    sudoku = per_task.get("sudoku")
    clearly = sudoku is not None and sudoku["mean_diff"] > m and sudoku["min_diff"] > 0
    if as_good and clearly:
        verdict = SUPPORTED
    elif not as_good or (sudoku is not None and sudoku["mean_diff"] < -m):
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    evidence = "hard accuracy, internal minus input recall (both with outer norm), mean (min) over seeds: " + "; ".join(
        f"{t} {p['mean_diff']:+.3f} ({p['min_diff']:+.3f}, {p['seeds']} seeds)" for t, p in per_task.items()
    ) + f" (margin {m:.3f})"
    return Verdict("C4", C4_STATEMENT, verdict, evidence, {"per_task": per_task, "margin": m})


C4_STATEMENT = "With outer norm, internal recall is at least as good as input recall, and clearly better on sudoku."


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = v.argsort(kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=float)
    for value in np.unique(v):
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def bootstrap_ci(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the Spearman correlation over resampled runs."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(BOOTSTRAP):
        idx = rng.integers(0, len(a), len(a))
        s = spearman(a[idx], b[idx])
        if not math.isnan(s):
            stats.append(s)
    if not stats:
        return math.nan, math.nan
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def relative_hard_accuracy(records: list[dict]) -> list[float]:
    best = {t: max(r["hard_accuracy"] for r in records if r["task"] == t) for t in tasks_of(records)}
    return [r["hard_accuracy"] / best[r["task"]] if best[r["task"]] > 0 else 0.0 for r in records]


def check_c5(records: list[dict]) -> Verdict:
    rel = relative_hard_accuracy(records)
    held = [i for i, r in enumerate(records) if r["seed"] != DEV_SEED]
    score = np.array([stability_score(r) for r in records])
    rel = np.array(rel)
    rho_all = spearman(score, rel)
    if len(held) < 4:
        return Verdict("C5", C5_STATEMENT, INCONCLUSIVE, f"only {len(held)} held-out runs", {"spearman_all": rho_all})
    rho = spearman(score[held], rel[held])
    lo, hi = bootstrap_ci(score[held], rel[held])
    if rho >= 0.5 and lo > 0:  # NaN compares False: inconclusive
        verdict = SUPPORTED
    elif hi < 0.3:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    evidence = (f"Spearman(stability score from easy data, hard accuracy / task best) on {len(held)} held-out runs "
                f"(seeds other than {DEV_SEED}): {rho:.2f}, 95% bootstrap CI [{lo:.2f}, {hi:.2f}]; on all "
                f"{len(records)} runs: {rho_all:.2f}")
    return Verdict("C5", C5_STATEMENT, verdict, evidence, {
        "spearman_held_out": rho, "ci": [lo, hi], "held_out_runs": len(held), "spearman_all": rho_all})


C5_STATEMENT = "A stability score computed from easy data only predicts hard-split accuracy across runs."


def _pairs(per_task: dict, a: str, b: str) -> str:
    return "; ".join(f"{t} {p[a]:.3f} vs {p[b]:.3f}" for t, p in per_task.items())


CHECKS = (check_c1, check_c2, check_c3, check_c4, check_c5)


def judge(records: list[dict]) -> list[Verdict]:
    return [check(records) for check in CHECKS]
