"""The test-unit bootstrap, the interval and verdict test built on it, Holm's adjustment, and the crossover size.

A difference between two strategies has two sources of chance: which seeds ran (initialisation and training
subset) and which examples the test set happened to hold. The test-unit bootstrap draws the test set's units
with replacement; every seed is scored on the same test set, so one draw of units is shared by all seeds and both
arms of a resample (that keeps the pairs paired), and by every row on that test set (so the differences at two
training sizes are resampled together, which the crossover needs). Each metric is recomputed on the drawn units
(units.py), never averaged per unit.

The verdict's interval and p come from inference.seed_t_test: a t on the seeds' paired differences with the
test set's shared variance, read off this bootstrap, added. The bootstrap also describes the test set's own
uncertainty (Δ's percentile interval with the seeds held fixed) and, resampling seeds and units together (the
two-level bootstrap, the report's verdict before issue 51), gives the crossover's descriptive interval: with
few seeds that resampling cannot see the spread between training runs, so it is never a verdict.

    p (two-level, descriptive) = 2 · min(#{Δ* ≤ 0} + 1, #{Δ* ≥ 0} + 1) / (resamples + 1), at most 1

Every draw comes from a generator seeded by the test set's and the seeds' identity, so the same runs always give
the same numbers, whatever else a report holds.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics.resampling import LinearMetric, Metric
from .inference import seed_t_test

RESAMPLES = 5000  # enough for the shared test variance and the descriptive percentiles
CONFIDENCE = 0.95
CHUNK = 256  # resamples scored at once: bounds memory at CHUNK × units weights


def generator(*identity) -> np.random.Generator:
    """A generator seeded by what it resamples (e.g. a test set's digest), never by call order."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def unit_weights(n_units: int, resamples: int, rng: np.random.Generator):
    """Chunks of (rows, n_units) draw counts: how often each unit was drawn in each resample."""
    for start in range(0, resamples, CHUNK):
        rows = min(CHUNK, resamples - start)
        draws = rng.integers(0, n_units, size=(rows, n_units)) + n_units * np.arange(rows)[:, None]
        yield np.bincount(draws.ravel(), minlength=rows * n_units).reshape(rows, n_units)


def resampled_scores(metrics: Sequence[Metric], n_units: int, resamples: int, identity) -> np.ndarray:
    """(len(metrics), resamples): every metric under the same draws of units, which `identity` seeds. The
    weighted sums of all linear metrics come from one matrix product per chunk of resamples."""
    linear = [index for index, metric in enumerate(metrics) if isinstance(metric, LinearMetric)]
    columns = [metrics[index].columns for index in linear]
    stacked = np.concatenate(columns, axis=1) if columns else np.zeros((n_units, 0))
    bounds = np.cumsum([block.shape[1] for block in columns])[:-1]
    scores = np.empty((len(metrics), resamples))
    start = 0
    for weights in unit_weights(n_units, resamples, generator("units", identity)):
        weights = weights.astype(float)
        chunk = slice(start, start + len(weights))
        for index, sums in zip(linear, np.split(weights @ stacked, bounds, axis=1)):
            scores[index, chunk] = metrics[index].combine(sums)
        for index in sorted(set(range(len(metrics))) - set(linear)):
            scores[index, chunk] = metrics[index](weights)
        start += len(weights)
    return scores


@dataclass(frozen=True)
class Interval:
    """A paired difference (strategy − baseline, points ×100): the verdict's t interval and p (inference.py), its
    parts, and the bootstrap's descriptive figures."""

    delta: float  # mean over the paired seeds of the full-test-set differences
    low: float
    high: float
    p_value: float
    se: float  # √(seed_variance + shared_variance)
    df: float  # Welch–Satterthwaite
    seed_variance: float  # s²/K: what more seeds shrink
    shared_variance: float  # the test set's part every seed shares
    test_set: tuple[float, float]  # percentile interval of Δ over the test-unit bootstrap, seeds held fixed
    replicates: np.ndarray  # Δ* of the two-level bootstrap (seeds and units), kept for the crossover

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap_p(replicates: np.ndarray) -> np.ndarray:
    """(..., R) replicates of Δ -> (...,) the percentile interval inverted: the smallest two-sided level at which
    it would reach 0."""
    below, above = np.count_nonzero(replicates <= 0, axis=-1), np.count_nonzero(replicates >= 0, axis=-1)
    return np.minimum(1.0, 2 * (np.minimum(below, above) + 1) / (replicates.shape[-1] + 1))


def paired_interval(observed: np.ndarray, resampled: np.ndarray, identity, units: int) -> Interval:
    """observed: (K,) full-test-set differences per paired seed; resampled: (K, R) the same under each draw of
    `units` units. Seeds of the two-level bootstrap are drawn with a generator that `identity` seeds."""
    seeds, resamples = resampled.shape
    test = seed_t_test(observed, np.atleast_2d(np.cov(resampled)), units)
    low, high = test.bounds(CONFIDENCE)
    counts = generator("seeds", identity).multinomial(seeds, np.full(seeds, 1 / seeds), size=resamples)  # (R, K)
    replicates = (counts * resampled.T).sum(axis=1) / seeds
    test_set = np.quantile(resampled.mean(axis=0), [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return Interval(float(test.delta), float(low), float(high), float(test.p_value), float(test.se),
                    float(test.df), float(test.seed_variance), float(test.shared_variance),
                    (float(test_set[0]), float(test_set[1])), replicates)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment over the given p-values (None stays None and does not count)."""
    present = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Crossover:
    """The training size from which the strategy stays ahead of the baseline, with its 95% interval.

    math.inf: the strategy is not ahead at the largest size (no crossover in the measured range);
    0: it is ahead at every measured size (the crossover is at or below the smallest)."""

    sizes: tuple[int, ...]
    estimate: float
    low: float
    high: float


def lasting_gain_from(sizes: Sequence[int], deltas: Sequence[float]) -> float:
    """Where Δ turns positive for good: interpolated in log size between the last size with Δ ≤ 0 and the
    next; 0 when Δ > 0 at every size, math.inf when Δ ≤ 0 at the largest."""
    not_ahead = [index for index, delta in enumerate(deltas) if delta <= 0]
    if not not_ahead:
        return 0.0
    last = not_ahead[-1]
    if last == len(sizes) - 1:
        return math.inf
    before, after = deltas[last], deltas[last + 1]
    fraction = (0 - before) / (after - before)
    log_size = math.log(sizes[last]) + fraction * (math.log(sizes[last + 1]) - math.log(sizes[last]))
    return math.exp(log_size)


def crossover(sizes: Sequence[int], intervals: Sequence[Interval]) -> Crossover:
    """The crossover of the observed differences, and its percentile interval over the resamples (each
    resample's differences at every size were drawn together)."""
    per_resample = np.stack([interval.replicates for interval in intervals], axis=1)  # (R, sizes)
    values = np.array([lasting_gain_from(sizes, row) for row in per_resample])
    low, high = np.quantile(values, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], method="inverted_cdf")
    estimate = lasting_gain_from(sizes, [interval.delta for interval in intervals])
    return Crossover(tuple(sizes), estimate, float(low), float(high))
