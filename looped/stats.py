"""Paired bootstrap intervals: the one implementation behind the reproduction's verdicts and every study.

A paired comparison holds, per example, the difference of two scores on the same input (A - B).
``bootstrap_means`` resamples examples; ``two_level_means`` resamples seeds, then examples within each
seed. ``interval`` turns either into a percentile interval. A leaf module: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0


def _rng(rng: np.random.Generator | int) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def bootstrap_means(diffs: Sequence[np.ndarray], resamples: int = RESAMPLES,
                    rng: np.random.Generator | int = SEED) -> np.ndarray:
    """(resamples,) the bootstrap distribution of the mean, over the arrays of ``diffs``, of each one's
    mean; each array (one split's examples, (n,)) is resampled on its own, in order, from ``rng``."""
    rng = _rng(rng)
    stats = np.zeros(resamples)
    for d in diffs:
        d = np.asarray(d, dtype=float)
        stats += d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    return stats / len(diffs)


def two_level_means(diffs: Sequence[Sequence[np.ndarray]], resamples: int = RESAMPLES,
                    rng: np.random.Generator | int = SEED) -> np.ndarray:
    """(resamples,) the bootstrap distribution of the seed-averaged difference, resampling seeds, then
    examples within each drawn seed.

    Args: diffs[s][k] the (n_k,) per-example differences of seed s on split k (the statistic of one seed
    is the mean over its splits of the mean difference). Every draw of a seed resamples its examples anew.
    """
    rng = _rng(rng)
    drawn = rng.integers(0, len(diffs), (resamples, len(diffs)))  # (resamples, seeds): the seeds of each resample
    slots = np.empty(drawn.shape)
    for s, splits in enumerate(diffs):  # one fresh resample of seed s's examples per time it was drawn
        where = drawn == s
        slots[where] = bootstrap_means(splits, int(where.sum()), rng)
    return slots.mean(axis=1)


def interval(stats: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of a bootstrap distribution."""
    tail = 100 * (1 - level) / 2
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def paired_interval(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES,
                    rng: np.random.Generator | int = SEED, level: float = LEVEL) -> tuple[float, float]:
    """The interval of mean(a - b) over paired examples (a, b: (n,) scores of the same inputs)."""
    return interval(bootstrap_means([np.asarray(a, float) - np.asarray(b, float)], resamples, rng), level)
