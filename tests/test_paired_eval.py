import json

import numpy as np
import pytest

from looped import runs
from looped.evaluation import EVAL_SEED_BASE, accuracy_curve

from conftest import load_script

paired_eval = load_script("paired_eval")


def score_file(path, run, splits):
    """A score file with the given per-example bits: splits = {split: {iteration: [0/1, ...]}}."""
    data = {"run": run, "metric": "legal", "train_iters": 2, "splits": {
        s: {"n": len(next(iter(kept.values()))), "by_iteration": [],
            "per_example": {str(t): "".join(map(str, v)) for t, v in kept.items()}} for s, kept in splits.items()}}
    path.write_text(json.dumps(data))
    return path


def test_score_keeps_each_input_at_the_chosen_iterations():
    run = runs.shipped_model("prefix-sums")
    out = paired_eval.score(run, ["8", "12"], [2, 5], "exact", 30)
    model, task, _ = runs.load_model(run)
    for split in ("8", "12"):
        s = out["splits"][split]
        curve = accuracy_curve(model, task, task.generate(task.split(split), 30, seed=EVAL_SEED_BASE), max_iters=5)
        assert s["by_iteration"] == pytest.approx(list(curve.accuracy))
        for t in (2, 5):
            assert paired_eval.bits(s["per_example"][str(t)]).mean() == pytest.approx(s["by_iteration"][t - 1])


def test_pair_and_table_read_the_bits(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    fa = score_file(tmp_path / "a.json", "runs/a", {"x": {4: a.tolist(), 1: b.tolist()}})
    fb = score_file(tmp_path / "b.json", "runs/b", {"x": {1: b.tolist()}, "only-b": {1: [1]}})
    rows = paired_eval.pair(paired_eval.load(f"{fa}:4"), paired_eval.load(f"{fb}:1"), 500)
    assert len(rows) == 5  # title, blank, header, rule, one shared split
    cells = [c.strip() for c in rows[-1].split("|")[1:-1]]
    diff = (a - b).mean()
    assert cells[:5] == ["x", "200", f"{a.mean():.3f}", f"{b.mean():.3f}", f"{diff:+.3f}"]
    lo, hi = (float(v) for v in cells[5].strip("[]").split(","))
    assert lo < diff < hi and hi - lo < 0.5
    same = paired_eval.pair(paired_eval.load(f"{fa}:1"), paired_eval.load(f"{fb}:1"), 500)[-1]
    assert same.endswith("| +0.000 | [+0.000, +0.000] |")
    table = paired_eval.table([f"{fa}:4", f"{fb}:1"], spread=True)
    cells = [c.strip() for c in table[-1].split("|")[1:-1]]
    assert cells == ["x", "200", f"{a.mean():.3f}", f"{b.mean():.3f}", f"{(a.mean() + b.mean()) / 2:.3f}",
                     f"{abs(a.mean() - b.mean()):.3f}"]
