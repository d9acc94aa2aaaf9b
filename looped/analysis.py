"""``looped analyze``: the stability toolkit on a trained run, measured on what each orbit settles into,
with one verdict per axis.

Every example's orbit from the model's own ``h_0`` is classified (``stability.attractor``): a fixed
point, a cycle of period k, a slow contraction, no settling, or divergence. Every further number is
measured on the attractor, with the k-step map ``F^k`` at a point of a k-cycle (``F`` itself at a fixed
point), and only for examples that settled; nothing is measured at a transient state.

Verdicts (thresholds here only; docs/stability.md says what each measures):

* **reachable**: at least ``REACH_FRACTION`` of examples settle within ``max_iter`` steps to a fixed
  point or a cycle on which the decoded prediction is constant, and the median multiplier (the spectral
  radius of ``F^period`` there) is below 1: the attractor attracts.
* **input-dependent**: with ``h_0`` held fixed, changing ``x`` moves the attractor (relative distance above
  ``AGREE``, a cycle compared to the nearest of its points); the median IFT sensitivity of the attractor
  point to ``x`` is above ``MIN_SENSITIVITY``; and the inputs settle into at least ``DISTINCT_FRACTION``
  as many distinct attractors as there are settled inputs.
* **smooth and backprop-stable**: the median local Lipschitz constant of ``x -> attractor``, the median
  ``cond(I - J)`` of ``F^period`` at the attractor are below ``MAX_LIPSCHITZ`` and ``MAX_COND``, and the
  implicit backward solve on ``F^period`` converges for at least ``REACH_FRACTION`` of the settled examples.

The default number of examples, 64, keeps the 95% interval of an attractor class's share within
+-0.125 (normal approximation, at a share of one half).
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from pathlib import Path

import torch

from . import stability
from .config import pick_device
from .evaluation import EVAL_SEED_BASE
from .io import atomic_write, write_json
from .model import Looped
from .plotting import pyplot
from .runs import Run
from .tasks import InputError, Task

N_EXAMPLES, MAX_ITER, TOL = 64, 500, 1e-5  # the defaults of analyze and `looped analyze`
REACH_FRACTION = 0.9
AGREE = 1e-3
MIN_SENSITIVITY = 1e-3
DISTINCT_FRACTION = 0.5
MAX_LIPSCHITZ = 1e3
MAX_COND = 1e4
LIPSCHITZ_DIRECTIONS = 2  # random input directions of the Lipschitz estimate
LIPSCHITZ_EPS = 1e-3
BASIN_TRIALS = 2  # random initial states of the basin check
Z95 = 1.96
TRACE_POINTS = 48  # a residual trace in a report keeps this many log-spaced iterations


def _median(t: torch.Tensor) -> float:
    t = t.detach().double()
    t = t[torch.isfinite(t)]
    return float(t.median()) if len(t) else math.nan


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of the share k / n."""
    if n == 0:
        return math.nan, math.nan
    p, z2 = k / n, Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def compact_trace(row: torch.Tensor, points: int = TRACE_POINTS) -> dict:
    """A residual trace at about ``points`` log-spaced iterations: ``{"t": [...], "r": [...]}`` (finite values)."""
    t = torch.unique(torch.logspace(0, math.log10(max(1, len(row))), points).round().long().clamp(1, len(row)))
    keep = [int(i) for i in t if math.isfinite(float(row[i - 1]))]
    return {"t": keep, "r": [float(row[i - 1]) for i in keep]}


def analyze_run(run: Path, split: str | None = None, n: int = N_EXAMPLES, max_iter: int = MAX_ITER, tol: float = TOL,
                seed: int = 0, device: str = "auto", dense_limit: int = 2048,
                max_period: int = stability.MAX_PERIOD) -> dict:
    """``analyze`` on the model of the run directory ``run``; the result also names the run."""
    model, task, _ = Run(run).load(pick_device(device))
    return {"run": str(run), **analyze(model, task, split, n, max_iter, tol, seed, dense_limit, max_period)}


