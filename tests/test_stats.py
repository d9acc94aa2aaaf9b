"""The one paired bootstrap (``looped.stats``) against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from looped import stats


def test_bootstrap_means_resamples_each_array_on_its_own_with_one_stream():
    a, b = np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0])
    got = stats.bootstrap_means([a, b], resamples=5, rng=7)
    rng = np.random.default_rng(7)  # by hand: a's draws first, then b's, each (resamples, n)
    ia, ib = rng.integers(0, 3, (5, 3)), rng.integers(0, 4, (5, 4))
    assert got == pytest.approx((a[ia].mean(1) + b[ib].mean(1)) / 2)


def test_paired_interval_brackets_the_difference_and_is_zero_without_variation():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    lo, hi = stats.paired_interval(a, b)
    assert lo < (a - b).mean() < hi and hi - lo < 0.3
    assert stats.paired_interval(a, a) == (0.0, 0.0)


def test_interval_is_the_central_percentile_range():
    assert stats.interval(np.arange(101.0), level=0.9) == pytest.approx((5.0, 95.0))


def test_two_level_bootstrap_resamples_seeds_then_examples():
    """Two seeds, one split each. Seed 0's differences are all +1 and seed 1's all -1, so a resample's value
    is determined by the seeds drawn: (+1 +1)/2, (+1 -1)/2 or (-1 -1)/2, with probabilities 1/4, 1/2, 1/4."""
    diffs = [[np.ones(5)], [-np.ones(7)]]
    out = stats.two_level_means(diffs, resamples=4000, rng=3)
    values, counts = np.unique(out, return_counts=True)
    assert values.tolist() == [-1.0, 0.0, 1.0]
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    # with examples that vary inside a seed, a resample of one seed differs from that seed's mean
    varied = stats.two_level_means([[np.array([0.0, 1.0])], [np.array([0.0, 1.0])]], resamples=2000, rng=1)
    assert set(np.unique(varied)) <= {0.0, 0.25, 0.5, 0.75, 1.0} and varied.std() > 0.2
    # a seed drawn twice in one resample gets two independent resamples of its examples: each slot's mean is
    # 0, 0.5 or 1 with odds 1:2:1 whichever seeds are drawn, so a resample is 0.25 with probability 1/4
    # (sharing one resample between the two draws of a seed would make it 1/8)
    assert (varied == 0.25).mean() == pytest.approx(0.25, abs=0.03)
