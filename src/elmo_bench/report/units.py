"""A run's test predictions, reduced to what each of its metrics needs per resampling unit (the family's rule in
metrics/resampling.py), and checked to give the score its result.json records.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cell.layout import read_predictions_text
from ..metrics.resampling import Metric, scored

SPLIT = "test"
TOLERANCE = 1e-3  # the predictions must give result.json's score to this many points (×100)


class PredictionsError(ValueError):
    """A run's predictions cannot be rescored; the message names the file and says why."""


@dataclass(frozen=True)
class TestSet:
    """One run's scored test predictions: the units, and each metric as a function of unit weights."""

    path: Path
    unit: str  # what one unit is: "sentence", "example", "article", "question" or "pair"
    units: tuple[str, ...]  # sorted unit ids: two runs on one test set have the same
    digest: str  # ids and gold labels of every line: equal digests are the same test set
    metrics: dict[str, Metric]  # the main metric first


def read_test_set(result_file: Path, predictions: str | None, metric: str, recorded: float, *, family: str) -> TestSet:
    """The run's test predictions (`predictions`: their file, relative to the run's folder), resampled by its task
    family's rule and checked to give the score its result.json records."""
    path = _predictions_path(result_file, predictions)
    rows = _read_rows(path, result_file.parent, predictions)
    try:
        unit, units, metrics = scored(family, metric, rows)
    except (KeyError, TypeError, ValueError) as error:
        raise PredictionsError(f"{path}: cannot be scored as {metric!r} ({error})") from None
    test_set = TestSet(path, unit, units, _digest(rows), metrics)
    rescored = float(metrics[metric](np.ones((1, len(units))))[0])
    if abs(rescored - recorded) > TOLERANCE:
        raise PredictionsError(f"{path}: the predictions give {metric} {rescored:.4f}, result.json records "
                               f"{recorded:.4f}")
    return test_set


def _predictions_path(result_file: Path, relative: str | None) -> Path:
    if not isinstance(relative, str):
        raise PredictionsError(f"{result_file}: no {SPLIT} predictions file is named ('predictions.{SPLIT}')")
    path = (result_file.parent / relative).resolve()
    if not path.is_relative_to(result_file.parent.resolve()):
        raise PredictionsError(f"{result_file}: 'predictions.{SPLIT}' points outside the run's folder")
    return path


def _read_rows(path: Path, folder: Path, name: str) -> list[dict]:
    try:
        lines = read_predictions_text(folder, name).splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PredictionsError(f"{path}: not readable ({error})") from None
    if not lines:
        raise PredictionsError(f"{path}: empty")
    try:  # one parse of the whole file is several times faster than one per line
        rows = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        rows = []
    if len(rows) != len(lines):  # a line that is not one JSON value: find it and name it
        rows = [_parsed_line(path, number, line) for number, line in enumerate(lines, start=1)]
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not {"id", "gold", "pred"} <= row.keys():
            raise PredictionsError(f"{path}, line {number}: expected an object with 'id', 'gold' and 'pred'")
    return rows


def _parsed_line(path: Path, number: int, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise PredictionsError(f"{path}, line {number}: not JSON ({error.msg})") from None


def _digest(rows: list[dict]) -> str:
    lines = sorted(f"{row['id']!r}\x1f{row['gold']!r}" for row in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
