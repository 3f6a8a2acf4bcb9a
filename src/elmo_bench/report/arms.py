"""A/A arms: one strategy's runs on two disjoint sets of seeds, compared as if they were two strategies.

A verdict procedure that finds a rerun of the same method different is anti-conservative; this is the real-data
check of it. `--aa-arm feature_ensemble:6-10:1-5` makes the runs of feature_ensemble at seeds 6..10 an arm named
`feature_ensemble_rerun`, renumbered in order onto seeds 1..5 (6 → 1, ..., 10 → 5), so each is paired with the
original arm's run of that seed and compared with it like any other strategy. A pair still counts only when both
runs trained on the same subset with the same budget, head and encoder: run the rerun seeds with
`data.subset_seed` set to their partner's seed (docs/statistics.md has the commands); otherwise the pairs are left
out and named. Only the baseline can be split this way, since every strategy is compared with the baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .load import RunResult
from .table import BaselineError, baseline_strategy

SUFFIX = "_rerun"


@dataclass(frozen=True)
class ArmSplit:
    strategy: str
    seeds: tuple[int, ...]  # the runs that become the rerun arm
    onto: tuple[int, ...]  # the seed each is renumbered to, in order

    def __post_init__(self):
        if len(self.seeds) != len(self.onto) or set(self.seeds) & set(self.onto):
            raise ValueError(f"--aa-arm {self.strategy}: seeds {list(self.seeds)} and {list(self.onto)} must be "
                             "disjoint lists of the same length")

    @property
    def name(self) -> str:
        return self.strategy + SUFFIX


def _seeds(text: str, spec: str) -> tuple[int, ...]:
    """"6-10" or "6,7,8" -> the seeds, in order."""
    try:
        if "-" in text.strip("-"):
            first, last = (int(part) for part in text.split("-"))
            return tuple(range(first, last + 1))
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--aa-arm {spec!r}: {text!r} is not a seed range like 6-10 or a list like 6,7,8") from None


def parse_arm_split(spec: str) -> ArmSplit:
    """STRATEGY:SEEDS:ONTO, e.g. "feature_ensemble:6-10:1-5"."""
    parts = spec.split(":")
    if len(parts) != 3 or not parts[0]:
        raise ValueError(f"--aa-arm {spec!r}: expected STRATEGY:SEEDS:PAIRED_SEEDS, e.g. feature_ensemble:6-10:1-5")
    return ArmSplit(parts[0], _seeds(parts[1], spec), _seeds(parts[2], spec))


def split_arm(runs: list[RunResult], split: ArmSplit) -> list[RunResult]:
    """The runs with `split.strategy`'s runs at `split.seeds` relabelled as the rerun arm on `split.onto` (an arm
    compared with the baseline, so not itself the baseline)."""
    baseline = baseline_strategy(runs)
    if split.strategy != baseline:
        raise BaselineError(f"--aa-arm {split.strategy}: only {baseline}, the strategy every other is compared with, "
                         "can be split into two arms")
    onto = dict(zip(split.seeds, split.onto))
    return [replace(run, strategy=split.name, seed=onto[run.seed], baseline=False)
            if run.strategy == split.strategy and run.seed in onto else run for run in runs]
