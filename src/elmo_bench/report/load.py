"""Find the result.json files under run folders and load them into `RunResult` records.

A file that is missing, partial (status != "complete") or corrupt (bad JSON, a required key missing or of the
wrong type) is named in a `ResultFileWarning` and left out, so one crashed run never hides the rest of a sweep.
The strategy is any non-empty name: the report compares whatever strategies the runner wrote.
"""
from __future__ import annotations

import json
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cell.identity import ADDED_KEYS
from ..cell.layout import PROBE_FILE, RESULT_FILE, CellKey, cell_folders
from ..cell.result import CellResult, InvalidResult, is_int, is_number, is_text
from ..config import conf_choices

# Config keys that never make two runs different settings: the seed axis, where a run was written, rerun switches.
NOT_A_SETTING = frozenset({"seed", "output_dir", "force", "keep_checkpoint", "data.subset_seed"})


class ResultFileWarning(UserWarning):
    """A result file or folder was left out of the report."""


@dataclass(frozen=True)
class FeatureUse:
    """The frozen encoder's features a run used: (cache key, seconds to compute) per split, whoever computed them.

    `costs` is None for a run from before costs were recorded (or that read a cache file from before); then
    `recorded_seconds`, what the run spent building its embedder, stands in, and that depends on run order."""

    costs: tuple[tuple[str, float], ...] | None
    recorded_seconds: float

    @property
    def one_off(self) -> float:
        """What computing this run's features costs, alone on a clean cache."""
        return self.recorded_seconds if self.costs is None else sum(seconds for _, seconds in self.costs)


@dataclass(frozen=True)
class ExtraTestResult:
    """One of the run's extra test sets (task.extra_test): its main-metric score ×100 and predictions file."""

    score: float
    predictions: str | None


@dataclass(frozen=True)
class HostSpeed:
    """The run's timing of the fixed reference workload (elmo_bench/host_speed.py): what ran, where, and its mean
    seconds over the run's start and end."""

    conditions: tuple[str, str, int]  # workload, device type, threads: timings compare only within equal ones
    seconds: float


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
    train_seconds: float  # training and scoring dev during training, without the frozen encoder's features
    trainable_params: int
    layer_weights: tuple[float, ...] | None  # softmax-normalised scalar-mix weights, layer 0 first
    config: dict[str, Any] = field(compare=False, repr=False)  # the resolved config, flattened: {"trainer.lr": 0.001}
    setting: str | None = None  # label of the run's setting, given only when settings are selected on dev
    family: str = ""  # the task family ("tagging", ...); the task's name for runs that did not record it
    identity: dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # what a pair must share
    features: FeatureUse = field(default_factory=lambda: FeatureUse(None, 0.0), compare=False, repr=False)
    test_predictions: str | None = None  # the test predictions file, relative to the run's folder
    extra_tests: dict[str, ExtraTestResult] = field(default_factory=dict, compare=False, repr=False)
    class_f1: dict[str, float] = field(default_factory=dict, compare=False, repr=False)  # test F1 per class/type
    best_at_last_eval: bool | None = None  # dev was still improving when training stopped; None: no history
    host_speed: HostSpeed | None = field(default=None, compare=False, repr=False)  # None: not recorded
    device: str = ""  # the device type it trained on ("cpu", "cuda"); "" where the run did not record it
    baseline: bool = False  # its strategy is the one every other is compared with (result.json's `baseline`)
    # the family whose rule resamples its test set (metrics/resampling.py); a run from before task_family was
    # recorded takes its stock task's family from conf/task
    resampling_family: str = field(default="", compare=False, repr=False)
    floor: float | None = None  # the task's trivial baseline on test (result.json's `floor`); None: not recorded
    # with --select-on-dev: the training seconds of the settings its strategy tried and did not keep (select.py)
    tuning_seconds: float = 0.0

    @property
    def cell(self) -> tuple[str, str, str, int, int]:
        """What identifies a run: two results with the same cell are duplicates."""
        return (self.task, self.strategy, self.model, self.train_size, self.seed)

    @property
    def row(self) -> tuple[str, str, str, str, int]:
        """The table row the run belongs to; dataset and metric are in it so that runs scored with different
        metrics are never averaged together."""
        return (self.task, self.dataset, self.metric, self.model, self.train_size)