def analyze(model: Looped, task: Task, split: str | None = None, n: int = N_EXAMPLES, max_iter: int = MAX_ITER,
            tol: float = TOL, seed: int = 0, dense_limit: int = 2048, max_period: int = stability.MAX_PERIOD) -> dict:
    """Every stability metric of the model's attractors on ``n`` examples of ``split``, in float64.

    Args: split: default the task's first training split; max_iter, tol: the orbits' budget and the
    relative k-step residual that counts as settled; max_period: the longest cycle looked for;
    dense_limit: state sizes up to this get an exact condition number. ``model`` itself is left as it is
    (a float64 copy is analyzed). Returns a JSON-ready dict: ``attractors``, ``reachability``,
    ``input_dependence``, ``geometry``, ``verdicts`` and per-example ``traces``.
    """
    for name, value in (("n", n), ("max_iter", max_iter), ("max_period", max_period)):
        if value < 1:
            raise InputError(f"{name} must be positive, got {value}")
    if not tol > 0:
        raise InputError(f"tol must be positive, got {tol}")
    model = copy.deepcopy(model).double().eval()
    sp = task.split(split or task.train_splits[0])
    batch = task.generate(sp, n, seed=EVAL_SEED_BASE + seed)
    n = len(batch)
    dev = next(model.parameters()).device
    positions = task.positions(batch.inputs.shape[1])
    inputs = batch.inputs.to(dev)
    F, h0, x = stability.from_model(model, inputs, None if positions is None else positions.to(dev))

    def decode(h, rows):
        return task.predict(inputs[rows], model.readout(h))

    def orbit(start, inputs_x):  # the orbits that only need classifying: no multiplier, no decoding
        return stability.attractor(F, start, inputs_x, max_iter, max_period, tol, seed=seed, measure=False)

    att = stability.attractor(F, h0, x, max_iter, max_period, tol, decode=decode, seed=seed)
    settled = att.settled
    reaches = settled & att.prediction_constant
    numbers = measure_on_attractor(F, att, x, seed, dense_limit)
    auto = orbit(h0[:1].expand_as(h0).clone(), x)
    moved = _moved(F, auto, x)
    distinct = count_attractors(F, att, x)
    lip = lipschitz(F, att, x, orbit, seed)
    same_basin = basins(F, att, x, h0, orbit, seed)
    last = torch.tensor([int((~torch.isnan(row)).nonzero().max()) if (~torch.isnan(row)).any() else 0 for row in att.norms])
    growth = att.norms[torch.arange(n), last] / att.norms[:, 0].clamp_min(1e-300)
    growth = torch.where(torch.tensor([k == "diverged" for k in att.kind]), math.inf, growth)
    with torch.no_grad():
        pred = task.predict(batch.inputs, model.readout(att.h).cpu())
    accuracy = task.score(pred, batch.targets).double()

    reach_frac = reaches.double().mean().item()
    reachable = reach_frac >= REACH_FRACTION and _median(att.multiplier) < 1  # NaN compares False
    input_dep = moved > AGREE and _median(numbers["sensitivity"]) > MIN_SENSITIVITY and \
        distinct >= DISTINCT_FRACTION * max(1, int(settled.sum()))
    measured = torch.isfinite(numbers["backward_residual"])
    back_frac = numbers["backward_converged"][measured].double().mean().item() if measured.any() else math.nan
    smooth = _median(lip) < MAX_LIPSCHITZ and _median(numbers["cond"]) < MAX_COND and back_frac >= REACH_FRACTION
    labels = [att.label(i) for i in range(n)]
    return {
        "task": task.name, "split": sp.name, "n": n, "tol": tol, "max_iter": max_iter, "max_period": max_period,
        "accuracy_on_attractor": accuracy[settled].mean().item() if settled.any() else None,
        "attractors": {
            "shares": {label: {"share": c / n, "ci95": list(wilson(c, n))} for label, c in Counter(labels).most_common()},
            "settled_with_constant_prediction_fraction": reach_frac,
            "multiplier_median": _finite_or_none(_median(att.multiplier)),
            "multiplier_max": _finite_or_none(float(att.multiplier[settled].max())) if settled.any() else None,
            "settled_at_median": _median(att.settled_at[settled].double()) if settled.any() else None,
            "prediction_since_median": _median(att.prediction_since.double()),
        },
        "reachability": {
            "jacobian_norm_median": _finite_or_none(_median(numbers["jacobian_norm"])),
            "same_basin_fraction": same_basin,
            "state_norm_growth_median": _finite_or_none(float(growth.double().median())),  # inf: diverged
            "slow_rate_median": _finite_or_none(_median(att.rate)),
            "unsettled_lyapunov_median": _finite_or_none(_median(att.lyapunov)),
        },
        "input_dependence": {
            "sensitivity_median": _finite_or_none(_median(numbers["sensitivity"])),
            "precision_median": _finite_or_none(_median(numbers["precision"])),  # the map's relative rounding
            "autonomy_max_change": _finite_or_none(moved),
            "autonomy_periods_differ": moved == math.inf,
            "autonomy_input_dependent": bool(moved > AGREE),
            "distinct_attractors": distinct,
            "settled": int(settled.sum()),
        },
        "geometry": {
            "lipschitz_median": _finite_or_none(_median(lip)),
            "cond_median": _finite_or_none(_median(numbers["cond"])),
            "cond_exact": numbers["cond_exact"],
            "backward_converged_fraction": _finite_or_none(back_frac),
            "unrolled_gradient_growth_median": _finite_or_none(_median(numbers["unrolled_growth"])),
        },
        "verdicts": {"reachable": reachable, "input_dependent": bool(input_dep), "smooth_and_backprop_stable": smooth},
        "per_example": {
            "kind": att.kind, "period": att.period.tolist(), "settled_at": att.settled_at.tolist(),
            "multiplier": [_finite_or_none(float(v)) for v in att.multiplier],
            "prediction_since": att.prediction_since.tolist(),
            "prediction_constant": att.prediction_constant.tolist(),
            "sensitivity": [_finite_or_none(float(v)) for v in numbers["sensitivity"]],
            "rate": [_finite_or_none(float(v)) for v in att.rate],
            "needed": [_finite_or_none(float(v)) for v in att.needed],
            "correct": accuracy.bool().tolist(),
        },
        "traces": {"one_step": [compact_trace(row) for row in att.trace()],
                   "k_step": [compact_trace(row) for row in att.trace(0)]},
    }


