"""The comparison table: one row per (task, model, train size), every strategy against the baseline.

Scores are the main metric on TEST: mean and sample std (ddof=1) over seeds. Each strategy other than the baseline
is compared with it over the seeds both ran, pair by pair: a pair counts only when both runs trained on the
same subset of the same data, with the same head, trainer budget and encoder, and were scored on the same test
set; a pair that is not is left out and the row says what differed. Δ is the mean paired difference; its 95%
interval and p-value come from a t on the seeds' differences with the test set's shared variance added
(inference.py, fed by the test-unit bootstrap of bootstrap.py), for every metric of the task; the p-values of
the main metric are Holm-adjusted over all comparisons of the report, and the verdict follows the adjusted
p-value. Each comparison also states its minimum detectable effect: what its variance and seeds could have found.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from ..cell.result import LEGACY_BASELINE
from .bootstrap import RESAMPLES, Crossover, Interval, crossover, holm, paired_interval, resampled_scores
from .inference import minimum_detectable_effect
from .load import RunResult
from .units import PredictionsError, read_test_set

SIGNIFICANCE_LEVEL = 0.05
# A verdict needs at least two paired seeds: with one, the interval covers the test set's sampling but not the
# run's own (initialisation, training subset), so it would read one lucky run as a difference of strategies.
MIN_SEEDS_FOR_VERDICT = 2
# Two strategies' mean timings of the reference workload further apart than this mean different hosts: one run's
# timing moved up to 1.5x between repeats on a busy 2-core machine, a slower host took 2.9x as long for the same
# updates. The cost ratio is then levelled by them (host_slowdown).
HOST_SPEED_TOLERANCE = 1.5
class BaselineError(ValueError):
    """The runs do not name one baseline to compare with; the message says why."""


def baseline_strategy(runs: list[RunResult]) -> str:
    """What every other strategy is compared with: the strategy whose runs say they are the baseline (result.json's
    `baseline`, which the strategy sets; cell/result.py reads it for files from before it was recorded)."""
    names = sorted({run.strategy for run in runs if run.baseline})
    if len(names) > 1:
        raise BaselineError(f"the runs of {', '.join(names)} each say they are the baseline; report them apart")
    return names[0] if names else LEGACY_BASELINE


def report_baseline(rows: list[Row]) -> str:
    return rows[0].baseline if rows else LEGACY_BASELINE


def strategy_order(strategies, baseline: str) -> list[str]:
    """The baseline first, then the others by name, so tables and figures list strategies alike."""
    return sorted(set(strategies), key=lambda strategy: (strategy != baseline, strategy))


@dataclass(frozen=True)
class SideSummary:
    """One strategy's runs within one table row, summarised over seeds."""

    n: int
    test_mean: float
    test_std: float | None  # sample std (ddof=1); None when n == 1
    dev_mean: float
    train_seconds: float  # mean over seeds: training and evaluation, without features
    feature_seconds: float  # mean over seeds: computing the features the run used, on a clean cache (one-off)
    feature_seconds_amortised: float  # the same, shared among every run of the report that used those features
    trainable_params: float  # mean over seeds (the same for every seed unless the model changed)
    test_by_seed: dict[int, float]
    setting: str | None  # the setting chosen on dev (--select-on-dev), "" when only one was run; else None
    extra_tests: dict[str, tuple[float, int]] = field(default_factory=dict)  # name -> (mean score, seeds)
    still_improving: int = 0  # seeds whose best dev came at their last evaluation (stopped by the budget)
    class_f1: dict[str, float] = field(default_factory=dict)  # class or entity type -> mean test F1 over seeds
    devices: tuple[str, ...] = ()  # the device types its runs recorded ("cpu", "cuda"), sorted
    tuning_seconds: float = 0.0  # with --select-on-dev: mean training seconds of the settings tried and not kept
    floor: float | None = None  # mean test score of the task's trivial baseline over its runs; None: not recorded

    @property
    def run_seconds(self) -> float:
        """What one run costs on its own: training plus its features, whoever computed them first, plus the
        training of the tuning grid's other settings (select.py)."""
        return self.train_seconds + self.feature_seconds + self.tuning_seconds


