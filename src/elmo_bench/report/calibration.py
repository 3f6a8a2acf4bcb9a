"""Simulated studies with known truth, to check a verdict procedure's false-positive rate and power.

A simulated comparison follows the model of inference.py: K paired differences d_k = μ + c + s_k + u_k, with
the training-run part s_k, the per-seed test part u_k and the shared test part c drawn at the variances of a
profile (PROFILES: per task of a study, with its family, estimated from a study's rows by
benchmarks/calibrate_verdicts.py --estimate). The test parts come from simulated test units, x_ik = a_i + b_ik over SIMULATED_UNITS units
(a_i shared by every seed, b_ik not), so each study also has what its test-unit bootstrap would estimate: the
covariance matrix of the seeds' resampled differences (units' sample covariance / units). Each procedure maps
the studies to p-values; the true effect μ is 0 for a null study.

    PROCEDURES
    seed t + shared test variance   the report's verdict (inference.seed_t_test)
    two-level bootstrap             the report's verdict before issue 51: seeds and units resampled together
    paired t on seeds               t on the d_k alone (df K − 1): ignores the shared test part c
    sign-flip over seeds            exact permutation test over the 2^K sign patterns of the d_k
    test-set bootstrap only         the test-unit bootstrap of Δ with the seeds held fixed: ignores seed variance
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .bootstrap import bootstrap_p
from .inference import seed_t_test

ALPHA = 0.05
SIMULATED_UNITS = 400  # test units drawn per study: enough for the bootstrap covariance to be close to exact
OLD_RESAMPLES = 1000  # two-level bootstrap resamples per simulated study
CHUNK = 200  # studies simulated at once: bounds memory at CHUNK × OLD_RESAMPLES × K


@dataclass(frozen=True)
class Profile:
    """The variances (points², ×100 scale) of one task's paired differences, and its test set's units."""

    task: str
    family: str
    seed_variance: float  # σ_s²: training runs (initialisation, subset)
    unit_variance: float  # σ_u²: per-seed test-set sampling
    shared_variance: float  # σ_c²: test-set sampling shared by every seed
    units: int  # the test set's resampling units


# Means over each task's comparisons (3 sizes × 2 strategies) in results/study_converge (162 cells, 36
# comparisons, 3 seeds each), from
# `python benchmarks/calibrate_verdicts.py --estimate <extracted study>`: σ_u² and σ_c² from the test-unit
# bootstrap's covariance, σ_s² = mean(s² − σ_u²) (not below 0).
PROFILES = (
    Profile("agnews", "classification", 0.722, 0.170, 0.000, 7600),
    Profile("ner", "tagging", 0.303, 0.141, 0.000, 3453),
    Profile("pos", "tagging", 0.012, 0.003, 0.000, 3453),
    Profile("squad", "span_qa", 1.479, 0.689, 0.117, 8),
    Profile("sst5", "classification", 0.398, 0.802, 0.020, 2210),
    Profile("stsb", "pair_regression", 2.520, 1.132, 0.062, 1379),
    # Not from the study: a test set that favours one strategy as much as the seeds vary, where a test that
    # drops the shared part (the paired t, the sign flips) must fail.
    Profile("shared-heavy", "synthetic", 0.300, 0.100, 0.300, 400),
)


@dataclass(frozen=True)
class Studies:
    """N simulated comparisons of K seeds each."""

    differences: np.ndarray  # (N, K) full-test-set paired differences
    covariance: np.ndarray  # (N, K, K) the test-unit bootstrap's covariance of the seeds' differences
    units: int


def simulate(profile: Profile, seeds: int, effect: float, count: int, rng: np.random.Generator) -> Studies:
    """`count` studies with true difference `effect` (points) at the profile's variances."""
    units = min(profile.units, SIMULATED_UNITS)
    shared = rng.normal(0, np.sqrt(units * profile.shared_variance), (count, units, 1))
    per_seed = rng.normal(0, np.sqrt(units * profile.unit_variance), (count, units, seeds))
    contributions = shared + per_seed  # (N, units, K): each unit's share of the test-set part, times units
    test_part = contributions.mean(axis=1)  # c + u_k, with variances σ_c² and σ_u² exactly
    centred = contributions - test_part[:, None, :]
    covariance = np.einsum("nik,nil->nkl", centred, centred) / units**2  # the bootstrap covariance of means
    runs = rng.normal(0, np.sqrt(profile.seed_variance), (count, seeds))
    return Studies(effect + runs + test_part, covariance, units)


