"""The verdict's test: a t on the seeds' paired differences, with the test set's shared sampling added.

One comparison's K paired differences (strategy − baseline, points ×100) are modelled as

    d_k = μ + c + s_k + u_k
        s_k  the training run's own chance (initialisation, training subset): variance σ_s², independent over seeds
        u_k  how run k's errors happened to fall on this test set: variance σ_u², independent over seeds
        c    how this test set happens to favour one strategy: variance σ_c², the SAME for every seed

The seeds' sample variance s² of the d_k estimates σ_s² + σ_u² (c cancels in the deviations), so s²/K is the
part of var(Δ) that more seeds shrink; c does not average out over seeds and is added. Its variance v_c comes
from the test-unit bootstrap, where one draw of units is shared by every seed: the covariance of two seeds'
resampled differences is var(c), so v_c is the mean off-diagonal of their covariance matrix (not below 0).

    Δ = mean d_k,  SE² = s²/K + v_c
    df = Satterthwaite's 2·(a + b)² / (2a²/(K − 1) + var(b̂)), kept within [1, K − 1]; a = s²/K, b = v_c,
    var(b̂) by normal theory from the bootstrap covariance and the number of units (a shared part swamped by
    the seeds' own test noise is estimated poorly, so it must not lend the t the df of the test set's thousands
    of units; it lowers df below K − 1 where it dominates and is itself uncertain, as on a test set of few
    articles)
    95% interval Δ ± t(0.975, df)·SE;  p = 2·P(T_df > |Δ|/SE)
    MDE: the smallest |μ| that a two-sided test at level α finds with probability 0.8 (noncentral t), for
    this SE and df

With one seed s² does not exist: the whole bootstrap variance stands in for SE² and there is no verdict
(table.MIN_SEEDS_FOR_VERDICT). The procedure was chosen over the two-level bootstrap, a plain paired t and a
sign-flip test over seeds by its false-positive rate and power on simulated studies matched to a study's rows
(calibration.py; benchmarks/calibrate_verdicts.py; docs/statistics.md). Everything is vectorised over leading
axes, so the calibration runs the very function the report uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

POWER = 0.8  # the detection probability the minimum detectable effect is quoted at
DF_CAP = 1e6  # beyond this the t is the normal
NCT_DF_CAP = 1000.0  # scipy's noncentral t turns NaN far above this; at 1,000 df it is the normal to 3 digits


@dataclass(frozen=True)
class SeedTest:
    """Arrays over the leading axes of the differences: Δ, its standard error, degrees of freedom and p."""

    delta: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p_value: np.ndarray
    seed_variance: np.ndarray  # s²/K: what more seeds shrink (0 with one seed)
    shared_variance: np.ndarray  # v_c: the test set's part every seed shares

    def bounds(self, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        half = stats.t.ppf((1 + confidence) / 2, self.df) * self.se
        return self.delta - half, self.delta + half


def shared_test_variance(covariance: np.ndarray) -> np.ndarray:
    """(..., K, K) bootstrap covariance of the seeds' differences -> (...,) the variance every seed shares: the
    mean off-diagonal, not below 0; with one seed, the whole variance."""
    seeds = covariance.shape[-1]
    if seeds == 1:
        return covariance[..., 0, 0]
    total = covariance.sum(axis=(-2, -1))
    diagonal = np.trace(covariance, axis1=-2, axis2=-1)
    return np.maximum((total - diagonal) / (seeds * (seeds - 1)), 0.0)


def shared_variance_spread(covariance: np.ndarray, units: int) -> np.ndarray:
    """(...,) the sampling variance of shared_test_variance's estimate (normal theory: two entries of a sample
    covariance over n units covary as (C_jl·C_km + C_jm·C_kl)/n). It is large where the seeds' own test noise
    dwarfs the shared part: then the off-diagonals are mostly noise, whatever the number of units."""
    seeds = covariance.shape[-1]
    off = 1.0 - np.eye(seeds)
    spread = 2 * np.sum(off * (covariance @ off @ covariance), axis=(-2, -1))
    return spread / (units * (seeds * (seeds - 1)) ** 2)


def satterthwaite(seed_part: np.ndarray, seed_df: int, shared: np.ndarray, shared_spread: np.ndarray) -> np.ndarray:
    """Degrees of freedom of seed_part + shared: 2·(sum)² / var(sum's estimate), where var(seed_part) =
    2·seed_part²/seed_df (a scaled χ²) and var(shared) = shared_spread; a shared part of 0 adds nothing. Capped at
    DF_CAP (a normal)."""
    spread = 2 * seed_part**2 / seed_df + np.where(shared > 0, shared_spread, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = 2 * (seed_part + shared) ** 2 / spread
    return np.where(np.isfinite(df) & (df > 0), np.minimum(df, DF_CAP), DF_CAP)


def seed_t_test(differences: np.ndarray, covariance: np.ndarray, units: int) -> SeedTest:
    """differences: (..., K) full-test-set paired differences per seed; covariance: (..., K, K) their covariance
    under the test-unit bootstrap; units: how many units the bootstrap drew from."""
    differences = np.asarray(differences, dtype=float)
    covariance = np.asarray(covariance, dtype=float)
    seeds = differences.shape[-1]
    delta = differences.mean(axis=-1)
    shared = shared_test_variance(covariance)
    if seeds > 1:
        seed_part = differences.var(axis=-1, ddof=1) / seeds
        # Never above the seeds' K − 1: the df estimate is high exactly when s² came out small, which is when
        # |t| is large, and without the cap the test's false-positive rate rose to 7.4% on STS-B-like rows.
        # Nor below 1: a shared part read off a handful of units (SQuAD's 8 test articles) gave df 0.6, where
        # the t's tails are wilder than the normal-theory spread that produced it.
        df = np.clip(satterthwaite(seed_part, seeds - 1, shared, shared_variance_spread(covariance, units)),
                     1, seeds - 1)
    else:  # the bootstrap variance alone, estimated from `units` units
        seed_part = np.zeros_like(delta)
        df = satterthwaite(shared, max(units - 1, 1), np.zeros_like(delta), np.zeros_like(delta))
    se = np.sqrt(seed_part + shared)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(delta) / se
    # No spread at all: identical differences on a test set that cannot move them; p is 1 only for Δ = 0.
    p_value = np.where(se > 0, 2 * stats.t.sf(np.where(se > 0, ratio, 0.0), df), np.where(delta == 0, 1.0, 0.0))
    return SeedTest(delta, se, df, p_value, seed_part, shared)


def minimum_detectable_effect(se: float, df: float, level: float, power: float = POWER) -> float:
    """The |μ| a two-sided t-test at `level` rejects with probability `power`, given SE and df (noncentral t,
    both tails counted)."""
    if se == 0:
        return 0.0
    df = min(df, NCT_DF_CAP)
    critical = stats.t.ppf(1 - level / 2, df)

    def shortfall(shift: float) -> float:
        # scipy gives NaN for the far lower tail, where the probability is nil
        return stats.nct.sf(critical, df, shift) + np.nan_to_num(stats.nct.cdf(-critical, df, shift)) - power

    upper = 2 * critical + 2
    while shortfall(upper) < 0:  # heavy tails at small df need a larger shift
        upper *= 2
    return float(se * optimize.brentq(shortfall, 0.0, upper, xtol=1e-10))