def load_result(path: Path) -> RunResult:
    """Parse and check one result.json (cell/result.py); raise InvalidResult saying what is wrong with it."""
    result = CellResult.read(path)
    check_identity(path, result)
    config = _flat_config(result.config or {})
    return RunResult(
        path=path,
        mtime_ns=path.stat().st_mtime_ns,
        task=result.task, dataset=result.dataset, strategy=result.strategy, model=result.model,
        train_size=result.train_size, seed=result.seed, metric=result.metric, dev=result.dev, test=result.test,
        # a run's cost includes scoring dev during training (runs from before it was recorded: training only)
        train_seconds=result.train_seconds + (result.eval_seconds or 0),
        trainable_params=result.trainable_params,
        layer_weights=_layer_weights(result.scalar_mix),
        config=config,
        family=result.task_family or result.task,
        resampling_family=result.task_family or conf_choices("task").get(result.task, result.task),
        identity=pair_identity(result, config),
        # ... and computing the frozen encoder's features (feature_ensemble, when not yet cached)
        features=FeatureUse(_feature_costs(result.feature_cost), result.feature_seconds or 0),
        test_predictions=(result.predictions or {}).get("test"),
        extra_tests=_extra_tests(result.extra_test, result.metric),
        class_f1=_class_f1(result.metrics),
        best_at_last_eval=_best_at_last_eval(result.history, result.best_step),
        host_speed=_host_speed(result.host_speed),
        device=_device_type(result.device),
        baseline=result.is_baseline,
        floor=(result.floor or {}).get("test") if (result.floor or {}).get("metric") == result.metric else None,
    )


def check_identity(path: Path, result: CellResult) -> None:
    """A result in a cell folder (cell/layout.py) must say it is that cell: a copied or edited file would otherwise
    stand in for the run its folder names (e.g. a finetune result that says feature_ensemble would replace the
    baseline)."""
    folder = CellKey.of(path.parent)
    if folder is None:
        return  # not in the runner's layout (a hand-made folder): nothing to compare with
    claimed = result.key
    if result.requested_train_size is None and folder.size != "all":  # a run from before the size was recorded
        claimed = CellKey(claimed.task, claimed.strategy, claimed.model, folder.size, claimed.seed)
    for what, says, part in zip(("task", "strategy", "model", "train size", "seed"), claimed.relative.parts,
                                folder.relative.parts):
        if says != part:
            raise InvalidResult(f"identity: its {what} is {says!r}, but its folder says {part!r}"
                                " (a file moved or edited by hand?)")


def _device_type(device) -> str:
    """"cuda" for "cuda:1": seconds compare across GPUs of one kind of device, never between CPU and GPU."""
    if device is None:
        return ""
    if not is_text(device):
        raise InvalidResult(f"corrupt: 'device' is {device!r}, expected a device name such as 'cpu' or 'cuda:0'")
    return device.split(":")[0]


def _host_speed(entry) -> HostSpeed | None:
    """The reference workload's timing, or None for a run from before it was recorded."""
    if entry is None:
        return None
    fields = entry if isinstance(entry, dict) else {}
    seconds = fields.get("seconds")
    if not (is_text(fields.get("workload")) and is_text(fields.get("device")) and is_int(fields.get("threads"))
            and isinstance(seconds, list) and seconds and all(is_number(s) and s > 0 for s in seconds)):
        raise InvalidResult(f"corrupt: 'host_speed' is {entry!r}, expected {{'workload', 'device', 'threads', "
                            "'seconds': [positive numbers]}")
    return HostSpeed((fields["workload"], fields["device"], fields["threads"]), sum(seconds) / len(seconds))


def _best_at_last_eval(history, best_step) -> bool | None:
    """Whether the run's best dev score came at its last evaluation: training stopped while still improving,
    so the run is limited by its budget, not converged. None where the result records no history."""
    if not (isinstance(history, list) and history and isinstance(history[-1], dict) and is_int(best_step)):
        return None
    return history[-1].get("step") == best_step


def _class_f1(metrics) -> dict[str, float]:
    """The test F1 of each class or entity type ("f1_<name>" in result.json's metrics), where recorded."""
    test = metrics.get("test") if isinstance(metrics, dict) else None
    if not isinstance(test, dict):
        return {}
    return {key[3:]: float(value) for key, value in sorted(test.items()) if key.startswith("f1_") and is_number(value)}


def _extra_tests(extra, metric: str) -> dict[str, ExtraTestResult]:
    """The extra test sets that have a score in the run's main metric (one without gold labels has none)."""
    if extra is None:
        return {}
    if not isinstance(extra, dict) or not all(isinstance(record, dict) for record in extra.values()):
        raise InvalidResult(f"corrupt: 'extra_test' is {extra!r}, expected {{name: {{'score', 'predictions'}}}}")
    return {name: ExtraTestResult(float(record["score"]), record.get("predictions"))
            for name, record in sorted(extra.items())
            if record.get("metric", metric) == metric and is_number(record.get("score"))}


# What two runs compared as a pair must share (besides the task, size and seed of their row), by the name the
# report gives it; each value is what the runner recorded, with a fallback for runs from before it did.
TRAINER_BUDGET = ("max_epochs", "min_steps", "max_steps", "eval_steps", "patience", "min_delta", "batch_tokens")


