"""result.json as a type: what the runner writes, and what the report, the probe and the scripts read back.

`CellResult.read` checks every key a reader relies on and raises InvalidResult naming the key, its value and what
was expected; keys a run from an older version did not write read as None. Torch-free.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from .atomic import write_json
from .layout import RESULT_FILE, CellKey, size_tag

COMPLETE = "complete"
# Results written before strategies recorded whether they are the baseline: the baseline was feature_ensemble.
LEGACY_BASELINE = "feature_ensemble"


class InvalidResult(ValueError):
    """A result.json that cannot be used; the message says why."""


def is_text(value) -> bool:
    return isinstance(value, str) and value != ""


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    # json.loads accepts NaN and Infinity; either would poison every mean it enters.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_seconds(value) -> bool:
    return is_number(value) and value >= 0


# key -> (check, what was expected): the keys every reader relies on
REQUIRED = {
    "task": (is_text, "a non-empty string"),
    "dataset": (is_text, "a non-empty string"),
    "strategy": (is_text, "a non-empty string"),
    "model": (is_text, "a non-empty string"),
    "train_size": (lambda v: is_int(v) and v > 0, "a positive integer"),
    "seed": (is_int, "an integer"),
    "metric": (is_text, "a non-empty string"),
    "dev": (is_number, "a finite number"),
    "test": (is_number, "a finite number"),
    "train_seconds": (is_seconds, "a non-negative number"),
    "trainable_params": (lambda v: is_int(v) and v >= 0, "a non-negative integer"),
}
# optional keys with a type: absent or null is fine, anything else must pass
OPTIONAL = {
    "eval_seconds": (is_seconds, "a non-negative number"),
    "feature_seconds": (is_seconds, "a non-negative number"),
    "baseline": (lambda v: isinstance(v, bool), "true or false"),
    "requested_train_size": (lambda v: is_number(v) and v > 0, "null or a positive number"),
    "config": (lambda v: isinstance(v, dict), "a JSON object"),
    "predictions": (lambda v: isinstance(v, dict) and all(is_text(p) for p in v.values()),
                    "an object of split: file"),
}


@dataclass
class CellResult:
    """One finished cell. The fields below `trainable_params` are descriptive; a run from an older version may
    lack them (None)."""

    task: str
    dataset: str
    strategy: str
    model: str
    train_size: int  # examples actually used
    seed: int
    metric: str  # the main metric; dev and test are it ×100
    dev: float
    test: float
    train_seconds: float
    trainable_params: int
    status: str = COMPLETE
    baseline: Optional[bool] = None  # the strategy every other one is compared with (strategies/: is_baseline)
    task_family: Optional[str] = None
    encoder: Optional[str] = None
    encoder_fingerprint: Optional[str] = None
    requested_train_size: Optional[float] = None
    train_pool: Optional[int] = None
    train_subset_digest: Optional[str] = None
    data_digest: Optional[str] = None
    subset_seed: Optional[int] = None
    metrics: Optional[dict] = None
    epochs: Optional[int] = None
    steps: Optional[int] = None
    best_epoch: Optional[int] = None
    best_step: Optional[int] = None
    stages: Optional[list] = None
    lr_at_best: Optional[dict] = None  # group -> {"lr", "of_peak"}: each group's rate at the selected checkpoint
    seconds_per_epoch: Optional[float] = None
    eval_seconds: Optional[float] = None  # scoring dev during training
    feature_seconds: Optional[float] = None
    feature_cost: Optional[list] = None
    history: Optional[list] = None
    total_params: Optional[int] = None
    encoder_params: Optional[int] = None
    peak_memory_mb: Optional[float] = None
    scalar_mix: Optional[dict] = None
    device: Optional[str] = None
    precision: Optional[str] = None  # what the cell computed in (trainer.precision, with auto resolved)
    threads: Optional[int] = None
    data_source: Optional[str] = None
    data_details: Optional[dict] = None
    versions: Optional[dict] = None
    predictions: Optional[dict] = None  # split -> file relative to the cell folder (layout.predictions_name)
    config: Optional[dict] = None
    extra_test: Optional[dict] = None
    floor: Optional[dict] = None  # a trivial baseline on test: {"rule", "metric", "test"} (tasks: Task.floor)
    host_speed: Optional[dict] = None
    wall_seconds: Optional[float] = None
    cpu_seconds: Optional[float] = None
    legacy: dict = field(default_factory=dict)  # keys of older versions (e.g. bilm_fingerprint), kept as read

    @property
    def is_baseline(self) -> bool:
        return self.strategy == LEGACY_BASELINE if self.baseline is None else self.baseline

    @property
    def key(self) -> CellKey:
        """The folder this result belongs in."""
        requested = self.requested_train_size
        return CellKey(self.task, self.strategy, self.model, size_tag(requested) if requested else "all", self.seed)

    def to_json(self) -> dict[str, Any]:
        record = {"status": self.status}
        record.update((k, v) for k, v in asdict(self).items() if k not in ("status", "legacy"))
        return record | self.legacy

    def write(self, folder: Path) -> None:
        write_json(folder / RESULT_FILE, self.to_json())

    @classmethod
    def from_json(cls, data: Any) -> CellResult:
        if not isinstance(data, dict):
            raise InvalidResult("corrupt: the top level is not a JSON object")
        if data.get("status") != COMPLETE:
            raise InvalidResult(f"partial: status is {data.get('status')!r}, expected {COMPLETE!r}")
        for key, (check, expected) in REQUIRED.items():
            if key not in data:
                raise InvalidResult(f"corrupt: required key {key!r} is missing")
            if not check(data[key]):
                raise InvalidResult(f"corrupt: {key!r} is {data[key]!r}, expected {expected}")
        for key, (check, expected) in OPTIONAL.items():
            if data.get(key) is not None and not check(data[key]):
                raise InvalidResult(f"corrupt: {key!r} is {data[key]!r}, expected {expected}")
        known = {f.name for f in fields(cls)} - {"legacy"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   legacy={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, path: Path) -> CellResult:
        """Parse one result.json; raise InvalidResult saying what is wrong with it."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InvalidResult(f"corrupt: not readable JSON ({err})") from err
        return cls.from_json(data)