@dataclass(frozen=True)
class RunScores:
    """A run's test predictions rescored: every metric on the full test set and under each resample."""

    test_set: str  # digest of the test set's ids and gold labels
    unit: str
    units: int
    full: dict[str, float]  # metric -> score ×100, the main metric first
    resampled: dict[str, np.ndarray]  # metric -> (resamples,)


@dataclass(frozen=True)
class Comparison:
    """One strategy against the baseline within one row, over their valid pairs of seeds."""

    strategy: str
    baseline: str
    pairs: int  # seeds compared
    left_out: tuple[str, ...]  # one line per pair of seeds not compared, saying what differed
    delta: float | None  # mean paired difference of the main metric; None without a valid pair
    intervals: dict[str, Interval]  # metric -> interval, the main metric first; empty without predictions
    extra_intervals: dict[str, Interval]  # extra test set -> interval of the main metric (descriptive)
    no_interval: str  # why there are no intervals ("" when there are)
    seconds_ratio: float | None  # run seconds (training + one-off features), strategy / baseline
    params_ratio: float | None  # trainable parameters, strategy / baseline; None when the baseline has none
    # how much slower the strategy's runs timed a reference workload than the baseline's, where that is more than
    # HOST_SPEED_TOLERANCE either way (see host_slowdown); None: their seconds compare as they are
    host_slowdown: float | None = None
    p_adjusted: float | None = None  # Holm over every comparison's main-metric p-value in the report
    devices_differ: bool = False  # one side trained on a CPU, the other on a GPU: no seconds ratio
    hosts_timed: bool = True  # every run of both sides timed the same reference workload (host_slowdown)
    # the |Δ| found with 80% power at Holm's first-step level α/m (what this comparison needs on its own), and
    # at α before any adjustment; None without a verdict
    mde: float | None = None
    mde_unadjusted: float | None = None

    @property
    def host_factor(self) -> float:
        """The host slowdown the seconds ratio is divided by (1: not adjusted)."""
        return 1.0 if self.host_slowdown is None else self.host_slowdown

    @property
    def host_adjusted_ratio(self) -> float | None:
        """The seconds ratio on the baseline's host footing; None where it needs no levelling (or has no ratio)."""
        if self.host_slowdown is None or self.seconds_ratio is None:
            return None
        return self.seconds_ratio / self.host_slowdown

    @property
    def cost_ratio(self) -> float | None:
        """The run-time ratio to report: on an equal host footing where the runs met different hosts."""
        return self.seconds_ratio if self.host_adjusted_ratio is None else self.host_adjusted_ratio

    @property
    def main(self) -> Interval | None:
        return next(iter(self.intervals.values()), None)

    @property
    def winner(self) -> str | None:
        """The better strategy where the Holm-adjusted p-value resolves the difference, else None."""
        if self.main is None or self.p_adjusted is None or self.p_adjusted >= SIGNIFICANCE_LEVEL:
            return None
        return self.strategy if self.main.delta > 0 else self.baseline

    @property
    def verdict(self) -> str:
        """Who is better, only where the Holm-adjusted p-value says so."""
        if self.main is None:
            return "no interval"
        if self.pairs < MIN_SEEDS_FOR_VERDICT:
            return "not resolved (one seed: the interval covers test sampling only)"
        if self.winner is not None:
            return f"{self.winner} better"
        return "not resolved (only before Holm)" if self.main.excludes_zero else "not resolved"


