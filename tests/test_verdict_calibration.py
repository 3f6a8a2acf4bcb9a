"""The verdict's test on simulated studies with known truth (calibration.py), and its parts against independent
computations: its false-positive rate stays at the bar for every profile of the study at K = 3, 5 and 10 seeds,
a procedure that ignores the seeds' variance fails the same check, and the power is what the design allows."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from elmo_bench.report.calibration import (ALPHA, PROCEDURES, PROFILES, Profile, Studies, binomial_ceiling,
                                           rejection_rate, simulate)
from elmo_bench.report.inference import minimum_detectable_effect, seed_t_test, shared_test_variance

BAR = 0.06  # the ceiling on the false-positive rate at α = 0.05
STUDIES = 600  # per profile and K here; the benchmark runs 2,000
CHOSEN = PROCEDURES["seed t + shared test variance"]


def assert_calibrated(procedure, profile: Profile, seeds: int, studies: int = STUDIES) -> float:
    """The null studies' rejection rate, which must not exceed the bar by more than chance over `studies`."""
    rate = rejection_rate(procedure, profile, seeds, 0.0, studies, seed=51)
    assert rate <= binomial_ceiling(BAR, studies), f"{profile.task} K={seeds}: FPR {rate:.3f}"
    return rate


@pytest.mark.parametrize("seeds", [3, 5, 10])
def test_the_verdicts_false_positive_rate_is_at_the_bar_for_every_profile(seeds):
    rates = [assert_calibrated(CHOSEN, profile, seeds) for profile in PROFILES]
    pooled = np.mean(rates)  # 7 profiles × 600 studies: the pooled rate is tight (±0.8 points at 3σ)
    assert pooled <= binomial_ceiling(ALPHA, STUDIES * len(rates))


@pytest.mark.parametrize("name", ["test-set bootstrap only", "paired t on seeds"])
def test_a_procedure_that_drops_a_variance_fails_the_same_check(name):
    """Test-set resampling alone ignores the training runs' variance: it fails on the study's own profiles.
    The paired t drops the shared test part: it fails where that part is large."""
    task = "agnews" if name == "test-set bootstrap only" else "shared-heavy"
    profile = next(profile for profile in PROFILES if profile.task == task)
    with pytest.raises(AssertionError, match="FPR"):
        assert_calibrated(PROCEDURES[name], profile, seeds=5)


def test_the_old_two_level_bootstrap_fails_at_three_seeds():
    """The report's verdict before issue 51, on POS-like rows (seed variance four times the test noise)."""
    pos = next(profile for profile in PROFILES if profile.task == "pos")
    with pytest.raises(AssertionError, match="FPR"):
        assert_calibrated(PROCEDURES["two-level bootstrap"], pos, seeds=3, studies=1000)


def test_power_grows_with_seeds_and_matches_the_minimum_detectable_effect():
    """At the profile's variances the MDE at α = 0.05 is the effect found 80% of the time; with more seeds a
    smaller effect is found more often."""
    ner = next(profile for profile in PROFILES if profile.task == "ner")
    powers = [rejection_rate(CHOSEN, ner, seeds, 1.0, STUDIES) for seeds in (3, 5, 10)]
    assert powers[0] < powers[1] < powers[2] and powers[2] > 0.9
    seeds = 10
    se = np.sqrt((ner.seed_variance + ner.unit_variance) / seeds + ner.shared_variance)
    mde = minimum_detectable_effect(se, seeds - 1, ALPHA)
    assert rejection_rate(CHOSEN, ner, seeds, mde, 2000) == pytest.approx(0.8, abs=0.03)


def test_simulated_studies_have_the_profiles_variances():
    profile = Profile("check", "synthetic", 0.5, 0.3, 0.2, 400)
    studies = simulate(profile, 4, 1.0, 5000, np.random.default_rng(0))
    d = studies.differences
    assert d.mean() == pytest.approx(1.0, abs=0.03)
    assert np.var(d[:, 0] - d[:, 1]) == pytest.approx(2 * (0.5 + 0.3), rel=0.08)  # the shared part cancels
    assert np.var(d.mean(axis=1)) == pytest.approx((0.5 + 0.3) / 4 + 0.2, rel=0.08)
    assert shared_test_variance(studies.covariance).mean() == pytest.approx(0.2, rel=0.08)


def test_without_a_shared_part_the_test_is_the_one_sample_t():
    rng = np.random.default_rng(1)
    differences = rng.normal(0.5, 1.0, (50, 4))
    diagonal = np.broadcast_to(np.diag([0.3, 0.2, 0.4, 0.1]), (50, 4, 4))  # each seed's own test noise only
    found = seed_t_test(differences, diagonal, 1000)
    reference = stats.ttest_1samp(differences, 0.0, axis=1)
    assert found.p_value == pytest.approx(reference.pvalue) and np.all(found.df == 3)


def test_the_shared_part_is_added_and_its_df_by_hand():
    """Seeds 1, 2, 3 (s² = 1, a = 1/3) and a bootstrap covariance with 0.5 on every off-diagonal and 1 on the
    diagonal over 100 units: b = 0.5; var(b̂) summed entry by entry from the normal-theory covariance of two
    sample covariances, (C_jl·C_km + C_jm·C_kl)/n; df = min(2, 2(a + b)²/(2a²/2 + var(b̂)))."""
    covariance = np.full((3, 3), 0.5) + 0.5 * np.eye(3)
    found = seed_t_test(np.array([1.0, 2.0, 3.0]), covariance, 100)
    spread = sum(covariance[j, l] * covariance[k, m] + covariance[j, m] * covariance[k, l]
                 for j in range(3) for k in range(3) for l in range(3) for m in range(3)
                 if j != k and l != m) / 100 / 36
    df = min(2.0, 2 * (1 / 3 + 0.5) ** 2 / (2 * (1 / 3) ** 2 / 2 + spread))
    assert float(found.se) == pytest.approx(np.sqrt(1 / 3 + 0.5)) and float(found.df) == pytest.approx(df)
    assert float(found.p_value) == pytest.approx(2 * stats.t.sf(2 / np.sqrt(1 / 3 + 0.5), df))


def test_minimum_detectable_effect_against_the_normal_and_a_simulation():
    # With many df (the noncentral t is capped at 1,000): (z_{1−α/2} + z_{0.8})·SE, the far tail negligible.
    assert minimum_detectable_effect(1.0, 1e6, 0.05) == pytest.approx(stats.norm.ppf(0.975) + stats.norm.ppf(0.8),
                                                                       abs=5e-3)
    # With 2 df: a t-test of 3 normal draws around the MDE rejects 80% of the time.
    mde = minimum_detectable_effect(1.0, 2, 0.05)
    draws = np.random.default_rng(2).normal(mde, np.sqrt(3), (40000, 3))  # SE of their mean = 1
    assert np.mean(stats.ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05) == pytest.approx(0.8, abs=0.01)


def test_rates_are_deterministic():
    profile = PROFILES[0]
    assert rejection_rate(CHOSEN, profile, 3, 0.0, 200) == rejection_rate(CHOSEN, profile, 3, 0.0, 200)
    assert isinstance(simulate(profile, 3, 0.0, 2, np.random.default_rng(0)), Studies)