def seed_t(studies: Studies, rng: np.random.Generator) -> np.ndarray:
    return seed_t_test(studies.differences, studies.covariance, studies.units).p_value


def two_level_bootstrap(studies: Studies, rng: np.random.Generator) -> np.ndarray:
    """Each resample draws K seeds with replacement and the units once for all seeds (as normal noise with the
    bootstrap's covariance, which the unit bootstrap of a mean approaches)."""
    count, seeds = studies.differences.shape
    values, vectors = np.linalg.eigh(studies.covariance)
    root = vectors * np.sqrt(np.maximum(values, 0))[:, None, :]  # root @ rootᵀ = covariance
    noise = np.einsum("nkj,nrj->nrk", root, rng.standard_normal((count, OLD_RESAMPLES, seeds)))
    draws = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=(count, OLD_RESAMPLES))
    replicates = ((studies.differences[:, None, :] + noise) * draws).sum(axis=2) / seeds
    return bootstrap_p(replicates)


def paired_t(studies: Studies, rng: np.random.Generator) -> np.ndarray:
    return stats.ttest_1samp(studies.differences, 0.0, axis=1).pvalue


def sign_flip(studies: Studies, rng: np.random.Generator) -> np.ndarray:
    """Exact: the share of the 2^K sign patterns whose |Σ ±d_k| reaches the observed |Σ d_k| (so with K = 3 the
    smallest p is 2/8 = 0.25, with K = 5 it is 2/32)."""
    seeds = studies.differences.shape[1]
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=seeds)))  # (2^K, K)
    flipped = np.abs(studies.differences @ signs.T)
    observed = np.abs(studies.differences.sum(axis=1, keepdims=True))
    return np.mean(flipped >= observed * (1 - 1e-12), axis=1)


def test_set_only(studies: Studies, rng: np.random.Generator) -> np.ndarray:
    """Normal p from the test-unit bootstrap's variance of Δ, the seeds taken as fixed."""
    seeds = studies.differences.shape[1]
    se = np.sqrt(studies.covariance.sum(axis=(1, 2))) / seeds
    return 2 * stats.norm.sf(np.abs(studies.differences.mean(axis=1)) / se)


Procedure = Callable[[Studies, np.random.Generator], np.ndarray]
PROCEDURES: dict[str, Procedure] = {
    "seed t + shared test variance": seed_t,
    "two-level bootstrap": two_level_bootstrap,
    "paired t on seeds": paired_t,
    "sign-flip over seeds": sign_flip,
    "test-set bootstrap only": test_set_only,
}
CHOSEN = "seed t + shared test variance"  # what the report's verdicts use (inference.py)


def rejection_rate(procedure: Procedure, profile: Profile, seeds: int, effect: float, count: int,
                   seed: int = 0) -> float:
    """The share of `count` simulated studies in which `procedure` rejects μ = 0 at ALPHA; seeded by `seed`
    and the study's design, so every call with the same arguments gives the same rate."""
    rng = np.random.default_rng([seed, seeds, round(1000 * effect), *profile.task.encode()])
    rejected = 0
    for start in range(0, count, CHUNK):
        studies = simulate(profile, seeds, effect, min(CHUNK, count - start), rng)
        rejected += int(np.count_nonzero(procedure(studies, rng) < ALPHA))
    return rejected / count


def binomial_ceiling(rate: float, count: int, sigmas: float = 3.0) -> float:
    """The highest observed rate over `count` studies still consistent with a true `rate` (normal bound)."""
    return rate + sigmas * np.sqrt(rate * (1 - rate) / count)