def measure_on_attractor(F, att, x, seed: int, dense_limit: int) -> dict:
    """Per example (NaN where it did not settle), with ``F^period`` at its attractor point: ``||J||_2``,
    IFT sensitivity and the map's measured precision there, ``cond(I - J)`` and the implicit backward solve."""
    exact = []

    def measure(Fk, h, xs):
        cond, is_exact = stability.condition_number(Fk, h, xs, dense_limit=dense_limit)
        exact.append(is_exact)
        back = stability.backward_stability(Fk, h, xs, seed=seed)
        sens = stability.sensitivity(Fk, h, xs, seed=seed)
        return {"jacobian_norm": stability.jacobian_norm(Fk, h, xs), "sensitivity": sens.value,
                "precision": sens.precision, "cond": cond,
                "backward_converged": back.converged.double(), "backward_residual": back.residual,
                "unrolled_growth": back.unrolled_growth}

    out = stability.on_attractor(F, att, x, measure)
    out["backward_converged"] = out["backward_converged"] == 1.0
    return {**out, "cond_exact": all(exact) if exact else None}


def _moved(F, auto, x) -> float:
    """From the same ``h_0`` for every input: the largest relative distance between the first settled input's
    attractor and another settled input's (nearest cycle point); inf when settled inputs reach attractors of
    different periods; NaN when fewer than two settle."""
    settled = torch.nonzero(auto.settled).flatten()
    if len(settled) < 2:
        return math.nan
    if len(set(auto.period[settled].tolist())) > 1:
        return math.inf
    dev = settled.to(auto.h.device)
    h = auto.h[dev]
    first = h[:1].expand_as(h)
    return float(stability.cycle_distance(F, h, first, auto.period[settled], x[dev][:1].expand_as(x[dev])).max())


