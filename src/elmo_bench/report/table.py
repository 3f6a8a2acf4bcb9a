"""The comparison table: one row per (task, model, train size), feature_ensemble vs finetune over seeds.

Scores are the main metric on TEST, mean and sample std (ddof=1) over seeds. Whether a difference is beyond
seed noise is decided by a paired t-test over seeds (scipy.stats.ttest_rel on the test scores of runs that share
a seed; two-sided, p < 0.05), which needs at least 2 paired seeds.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.stats import ttest_rel

from .load import RunResult

SIGNIFICANCE_LEVEL = 0.05


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


@dataclass(frozen=True)
class PairedTest:
    """Paired t-test over the seeds both strategies ran."""

    n_pairs: int
    p_value: float | None  # None with < 2 pairs, or when every paired score is identical (t undefined)

    @property
    def beyond_seed_noise(self) -> bool | None:
        return None if self.p_value is None else self.p_value < SIGNIFICANCE_LEVEL


@dataclass(frozen=True)
class Row:
    task: str
    dataset: str
    metric: str
    model: str
    train_size: int
    feature_ensemble: SideSummary | None  # None when no run of that strategy exists for this row
    finetune: SideSummary | None
    paired: PairedTest

    @property
    def complete(self) -> bool:
        return self.feature_ensemble is not None and self.finetune is not None

    @property
    def delta(self) -> float | None:
        """finetune − feature_ensemble, of the test means."""
        return self.finetune.test_mean - self.feature_ensemble.test_mean if self.complete else None

    @property
    def winner(self) -> str | None:
        """The strategy with the higher test mean; "tie" when Δ is 0.00 at the precision the table shows."""
        if not self.complete:
            return None
        rounded = round(self.delta, 2)
        return "tie" if rounded == 0 else ("finetune" if rounded > 0 else "feature_ensemble")

    @property
    def params_ratio(self) -> float | None:
        """Trainable parameters, finetune / feature_ensemble."""
        if not self.complete or self.feature_ensemble.trainable_params == 0:
            return None
        return self.finetune.trainable_params / self.feature_ensemble.trainable_params

    @property
    def seconds_ratio(self) -> float | None:
        """Mean training time, finetune / feature_ensemble."""
        if not self.complete or self.feature_ensemble.train_seconds == 0:
            return None
        return self.finetune.train_seconds / self.feature_ensemble.train_seconds


def build_rows(runs: list[RunResult]) -> list[Row]:
    """Rows sorted by task, dataset, metric, model and train size, so the output never depends on file order."""
    # dataset and metric are in the key so that runs scored with different metrics are never averaged together.
    by_row: dict[tuple, dict[str, list[RunResult]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_row[(run.task, run.dataset, run.metric, run.model, run.train_size)][run.strategy].append(run)
    rows = []
    for key, by_strategy in sorted(by_row.items()):
        feature_ensemble = summarise(by_strategy.get("feature_ensemble", []))
        finetune = summarise(by_strategy.get("finetune", []))
        rows.append(Row(*key, feature_ensemble, finetune, paired_test(feature_ensemble, finetune)))
    return rows


def summarise(runs: list[RunResult]) -> SideSummary | None:
    if not runs:
        return None
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
    )


def paired_test(feature_ensemble: SideSummary | None, finetune: SideSummary | None) -> PairedTest:
    """ttest_rel(finetune, feature_ensemble) over the seeds both ran."""
    if feature_ensemble is None or finetune is None:
        return PairedTest(n_pairs=0, p_value=None)
    seeds = sorted(feature_ensemble.test_by_seed.keys() & finetune.test_by_seed.keys())
    if len(seeds) < 2:
        return PairedTest(n_pairs=len(seeds), p_value=None)
    with warnings.catch_warnings():
        # Identical paired differences make scipy warn about precision loss; the nan/0 it returns is handled.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ttest_rel([finetune.test_by_seed[s] for s in seeds],
                           [feature_ensemble.test_by_seed[s] for s in seeds])
    p_value = float(result.pvalue)
    return PairedTest(n_pairs=len(seeds), p_value=None if np.isnan(p_value) else p_value)