def pair_identity(result: CellResult, config: dict[str, Any]) -> dict[str, str]:
    def picked(prefix: str, keys=None, settings: dict[str, Any] = config) -> str:
        return json.dumps({key: value for key, value in sorted(settings.items()) if key.startswith(prefix)
                           and (keys is None or key[len(prefix):] in keys)}, sort_keys=True)

    files = ", ".join(Path(part.strip()).name for part in str(result.data_source or "").split(","))
    return {
        "train subset": str(result.train_subset_digest),
        "data": result.data_digest or f"{result.dataset} ({result.train_pool} training examples; {files})",
        "head": picked("head."),
        "trainer budget": picked("trainer.", TRAINER_BUDGET, {**ADDED_KEYS, **config}),
        # runs written before the encoder seam recorded "bilm_fingerprint"; older ones the model's name only
        "encoder": (result.encoder_fingerprint or result.legacy.get("bilm_fingerprint")
                    or picked("model.", ("name", "random_weights"))),
    }


def _feature_costs(costs) -> tuple[tuple[str, float], ...] | None:
    """(key, seconds) per split ((): no features used), or None when the run did not record them all."""
    wrong = InvalidResult(f"corrupt: 'feature_cost' is {costs!r}, expected a list of {{'key', 'seconds'}}")
    if costs is None:
        return None
    if not isinstance(costs, list) or not all(isinstance(cost, dict) and is_text(cost.get("key")) for cost in costs):
        raise wrong
    if any(cost.get("seconds") is None for cost in costs):  # a cache file from before costs were kept
        return None
    if not all(is_number(cost["seconds"]) and cost["seconds"] >= 0 for cost in costs):
        raise wrong
    return tuple((cost["key"], float(cost["seconds"])) for cost in costs)


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
    if not isinstance(weights, list) or not weights or not all(is_number(w) for w in weights):
        raise wrong_type
    return tuple(float(w) for w in weights)


def _flat_config(config) -> dict[str, Any]:
    """The nested config record as dotted keys, so two runs' settings compare key by key."""
    if not isinstance(config, dict):
        raise InvalidResult(f"corrupt: 'config' is {config!r}, expected a JSON object")
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update({f"{key}.{inner}": leaf for inner, leaf in _flat_config(value).items()})
        else:
            flat[key] = value
    return flat


def differing_keys(runs: list[RunResult]) -> list[str]:
    """The config keys, sorted, whose values are not the same in every run (a key some runs lack counts)."""
    keys = set().union(*(run.config for run in runs)) - NOT_A_SETTING
    return sorted(key for key in keys
                  if len({(key in run.config, json.dumps(run.config.get(key), sort_keys=True)) for run in runs}) > 1)


def setting_label(run: RunResult, keys: list[str]) -> str:
    """The run's values of `keys`, e.g. "strategy.encoder_lr_factor=0.1, trainer.lr=0.0003"."""
    return ", ".join(f"{key}={_shown(run.config[key])}" if key in run.config else f"{key}=(unset)" for key in keys)


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def leave_out(problems: list[str], message: str) -> None:
    """Record why something is not in the report, and warn about it."""
    problems.append(message)
    warnings.warn(message, ResultFileWarning, stacklevel=3)


def load_runs(run_dirs: list[Path]) -> tuple[list[RunResult], list[str]]:
    """Every complete run under the folders (recursively), duplicates included, and a message per thing left out."""
    problems: list[str] = []
    runs: list[RunResult] = []
    seen: set[Path] = set()  # the same file reached through two overlapping folders is one run
    for folder in run_dirs:
        if not folder.is_dir():
            leave_out(problems, f"{folder}: no such folder, left out")
            continue
        for run_folder in _run_folders_without_result(folder):
            leave_out(problems, f"{run_folder / RESULT_FILE}: missing (the run crashed or has not finished), left out")
        for path in sorted(folder.rglob(RESULT_FILE)):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                runs.append(load_result(path))
            except InvalidResult as err:
                leave_out(problems, f"{path}: {err}, left out")
    return runs, problems


def _run_folders_without_result(folder: Path) -> list[Path]:
    """Cell folders without a result.json: runs that crashed or are still going (probes write no result)."""
    return [path for path in cell_folders(folder)
            if not (path / RESULT_FILE).exists() and not (path / PROBE_FILE).exists()]


def keep_newest_per_cell(runs: list[RunResult], problems: list[str]) -> list[RunResult]:
    """One run per cell and setting: re-runs and copies in two folders would otherwise count one seed twice."""
    by_cell: dict[tuple, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_cell[(*run.cell, run.setting or "")].append(run)
    kept = []
    for _, group in sorted(by_cell.items()):
        group.sort(key=lambda run: (run.mtime_ns, str(run.path)))  # path breaks mtime ties deterministically
        newest = group[-1]
        if len(group) > 1:
            leave_out(problems, _duplicate_message(group))
        kept.append(newest)
    return kept


def _duplicate_message(group: list[RunResult]) -> str:
    """Names the kept and the dropped files; says so when they are different settings rather than re-runs."""
    older = ", ".join(str(run.path) for run in group[:-1])
    message = (f"duplicate runs for task/strategy/model/train_size/seed {group[-1].cell}: "
               f"kept {group[-1].path} (newest), left out {older}")
    keys = differing_keys(group)
    if keys:
        message += (f"; their configs differ in {', '.join(keys)}: to choose one setting per strategy on dev, "
                    f"report with --select-on-dev")
    return message
