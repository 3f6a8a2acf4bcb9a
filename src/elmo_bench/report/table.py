"""The comparison table: one row per (task, model, train size), every strategy against the baseline over seeds.

Scores are the main metric on TEST, mean and sample std (ddof=1) over seeds. Each strategy other than BASELINE
is compared with it: Δ of the test means, the winner, the cost ratios, and whether the difference is beyond seed
noise by a paired t-test over seeds (scipy.stats.ttest_rel on the test scores of runs that share a seed;
two-sided, p < 0.05), which needs at least 2 paired seeds. A row without a baseline run has no comparisons.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.stats import ttest_rel

from .load import RunResult

SIGNIFICANCE_LEVEL = 0.05
BASELINE = "feature_ensemble"  # what every other strategy is compared with: the frozen biLM of Peters et al.


def strategy_order(strategies) -> list[str]:
    """The baseline first, then the others by name, so tables and figures list strategies alike."""
    return sorted(set(strategies), key=lambda strategy: (strategy != BASELINE, strategy))


@dataclass(frozen=True)
class SideSummary:
    """One strategy's runs within one table row, summarised over seeds."""

    n: int
    test_mean: float
    test_std: float | None  # sample std (ddof=1); None when n == 1
    dev_mean: float
    train_seconds: float  # mean over seeds
    trainable_params: float  # mean over seeds (the same for every seed unless the model changed)
    test_by_seed: dict[int, float]
    setting: str | None  # the setting chosen on dev (--select-on-dev), "" when only one was run; else None


@dataclass(frozen=True)
class PairedTest:
    """Paired t-test over the seeds both strategies ran."""

    n_pairs: int
    p_value: float | None  # None with < 2 pairs, or when every paired score is identical (t undefined)

    @property
    def beyond_seed_noise(self) -> bool | None:
        return None if self.p_value is None else self.p_value < SIGNIFICANCE_LEVEL


@dataclass(frozen=True)
class Comparison:
    """One strategy against the baseline within one row."""

    strategy: str
    baseline: str
    delta: float  # strategy − baseline, of the test means
    paired: PairedTest
    seconds_ratio: float | None  # mean run time, strategy / baseline; None when the baseline's is 0
    params_ratio: float | None  # trainable parameters, strategy / baseline; None when the baseline has none

    @property
    def winner(self) -> str:
        """The strategy with the higher test mean; "tie" when Δ is 0.00 at the precision the table shows."""
        rounded = round(self.delta, 2)
        return "tie" if rounded == 0 else (self.strategy if rounded > 0 else self.baseline)


@dataclass(frozen=True)
class Row:
    task: str
    dataset: str
    metric: str
    model: str
    train_size: int
    sides: dict[str, SideSummary]  # the strategies run for this row, in strategy_order
    comparisons: dict[str, Comparison]  # per strategy other than the baseline; empty without a baseline run

    def side(self, strategy: str) -> SideSummary | None:
        return self.sides.get(strategy)

    def comparison(self, strategy: str) -> Comparison | None:
        return self.comparisons.get(strategy)


def build_rows(runs: list[RunResult]) -> list[Row]:
    """Rows sorted by task, dataset, metric, model and train size, so the output never depends on file order."""
    by_row: dict[tuple, dict[str, list[RunResult]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_row[run.row][run.strategy].append(run)
    rows = []
    for key, by_strategy in sorted(by_row.items()):
        sides = {strategy: summarise(by_strategy[strategy]) for strategy in strategy_order(by_strategy)}
        baseline = sides.get(BASELINE)
        comparisons = {} if baseline is None else {
            strategy: compare(strategy, side, baseline) for strategy, side in sides.items() if strategy != BASELINE}
        rows.append(Row(*key, sides, comparisons))
    return rows


def summarise(runs: list[RunResult]) -> SideSummary:
    runs = sorted(runs, key=lambda run: run.seed)
    test = np.array([run.test for run in runs])
    return SideSummary(
        n=len(runs),
        test_mean=float(test.mean()),
        test_std=float(test.std(ddof=1)) if len(runs) > 1 else None,
        dev_mean=float(np.mean([run.dev for run in runs])),
        train_seconds=float(np.mean([run.train_seconds for run in runs])),
        trainable_params=float(np.mean([run.trainable_params for run in runs])),
        test_by_seed={run.seed: run.test for run in runs},
        setting=runs[0].setting,  # selection keeps one setting per side, so every run has the same
    )


def compare(strategy: str, side: SideSummary, baseline: SideSummary) -> Comparison:
    return Comparison(
        strategy=strategy,
        baseline=BASELINE,
        delta=side.test_mean - baseline.test_mean,
        paired=paired_test(baseline, side),
        seconds_ratio=_ratio(side.train_seconds, baseline.train_seconds),
        params_ratio=_ratio(side.trainable_params, baseline.trainable_params),
    )


def _ratio(value: float, reference: float) -> float | None:
    return None if reference == 0 else value / reference


def paired_test(baseline: SideSummary, other: SideSummary) -> PairedTest:
    """ttest_rel(other, baseline) over the seeds both ran."""
    seeds = sorted(baseline.test_by_seed.keys() & other.test_by_seed.keys())
    if len(seeds) < 2:
        return PairedTest(n_pairs=len(seeds), p_value=None)
    with warnings.catch_warnings():
        # Identical paired differences make scipy warn about precision loss; the nan/0 it returns is handled.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ttest_rel([other.test_by_seed[s] for s in seeds], [baseline.test_by_seed[s] for s in seeds])
    p_value = float(result.pvalue)
    return PairedTest(n_pairs=len(seeds), p_value=None if np.isnan(p_value) else p_value)