@dataclass(frozen=True)
class Row:
    task: str
    dataset: str
    metric: str
    model: str
    train_size: int
    family: str
    sides: dict[str, SideSummary]  # the strategies run for this row, in strategy_order
    comparisons: dict[str, Comparison] = field(default_factory=dict)  # per strategy other than the baseline
    unit: str = ""  # what the bootstrap resampled on this row's test set, "" without predictions
    baseline: str = LEGACY_BASELINE  # the strategy every other one is compared with (baseline_strategy)

    def side(self, strategy: str) -> SideSummary | None:
        return self.sides.get(strategy)

    def comparison(self, strategy: str) -> Comparison | None:
        return self.comparisons.get(strategy)

    def levelled_run_seconds(self, strategy: str) -> float:
        """The strategy's mean run seconds on the baseline's host footing: divided by its host slowdown, as the
        host-adjusted ratio is; the baseline's, and those of runs that met a host like the baseline's, as they are."""
        comparison = self.comparisons.get(strategy)
        return self.sides[strategy].run_seconds / (1.0 if comparison is None else comparison.host_factor)

    @property
    def curve(self) -> tuple[str, str, str, str]:
        """The learning curve the row is a point of."""
        return (self.task, self.dataset, self.metric, self.model)


def build_rows(runs: list[RunResult], resamples: int = RESAMPLES) -> list[Row]:
    """Rows sorted by task, dataset, metric, model and train size, so the output never depends on file order."""
    scores = score_runs(runs, resamples)
    amortised = amortised_feature_seconds(runs)
    baseline = baseline_strategy(runs)
    by_row: dict[tuple, dict[str, list[RunResult]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_row[run.row][run.strategy].append(run)
    rows = []
    for key, by_strategy in sorted(by_row.items()):
        sides = {strategy: summarise(by_strategy[strategy], amortised)
                 for strategy in strategy_order(by_strategy, baseline)}
        comparisons = {} if baseline not in sides else {
            strategy: compare(key, strategy, by_strategy[strategy], (baseline, by_strategy[baseline]), sides, scores)
            for strategy in sides if strategy != baseline}
        units = {scores[(run.path, TEST)].unit for group in by_strategy.values() for run in group
                 if isinstance(scores[(run.path, TEST)], RunScores)}
        family = by_strategy[next(iter(sides))][0].family
        rows.append(Row(*key, family, sides, comparisons, ", ".join(sorted(units)), baseline))
    return _holm_adjusted(rows)


def summarise(runs: list[RunResult], amortised: dict) -> SideSummary:
    runs = sorted(runs, key=lambda run: run.seed)
    test = np.array([run.test for run in runs])
    return SideSummary(
        n=len(runs),
        test_mean=float(test.mean()),
        test_std=float(test.std(ddof=1)) if len(runs) > 1 else None,
        dev_mean=float(np.mean([run.dev for run in runs])),
        train_seconds=float(np.mean([run.train_seconds for run in runs])),
        feature_seconds=float(np.mean([run.features.one_off for run in runs])),
        feature_seconds_amortised=float(np.mean([amortised[run.path] for run in runs])),
        trainable_params=float(np.mean([run.trainable_params for run in runs])),
        test_by_seed={run.seed: run.test for run in runs},
        still_improving=sum(bool(run.best_at_last_eval) for run in runs),
        setting=runs[0].setting,  # selection keeps one setting per side, so every run has the same
        extra_tests={name: (float(np.mean(scores)), len(scores))
                     for name, scores in sorted(_extra_scores(runs).items())},
        class_f1={name: float(np.mean([run.class_f1[name] for run in runs]))
                  for name in sorted(set.intersection(*(set(run.class_f1) for run in runs)))},
        devices=tuple(sorted({run.device for run in runs if run.device})),
        tuning_seconds=float(np.mean([run.tuning_seconds for run in runs])),
        floor=None if any(run.floor is None for run in runs) else float(np.mean([run.floor for run in runs])),
    )


def _extra_scores(runs: list[RunResult]) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for name, extra in run.extra_tests.items():
            scores[name].append(extra.score)
    return scores


def amortised_feature_seconds(runs: list[RunResult]) -> dict:
    """Per run: each of its features' cost divided among the report's runs that used the same features."""
    users: dict[str, int] = defaultdict(int)
    for run in runs:
        for key, _ in run.features.costs or ():
            users[key] += 1
    return {run.path: run.features.recorded_seconds if run.features.costs is None
            else sum(seconds / users[key] for key, seconds in run.features.costs) for run in runs}


TEST = "test"  # the split every comparison is made on; extra test sets are "extra:<name>"


def score_runs(runs: list[RunResult], resamples: int) -> dict:
    """Per (run, split): its RunScores, or why its predictions could not be rescored. Runs scored on one test
    set share every draw of units."""
    scores: dict = {}
    by_test_set: dict[tuple, list] = defaultdict(list)
    for run in runs:
        splits = [(TEST, run.test_predictions, run.test)] + [
            (f"extra:{name}", extra.predictions, extra.score) for name, extra in run.extra_tests.items()]
        for split, predictions, recorded in splits:
            try:
                test_set = read_test_set(run.path, predictions, run.metric, recorded, family=run.resampling_family)
            except PredictionsError as error:
                scores[(run.path, split)] = str(error)
                continue
            by_test_set[(run.task, run.dataset, run.metric, split, test_set.digest)].append((run, test_set))
    for identity, group in sorted(by_test_set.items()):
        split, units = identity[3], len(group[0][1].units)
        metrics = [metric for _, test_set in group for metric in test_set.metrics.values()]
        resampled = iter(resampled_scores(metrics, units, resamples, identity))
        full = iter(float(metric(np.ones((1, units)))[0]) for metric in metrics)
        for run, test_set in group:
            names = list(test_set.metrics)
            scores[(run.path, split)] = RunScores(test_set.digest, test_set.unit, units,
                                                  {name: next(full) for name in names},
                                                  {name: next(resampled) for name in names})
    return scores


def pair_differences(strategy_run: RunResult, baseline_run: RunResult, scores: dict) -> list[str]:
    """What the two runs of one seed do not share, by name; empty for a valid pair."""
    differing = [name for name, value in strategy_run.identity.items()
                 if value != baseline_run.identity.get(name)]
    test_sets = {getattr(scores[(run.path, TEST)], "test_set", None) for run in (strategy_run, baseline_run)}
    if len(test_sets) > 1 and None not in test_sets:
        differing.append("test set")
    return differing


def compare(row_key: tuple, strategy: str, runs: list[RunResult], baseline_runs: tuple[str, list[RunResult]],
            sides: dict[str, SideSummary], scores: dict) -> Comparison:
    """`strategy`'s runs against the baseline's (its name and runs), seed by seed."""
    baseline_name, baseline_runs = baseline_runs
    own, base = ({run.seed: run for run in group} for group in (runs, baseline_runs))
    pairs, left_out = [], []
    for seed in sorted(own.keys() & base.keys()):
        differing = pair_differences(own[seed], base[seed], scores)
        if differing:
            left_out.append(f"seed {seed}: {', '.join(differing)} differ{'s' if len(differing) == 1 else ''}")
        else:
            pairs.append((own[seed], base[seed]))
    side, baseline = sides[strategy], sides[baseline_name]
    delta = float(np.mean([mine.test - theirs.test for mine, theirs in pairs])) if pairs else None
    intervals, no_interval = _intervals(row_key, strategy, pairs, scores, TEST)
    extra_names = sorted(set.intersection(*(set(run.extra_tests) for pair in pairs for run in pair))) if pairs else []
    extra_intervals = {}
    for name in extra_names:
        extra, _ = _intervals(row_key, strategy, pairs, scores, f"extra:{name}")
        if extra:
            extra_intervals[name] = next(iter(extra.values()))
    devices_differ = not one_device_type(side, baseline)
    return Comparison(strategy, baseline_name, len(pairs), tuple(left_out), delta, intervals, extra_intervals, no_interval,
                      None if devices_differ else _ratio(side.run_seconds, baseline.run_seconds),
                      _ratio(side.trainable_params, baseline.trainable_params),
                      host_slowdown(runs, baseline_runs), devices_differ=devices_differ,
                      hosts_timed=one_timed_workload(runs, baseline_runs))


def one_device_type(*sides: SideSummary) -> bool:
    """Whether the sides' runs trained on one device type (those that recorded it): a GPU's seconds against a
    CPU's measure the hardware, not the strategy."""
    return len({device for side in sides for device in side.devices}) <= 1


def one_timed_workload(runs: list[RunResult], baseline_runs: list[RunResult]) -> bool:
    """Whether every run of both sides timed the same reference workload on the same device and threads, so their
    hosts can be compared (and levelled where they differ)."""
    speeds = [run.host_speed for run in (*runs, *baseline_runs)]
    return None not in speeds and len({speed.conditions for speed in speeds}) == 1


def host_slowdown(runs: list[RunResult], baseline_runs: list[RunResult]) -> float | None:
    """How much slower the strategy's runs timed the reference workload (elmo_bench/host_speed.py) than the
    baseline's, each side's timing a mean over its runs' start and end; only where every run timed the same
    workload on the same device and threads and the two sides lie more than HOST_SPEED_TOLERANCE apart. None
    otherwise (raw seconds compare as they are, or cannot be put level)."""
    if not one_timed_workload(runs, baseline_runs):
        return None
    own, base = (float(np.mean([run.host_speed.seconds for run in group])) for group in (runs, baseline_runs))
    slower = own / base
    return None if max(slower, 1 / slower) <= HOST_SPEED_TOLERANCE else slower


def _intervals(row_key: tuple, strategy: str, pairs: list, scores: dict, split: str) -> tuple[dict[str, Interval], str]:
    """Per metric, the paired interval on `split` ("test" or "extra:<name>"); or none, and why."""
    if not pairs:
        return {}, "no pair of seeds to compare"
    paired = [(scores[(mine.path, split)], scores[(theirs.path, split)]) for mine, theirs in pairs]
    unscored = [score for pair in paired for score in pair if not isinstance(score, RunScores)]
    if unscored:
        return {}, unscored[0]
    if len({score.test_set for pair in paired for score in pair}) > 1:
        return {}, f"the runs' {split} sets differ"
    task, dataset, metric, model, _ = row_key
    seeds = tuple(mine.seed for mine, _ in pairs)
    identity = (task, dataset, metric, model, strategy, seeds)  # not the size: curves resample seeds alike
    intervals = {}
    for name in paired[0][0].full:
        observed = np.array([mine.full[name] - theirs.full[name] for mine, theirs in paired])
        resampled = np.stack([mine.resampled[name] - theirs.resampled[name] for mine, theirs in paired])
        intervals[name] = paired_interval(observed, resampled, identity, paired[0][0].units)
    return intervals, ""


def _ratio(value: float, reference: float) -> float | None:
    return None if reference == 0 else value / reference


def _holm_adjusted(rows: list[Row]) -> list[Row]:
    """The rows with every comparison's Holm-adjusted p-value and detectable effects, over all comparisons that
    can give a verdict (an interval over at least MIN_SEEDS_FOR_VERDICT paired seeds)."""
    comparisons = [(row, name, comparison) for row in rows for name, comparison in row.comparisons.items()]
    p_values = [comparison.main.p_value if comparison.main and comparison.pairs >= MIN_SEEDS_FOR_VERDICT
                else None for _, _, comparison in comparisons]
    tested = sum(p is not None for p in p_values)
    for (row, name, comparison), p_value, adjusted in zip(comparisons, p_values, holm(p_values)):
        mde = {} if p_value is None else {
            "mde": minimum_detectable_effect(comparison.main.se, comparison.main.df, SIGNIFICANCE_LEVEL / tested),
            "mde_unadjusted": minimum_detectable_effect(comparison.main.se, comparison.main.df, SIGNIFICANCE_LEVEL)}
        row.comparisons[name] = replace(comparison, p_adjusted=adjusted, **mde)
    return rows


def crossovers(rows: Iterable[Row]) -> dict[tuple, Crossover]:
    """Per learning curve and strategy measured at two sizes or more with intervals: where it overtakes the
    baseline for good."""
    points: dict[tuple, list[tuple[int, Interval]]] = defaultdict(list)
    for row in rows:
        for strategy, comparison in row.comparisons.items():
            if comparison.main is not None:
                points[(*row.curve, strategy)].append((row.train_size, comparison.main))
    return {key: crossover([size for size, _ in curve], [interval for _, interval in curve])
            for key, curve in sorted(points.items()) if len(curve) > 1}