def count_attractors(F, att, x) -> int:
    """Distinct attractors among the settled examples: two are the same when their periods agree and their
    points lie within ``AGREE`` of each other (nearest cycle point), each under its own input."""
    centers: list[int] = []
    for i in torch.nonzero(att.settled).flatten().tolist():
        same = False
        for c in centers:
            if int(att.period[i]) != int(att.period[c]):
                continue
            d = stability.cycle_distance(F, att.h[i : i + 1], att.h[c : c + 1], att.period[c : c + 1], x[c : c + 1])
            if float(d) <= AGREE:
                same = True
                break
        if not same:
            centers.append(i)
    return len(centers)


def lipschitz(F, att, x, orbit, seed: int) -> torch.Tensor:
    """(B,) the largest ``distance(attractor(x + eps d), attractor(x)) / eps`` over random unit input
    directions (orbits restarted from the attractor point); NaN where either did not settle or periods differ."""
    best = torch.zeros(len(att.kind), dtype=torch.float64)
    base = att.settled
    for t in range(LIPSCHITZ_DIRECTIONS):
        g = torch.Generator().manual_seed(seed + 100 + t)
        d = torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
        d = d / d.flatten(1).norm(dim=1).view(-1, *[1] * (d.dim() - 1))
        moved = orbit(att.h, x + LIPSCHITZ_EPS * d)
        ok = base & moved.settled & (moved.period == att.period)
        gap = stability.cycle_distance(F, moved.h, att.h, att.period.clamp(min=1), x)
        gap = gap * att.h.flatten(1).norm(dim=1).double().cpu() / LIPSCHITZ_EPS  # absolute distance over eps
        best = torch.where(ok, torch.maximum(best, gap), torch.nan)
    return best


def basins(F, att, x, h0, orbit, seed: int) -> float:
    """The share of examples whose orbits from ``BASIN_TRIALS`` random states of ``h_0``'s scale settle into
    the attractor of ``h_0`` (NaN-free: an example that did not settle from ``h_0`` counts as not)."""
    same = att.settled.clone()
    scale = h0.flatten(1).norm(dim=1) / math.sqrt(h0[0].numel())
    for t in range(BASIN_TRIALS):
        g = torch.Generator().manual_seed(seed + 200 + t)
        start = torch.randn(h0.shape, generator=g, dtype=h0.dtype).to(h0.device) * scale.view(-1, *[1] * (h0.dim() - 1))
        other = orbit(start, x)
        ok = other.settled & (other.period == att.period)
        same &= ok & (stability.cycle_distance(F, other.h, att.h, att.period.clamp(min=1), x) <= AGREE)
    return same.double().mean().item()


def verdict_lines(r: dict) -> list[str]:
    """The attractor classes, then one line per axis, each with its numbers and thresholds."""
    a, g, i, v = r["attractors"], r["geometry"], r["input_dependence"], r["verdicts"]
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    shares = ", ".join(f"{label} {s['share']:.0%} [{s['ci95'][0]:.0%}, {s['ci95'][1]:.0%}]" for label, s in a["shares"].items())
    return [
        f"attractors of {r['n']} examples within {r['max_iter']} iterations (95% intervals): {shares}",
        f"reachable? {yes(v['reachable'])}: {a['settled_with_constant_prediction_fraction']:.0%} settle to a fixed point "
        f"or a cycle with a constant prediction (need {REACH_FRACTION:.0%}); median multiplier of F^period there "
        f"{_fmt(a['multiplier_median'])} (need < 1)",
        f"input-dependent? {yes(v['input_dependent'])}: the attractor moves with x at fixed h0: "
        f"{yes(i['autonomy_input_dependent'])} ({_change(i)}, need > {AGREE:g}); "
        f"median sensitivity {_fmt(i['sensitivity_median'])} (need > {MIN_SENSITIVITY:g}); {i['distinct_attractors']} "
        f"distinct attractors for {i['settled']} settled inputs (need >= {DISTINCT_FRACTION:.0%})",
        f"smooth and backprop-stable? {yes(v['smooth_and_backprop_stable'])}: median Lipschitz "
        f"{_fmt(g['lipschitz_median'])} (need < {MAX_LIPSCHITZ:g}); median cond(I - J) {_fmt(g['cond_median'])} "
        f"(need < {MAX_COND:g}); backward solve converges for {_pct(g['backward_converged_fraction'])} "
        f"(need {REACH_FRACTION:.0%})",
    ]


