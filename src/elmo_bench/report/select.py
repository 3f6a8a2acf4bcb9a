"""--select-on-dev, for an equal tuning budget: per table row and strategy, keep the setting best on dev.

A tuning sweep runs every strategy at several settings (say trainer.lr × strategy.encoder_lr_factor), each into its
own output_dir, so several results share one cell. A run's setting is its values of the config keys that differ
between the runs of its row and strategy (the seed, output_dir, the rerun switches and data.subset_seed never
count: load.NOT_A_SETTING). The setting with the highest mean dev score over its seeds is kept (ties: the first
label in sorted order) and only its runs reach the table: test is read once, for the chosen setting, and never
used to choose. What the settings not kept cost in training is carried by the kept runs (`tuning_seconds`), so
the report's cost ratio counts the whole grid: an arm that tried three settings paid for three runs.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from .load import RunResult, differing_keys, keep_newest_per_cell, setting_label


@dataclass(frozen=True)
class Candidate:
    """One setting a strategy ran within one row."""

    setting: str  # e.g. "strategy.encoder_lr_factor=0.1, trainer.lr=0.001"; "" when all runs share one config
    n: int  # seeds run
    dev_mean: float


@dataclass(frozen=True)
class Selection:
    """The settings one strategy ran within one table row, and the one kept."""

    row_key: tuple[str, str, str, str, int]  # task, dataset, metric, model, train size: RunResult.row
    strategy: str
    candidates: tuple[Candidate, ...]  # sorted by setting label
    chosen: Candidate


def keep_best_on_dev(runs: list[RunResult], problems: list[str]) -> tuple[list[RunResult], list[Selection]]:
    """The runs of each row and strategy's best setting on dev (labelled), and what was chosen among what."""
    labelled = keep_newest_per_cell(_labelled(runs), problems)  # a re-run of one setting is still a duplicate
    kept: list[RunResult] = []
    selections = []
    for (row_key, strategy), group in sorted(_by_row_and_strategy(labelled).items()):
        selection = _select(row_key, strategy, group)
        selections.append(selection)
        # per run of the kept setting: the mean training seconds of each setting not kept, over its seeds
        others = sum(float(np.mean([run.train_seconds for run in group if run.setting == candidate.setting]))
                     for candidate in selection.candidates if candidate != selection.chosen)
        kept += [replace(run, tuning_seconds=others) for run in group if run.setting == selection.chosen.setting]
    return kept, selections


def _by_row_and_strategy(runs: list[RunResult]) -> dict[tuple, list[RunResult]]:
    groups: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        groups[(run.row, run.strategy)].append(run)
    return groups


def _labelled(runs: list[RunResult]) -> list[RunResult]:
    """Each run with its setting label, named by the keys that vary within its own row and strategy."""
    labelled = []
    for group in _by_row_and_strategy(runs).values():
        keys = differing_keys(group)
        labelled += [replace(run, setting=setting_label(run, keys)) for run in group]
    return labelled


def _select(row_key: tuple, strategy: str, group: list[RunResult]) -> Selection:
    dev_by_setting: dict[str, list[float]] = defaultdict(list)
    for run in group:
        dev_by_setting[run.setting].append(run.dev)
    candidates = tuple(Candidate(setting, len(dev), float(np.mean(dev)))
                       for setting, dev in sorted(dev_by_setting.items()))
    chosen = max(candidates, key=lambda candidate: candidate.dev_mean)  # max keeps the first of equal means
    return Selection(row_key, strategy, candidates, chosen)
