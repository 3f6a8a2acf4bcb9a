"""Find the result.json files under run folders and load them into `RunResult` records.

A file that is missing, partial (status != "complete") or corrupt (bad JSON, a required key missing or of the
wrong type) is named in a `ResultFileWarning` and left out, so one crashed run never hides the rest of a sweep.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

RESULT_FILE = "result.json"
STRATEGIES = ("feature_ensemble", "finetune")
# The runner writes each run into <output_dir>/<task>/<strategy>/<model>/n<size>/seed<seed>/; such a folder
# without a result.json is a run that crashed or is still going.
_RUN_FOLDER_NAME = re.compile(r"seed\d+")


class ResultFileWarning(UserWarning):
    """A result file or folder was left out of the report."""


class InvalidResult(ValueError):
    """A result.json that cannot be used; the message says why."""


@dataclass(frozen=True)
class RunResult:
    """The fields of one complete result.json that the report uses."""

    path: Path
    mtime_ns: int  # decides which of two duplicate runs is kept (the newest)
    task: str
    dataset: str
    strategy: str
    model: str
    train_size: int  # examples actually used
    seed: int
    metric: str  # name of the main metric; dev and test are that metric x100
    dev: float
    test: float
    train_seconds: float  # the run's wall time: training plus any feature computation
    trainable_params: int
    layer_weights: tuple[float, ...] | None  # softmax-normalised scalar-mix weights, layer 0 first

    @property
    def cell(self) -> tuple[str, str, str, int, int]:
        """What identifies a run: two results with the same cell are duplicates."""
        return (self.task, self.strategy, self.model, self.train_size, self.seed)


def _is_text(value) -> bool:
    return isinstance(value, str) and value != ""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    # json.loads accepts NaN and Infinity; either would poison every mean it enters.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# key -> (check, what was expected, for the warning)
_REQUIRED = {
    "task": (_is_text, "a non-empty string"),
    "dataset": (_is_text, "a non-empty string"),
    "strategy": (lambda v: v in STRATEGIES, f"one of {', '.join(STRATEGIES)}"),
    "model": (_is_text, "a non-empty string"),
    "train_size": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "seed": (_is_int, "an integer"),
    "metric": (_is_text, "a non-empty string"),
    "dev": (_is_number, "a finite number"),
    "test": (_is_number, "a finite number"),
    "train_seconds": (lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    "trainable_params": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
}


def load_result(path: Path) -> RunResult:
    """Parse one result.json; raise InvalidResult saying what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidResult(f"corrupt: not readable JSON ({err})") from err
    if not isinstance(data, dict):
        raise InvalidResult("corrupt: the top level is not a JSON object")
    if data.get("status") != "complete":
        raise InvalidResult(f"partial: status is {data.get('status')!r}, expected 'complete'")
    for key, (check, expected) in _REQUIRED.items():
        if key not in data:
            raise InvalidResult(f"corrupt: required key {key!r} is missing")
        if not check(data[key]):
            raise InvalidResult(f"corrupt: {key!r} is {data[key]!r}, expected {expected}")
    fields = {key: data[key] for key in _REQUIRED}
    # A run's cost includes computing the frozen biLM's features (feature_ensemble, when not yet cached).
    feature_seconds = data.get("feature_seconds", 0)
    if not (_is_number(feature_seconds) and feature_seconds >= 0):
        raise InvalidResult(f"corrupt: 'feature_seconds' is {feature_seconds!r}, expected a non-negative number")
    fields["train_seconds"] += feature_seconds
    return RunResult(
        path=path,
        mtime_ns=path.stat().st_mtime_ns,
        **fields,
        layer_weights=_layer_weights(data.get("scalar_mix")),
    )


def _layer_weights(scalar_mix) -> tuple[float, ...] | None:
    """The scalar-mix weights, or None when the run has no scalar mix (scalar_mix or its weights null)."""
    wrong_type = InvalidResult(f"corrupt: 'scalar_mix' is {scalar_mix!r}, expected null or {{'weights': [numbers]}}")
    if scalar_mix is None:
        return None
    if not isinstance(scalar_mix, dict):
        raise wrong_type
    weights = scalar_mix.get("weights")
    if weights is None:
        return None
    if not isinstance(weights, list) or not weights or not all(_is_number(w) for w in weights):
        raise wrong_type
    return tuple(float(w) for w in weights)


def load_runs(run_dirs: list[Path]) -> tuple[list[RunResult], list[str]]:
    """Every complete run under the folders (recursively), one per cell, and a message per thing left out."""
    problems: list[str] = []

    def leave_out(message: str) -> None:
        problems.append(message)
        warnings.warn(message, ResultFileWarning, stacklevel=3)

    runs: list[RunResult] = []
    seen: set[Path] = set()  # the same file reached through two overlapping folders is one run
    for folder in run_dirs:
        if not folder.is_dir():
            leave_out(f"{folder}: no such folder, left out")
            continue
        for run_folder in _run_folders_without_result(folder):
            leave_out(f"{run_folder / RESULT_FILE}: missing (the run crashed or has not finished), left out")
        for path in sorted(folder.rglob(RESULT_FILE)):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                runs.append(load_result(path))
            except InvalidResult as err:
                leave_out(f"{path}: {err}, left out")
    return _keep_newest_per_cell(runs, leave_out), problems


def _run_folders_without_result(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.rglob("seed*")
        if _RUN_FOLDER_NAME.fullmatch(path.name) and path.is_dir() and not (path / RESULT_FILE).exists()
    )


def _keep_newest_per_cell(runs: list[RunResult], leave_out) -> list[RunResult]:
    """One run per cell: re-runs and copies in two folders would otherwise count one seed twice."""
    by_cell: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_cell[run.cell].append(run)
    kept = []
    for cell, group in sorted(by_cell.items()):
        group.sort(key=lambda run: (run.mtime_ns, str(run.path)))  # path breaks mtime ties deterministically
        newest = group[-1]
        if len(group) > 1:
            older = ", ".join(str(run.path) for run in group[:-1])
            leave_out(f"duplicate runs for task/strategy/model/train_size/seed {cell}: "
                      f"kept {newest.path} (newest), left out {older}")
        kept.append(newest)
    return kept
