"""``looped analyze``: the stability toolkit applied to a trained run, with one verdict per axis.

Verdict thresholds (documented in docs/stability.md; change them here only):

* **reachable**: at least ``REACH_FRACTION`` of samples reach relative residual ``tol`` within
  ``max_iter`` steps, and the median ``rho(J_h)`` at the fixed point is below 1.
* **input-dependent**: with ``h_0`` held fixed, changing ``x`` moves ``h*`` (relative change above
  ``AGREE``), the median IFT sensitivity is above ``MIN_SENSITIVITY``, and the inputs give at
  least ``DISTINCT_FRACTION`` as many distinct fixed points as there are inputs.
* **smooth and backprop-stable**: the median local Lipschitz constant of ``x -> h*`` and the median
  ``cond(I - J_h)`` are below ``MAX_LIPSCHITZ`` and ``MAX_COND``, and the implicit backward solve
  converges for at least ``REACH_FRACTION`` of samples.

Checked against the development reproduction (cpu budget, seeds 0-2) for rules v2 and kept: the
sudoku internal-recall + LayerNorm runs that fail "reachable" there have median ``rho(J_h)`` of
0.95-0.997, a contraction too slow to reach ``tol`` within the solver's 300 steps, so the verdict
reports what it measures; whether their predictions had settled is not in those records (they
hold summaries only), so no prediction-based threshold could be designed on them.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from . import stability
from .io import atomic_write, write_json
from .evaluation import EVAL_SEED_BASE
from .config import pick_device
from .model import Looped
from .runs import Run
from .tasks import InputError, Task

N_EXAMPLES, MAX_ITER, TOL = 16, 500, 1e-5  # the defaults of analyze and `looped analyze`
REACH_FRACTION = 0.9
AGREE = 1e-3
MIN_SENSITIVITY = 1e-3
DISTINCT_FRACTION = 0.5
MAX_LIPSCHITZ = 1e3
MAX_COND = 1e4
LIPSCHITZ_DIRECTIONS = 2  # random input directions of the Lipschitz estimate
BASIN_TRIALS = 3  # random initial states of the basin check


def _median(t: torch.Tensor) -> float:
    t = t.detach().double()
    t = t[torch.isfinite(t)]
    return float(t.median()) if len(t) else math.nan


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def analyze_run(run: Path, split: str | None = None, n: int = N_EXAMPLES, max_iter: int = MAX_ITER, tol: float = TOL,
                seed: int = 0, device: str = "auto", dense_limit: int = 2048) -> dict:
    """``analyze`` on the model of the run directory ``run``; the result also names the run."""
    model, task, _ = Run(run).load(pick_device(device))
    return {"run": str(run), **analyze(model, task, split, n, max_iter, tol, seed, dense_limit)}


def analyze(model: Looped, task: Task, split: str | None = None, n: int = N_EXAMPLES, max_iter: int = MAX_ITER,
            tol: float = TOL, seed: int = 0, dense_limit: int = 2048) -> dict:
    """Every stability metric of the model's fixed points on ``n`` examples of ``split``, in float64.

    Args: split: default the task's first training split; max_iter, tol: the fixed-point solve's
    budget and relative-residual tolerance; dense_limit: state sizes up to this get an exact
    condition number. ``model`` itself is left as it is (a float64 copy is analyzed).
    Returns a JSON-ready dict with ``reachability``, ``input_dependence``, ``geometry`` and ``verdicts``.
    """
    for name, value in (("n", n), ("max_iter", max_iter)):
        if value < 1:
            raise InputError(f"{name} must be positive, got {value}")
    if not tol > 0:
        raise InputError(f"tol must be positive, got {tol}")
    model = copy.deepcopy(model).double().eval()
    sp = task.split(split or task.train_splits[0])
    batch = task.generate(sp, n, seed=EVAL_SEED_BASE + seed)
    dev = next(model.parameters()).device
    positions = task.positions(batch.inputs.shape[1])
    F, h0, x = stability.from_model(model, batch.inputs.to(dev), None if positions is None else positions.to(dev))
    res = stability.fixed_point(F, h0, x, max_iter=max_iter, tol=tol)
    h = res.h
    rho = stability.spectral_radius(F, h, x)
    jnorm = stability.jacobian_norm(F, h, x)
    sens = stability.sensitivity(F, h, x, seed=seed, rho=rho).value
    auto = stability.autonomy_check(F, h0, x, max_iter=max_iter, tol=tol, agree=AGREE)
    final_res = res.residuals.nan_to_num(nan=math.inf).amin(dim=1)
    distinct = stability.count_distinct(h, final_res)
    lip = stability.lipschitz(F, h, x, directions=LIPSCHITZ_DIRECTIONS, max_iter=max_iter, tol=tol)
    cond, exact = stability.condition_number(F, h, x, dense_limit=dense_limit)
    back = stability.backward_stability(F, h, x)
    basin = stability.basins(F, h0, x, trials=BASIN_TRIALS, max_iter=max_iter, tol=tol)
    growth = stability.norm_growth(F, h0, x, max_iter)
    with torch.no_grad():
        pred = task.predict(batch.inputs, model.readout(h).cpu())
    accuracy = task.score(pred, batch.targets).double().mean().item()

    reach_frac = res.reachable.double().mean().item()
    reachable = reach_frac >= REACH_FRACTION and _median(rho) < 1  # NaN compares False
    input_dep = auto.input_dependent and _median(sens) > MIN_SENSITIVITY and distinct >= DISTINCT_FRACTION * n
    back_frac = back.converged.double().mean().item()
    smooth = _median(lip) < MAX_LIPSCHITZ and _median(cond) < MAX_COND and back_frac >= REACH_FRACTION
    return {
        "task": task.name,
        "split": sp.name,
        "n": n,
        "tol": tol,
        "max_iter": max_iter,
        "accuracy_at_fixed_point": accuracy,
        "reachability": {
            "reachable_fraction": reach_frac,
            "median_steps": _median(res.steps[res.reachable].double()) if res.reachable.any() else None,
            "median_decay_rate": _finite_or_none(_median(stability.decay_rate(res))),
            "rho_median": _finite_or_none(_median(rho)),
            "rho_max": _finite_or_none(float(rho.max())),
            "jacobian_norm_median": _finite_or_none(_median(jnorm)),
            "same_basin_fraction": basin.same_basin.double().mean().item(),
            "state_norm_growth_median": _finite_or_none(float(growth.double().median())),  # inf: diverged
        },
        "input_dependence": {
            "sensitivity_median": _finite_or_none(_median(sens)),
            "autonomy_input_dependent": auto.input_dependent,
            "autonomy_max_change": _finite_or_none(auto.max_change),
            "distinct_fixed_points": distinct,
            "distinct_fixed_points_fixed_h0": auto.distinct,
        },
        "geometry": {
            "lipschitz_median": _finite_or_none(_median(lip)),
            "cond_median": _finite_or_none(_median(cond)),
            "cond_exact": exact,
            "backward_converged_fraction": back_frac,
            "unrolled_gradient_growth_median": _finite_or_none(_median(back.unrolled_growth)),
        },
        "verdicts": {"reachable": reachable, "input_dependent": input_dep, "smooth_and_backprop_stable": smooth},
        "traces": {"relative_residual": [[_finite_or_none(float(v)) for v in row] for row in res.relative]},
        "per_sample": {"rho": [_finite_or_none(float(v)) for v in rho], "sensitivity": [_finite_or_none(float(v)) for v in sens]},
    }


def verdict_lines(r: dict) -> list[str]:
    """One line per axis, each with its numbers and thresholds."""
    a, i, g, v = r["reachability"], r["input_dependence"], r["geometry"], r["verdicts"]
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    return [
        f"reachable? {yes(v['reachable'])}: {a['reachable_fraction']:.0%} of samples reach residual {r['tol']:g} "
        f"(need {REACH_FRACTION:.0%}); median rho(J_h) = {_fmt(a['rho_median'])} (need < 1)",
        f"input-dependent? {yes(v['input_dependent'])}: h* moves with x at fixed h0: {yes(i['autonomy_input_dependent'])} "
        f"(max change {_fmt(i['autonomy_max_change'])}, need > {AGREE:g}); median sensitivity "
        f"{_fmt(i['sensitivity_median'])} (need > {MIN_SENSITIVITY:g}); {i['distinct_fixed_points']} distinct fixed points "
        f"for {r['n']} inputs (need >= {DISTINCT_FRACTION:.0%})",
        f"smooth and backprop-stable? {yes(v['smooth_and_backprop_stable'])}: median Lipschitz {_fmt(g['lipschitz_median'])} "
        f"(need < {MAX_LIPSCHITZ:g}); median cond(I - J_h) {_fmt(g['cond_median'])} (need < {MAX_COND:g}); backward solve "
        f"converges for {g['backward_converged_fraction']:.0%} (need {REACH_FRACTION:.0%})",
    ]


def _fmt(v: float | None) -> str:
    return "n/a (unreachable)" if v is None else f"{v:.3g}"


def write_report(r: dict, out: Path) -> None:
    """``analysis.json``, ``analysis.md`` and PNG plots under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "analysis.json", r)
    lines = [f"# Stability analysis: {r['run']}", "", f"Task `{r['task']}`, split `{r['split']}`, {r['n']} samples.", ""]
    lines += [f"- {line}" for line in verdict_lines(r)]
    lines += ["", "| metric | value |", "|---|---|"]
    for axis in ("reachability", "input_dependence", "geometry"):
        for k, v in r[axis].items():
            lines.append(f"| {axis}.{k} | {v if not isinstance(v, float) else f'{v:.4g}'} |")
    lines += ["", "![residuals](residuals.png) ![rho](rho.png) ![sensitivity](sensitivity.png)", ""]
    atomic_write(out / "analysis.md", lambda tmp: Path(tmp).write_text("\n".join(lines)))
    _plots(r, out)


def _plots(r: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in r["traces"]["relative_residual"]:
        ys = [v for v in row if v is not None]
        ax.plot(range(1, len(ys) + 1), ys, alpha=0.4, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("relative residual")
    ax.set_title("fixed-point residual per sample")
    fig.tight_layout()
    atomic_write(out / "residuals.png", lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    for key, name, label in (("rho", "rho.png", r"$\rho(J_h)$"), ("sensitivity", "sensitivity.png", "IFT sensitivity")):
        vals = [v for v in r["per_sample"][key] if v is not None and math.isfinite(v)]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.hist(vals, bins=20)
        if key == "rho":
            ax.axvline(1.0, color="k", ls="--", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("samples")
        fig.tight_layout()
        atomic_write(out / name, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
        plt.close(fig)