def _change(i: dict) -> str:
    if i["autonomy_periods_differ"]:
        return "inputs settle into attractors of different periods"
    return f"max change {_fmt(i['autonomy_max_change'])}"


def _fmt(v: float | None) -> str:
    return "n/a (nothing settled)" if v is None else f"{v:.3g}"


def _pct(v: float | None) -> str:
    return "n/a (nothing settled)" if v is None else f"{v:.0%}"


def write_report(r: dict, out: Path) -> None:
    """``analysis.json``, ``analysis.md`` and PNG plots under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "analysis.json", r)
    lines = [f"# Stability analysis: {r['run']}", "", f"Task `{r['task']}`, split `{r['split']}`, {r['n']} examples.", ""]
    lines += [f"- {line}" for line in verdict_lines(r)]
    lines += ["", "| metric | value |", "|---|---|"]
    for axis in ("attractors", "reachability", "input_dependence", "geometry"):
        for k, v in r[axis].items():
            if not isinstance(v, dict):
                lines.append(f"| {axis}.{k} | {v if not isinstance(v, float) else f'{v:.4g}'} |")
    lines += ["", "![residual traces](residuals.png) ![multiplier](multiplier.png) ![sensitivity](sensitivity.png)", ""]
    atomic_write(out / "analysis.md", lambda tmp: Path(tmp).write_text("\n".join(lines)))
    _plots(r, out)


def _plots(r: dict, out: Path) -> None:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    per = r["per_example"]
    labels = [{"fixed": "fixed point", "cycle": f"{p}-cycle"}.get(k, k) for k, p in zip(per["kind"], per["period"])]
    classes = list(dict.fromkeys(sorted(labels)))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, key, title in ((axes[0], "one_step", "one-step residual ||h_t - h_(t-1)|| / ||h_t||"),
                           (axes[1], "k_step", "k-step residual ||h_t - h_(t-k)|| / ||h_t||, k = the period")):
        for c, cls in enumerate(classes):
            for i, (label, trace) in enumerate(zip(labels, r["traces"][key])):
                if label == cls and trace["t"]:
                    ax.plot(trace["t"], trace["r"], color=f"C{c}", alpha=0.5, lw=1,
                            label=cls if i == labels.index(cls) else None)
        ax.axhline(r["tol"], color="k", ls=":", lw=1, label=f"tol {r['tol']:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("relative residual")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="attractor")
    fig.suptitle(f"{r['task']} ({r['split']}): residual traces by attractor class")
    fig.tight_layout()
    atomic_write(out / "residuals.png", lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    for key, name, label, ref in (("multiplier", "multiplier.png", "multiplier: spectral radius of F^period", 1.0),
                                  ("sensitivity", "sensitivity.png", "IFT sensitivity of the attractor point", None)):
        vals = [v for v in per[key] if v is not None and math.isfinite(v)]
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        ax.hist(vals, bins=20, color="C0")
        if ref is not None:
            ax.axvline(ref, color="k", ls="--", lw=1, label=f"{ref:g}: attracting below")
            ax.legend(fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(label)
        ax.set_ylabel("examples")
        ax.set_title(f"{label.split(':')[0]} on the attractor ({len(vals)} settled examples)", fontsize=10)
        fig.tight_layout()
        atomic_write(out / name, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
        plt.close(fig)
