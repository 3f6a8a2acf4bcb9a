"""The paired bootstrap over seeds and test units, Holm's adjustment, and the crossover size.

A difference between two strategies has two sources of chance: which seeds ran (initialisation and training
subset) and which examples the test set happened to hold. One bootstrap resample draws both: K seeds with
replacement out of the K paired seeds, and the test set's units with replacement. Every seed is scored on the
same test set, so one draw of units is shared by all seeds and both arms of a resample (that keeps the pairs
paired), and by every row on that test set (so the differences at two training sizes are resampled together,
which the crossover needs). Each metric is recomputed on the drawn units (units.py), never averaged per unit.

    Δ*  = mean over the drawn seeds k of  score_strategy,k(drawn units) − score_baseline,k(drawn units)
    95% interval = the 2.5th and 97.5th percentiles of Δ* over the resamples
    p   = 2 · min(#{Δ* ≤ 0} + 1, #{Δ* ≥ 0} + 1) / (resamples + 1), at most 1   (the interval inverted: the
          smallest two-sided level at which the percentile interval would just reach 0); its Monte Carlo error
          is reported, so that a verdict the resampling itself could flip is marked as such

With few seeds the seed level of the bootstrap is coarse and, like any bootstrap, narrower than the truth by
about (K−1)/K in variance; more seeds, not more resamples, fix that. Every draw comes from a generator seeded by
the test set's and the seeds' identity, so the same runs always give the same numbers, whatever else a report
holds.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics.resampling import LinearMetric, Metric

RESAMPLES = 5000  # p-values near a Holm threshold that more resamples could move are marked borderline
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
    """A paired difference (strategy − baseline, points ×100) with its bootstrap interval and p-value."""

    delta: float  # mean over the paired seeds of the full-test-set differences
    low: float
    high: float
    p_value: float
    replicates: np.ndarray  # Δ* per resample, kept for the crossover

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def p_error(self) -> float:
        """Monte Carlo standard error of p: p/2 is a proportion of the resamples."""
        tail = self.p_value / 2
        return 2 * math.sqrt(tail * (1 - tail) / len(self.replicates))


def paired_interval(observed: np.ndarray, resampled: np.ndarray, identity) -> Interval:
    """observed: (K,) full-test-set differences per paired seed; resampled: (K, R) the same under each draw of
    units. Seeds are drawn with a generator that `identity` seeds (the same seeds give the same draws)."""
    seeds, resamples = resampled.shape
    counts = generator("seeds", identity).multinomial(seeds, np.full(seeds, 1 / seeds), size=resamples)  # (R, K)
    replicates = (counts * resampled.T).sum(axis=1) / seeds
    low, high = np.quantile(replicates, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    tail = min(np.count_nonzero(replicates <= 0), np.count_nonzero(replicates >= 0)) + 1
    return Interval(float(observed.mean()), float(low), float(high), float(min(1.0, 2 * tail / (resamples + 1))),
                    replicates)


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
