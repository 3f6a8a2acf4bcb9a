"""Typed configuration: the schema behind `conf/`, registered with Hydra's ConfigStore.

Every knob a paper would report is a field here with its default; YAML files in `conf/` only choose
among groups and override values. A wrong key fails at composition (the struct schema names it); a
wrong value fails in `__post_init__` when the run config is built, before any work.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from .data.naming import dataset_name, stock_dataset
from .cell.layout import cell_subdir
from .errors import ConfigError
from .files import cache_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"config key '{key}': {message}")


def check_path_part(value: str, key: str) -> None:
    """A value that becomes one folder or file name: it must stay one name inside its parent folder."""
    check(bool(value) and not any(sep in value for sep in ("/", "\\", "\0")), key,
          f"names a folder, so it must be one name without '/', '\\' or NUL, got {value!r}")
    check(not value.startswith("."), key,
          f"names a folder, so it must not start with '.' (hidden, or '..' climbing out), got {value!r}")


def check_seed(value: int, key: str) -> None:
    check(value >= 0, key, f"must be >= 0, got {value}")


def check_finite(value: Any, key: str = "") -> None:
    """Every float in a typed config (dataclasses, lists, dicts) is finite: `inf` would pass a range check such as
    `lr > 0` and fail hours later, far from the key that caused it (`nan` fails every comparison already)."""
    if isinstance(value, float):
        check(math.isfinite(value), key, f"must be a finite number, got {value}")
    elif dataclasses.is_dataclass(value):
        for part in dataclasses.fields(value):
            check_finite(getattr(value, part.name), f"{key}.{part.name}" if key else part.name)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_finite(item, f"{key}[{index}]")
    elif isinstance(value, dict):
        for name, item in value.items():
            check_finite(item, f"{key}.{name}")


class Choice(str, Enum):
    """A config choice; prints as its value, so it reads well in paths and logs."""

    def __str__(self) -> str:
        return self.value


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(Choice):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    auto = "auto"  # bf16 where the device computes it natively (a CPU with AVX512-BF16 or AMX, a bf16 GPU), else fp32


class Optimizer(Choice):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class ScheduleHorizon(Choice):
    budget = "budget"  # each stage's schedules span its planned updates; warm-up a share of the stage's
    patience = "patience"  # warm-up a share of the run's planned updates; a dev plateau pulls the decay's end in


class ClipGroups(Choice):
    joint = "joint"  # one gradient norm over every trainable parameter
    separate = "separate"  # the task model's parameters and the encoder's, each clipped to trainer.grad_clip


class Schedule(Choice):
    constant = "constant"
    linear = "linear"  # linear warm-up, then linear decay to 0
    slanted_triangular = "slanted_triangular"  # Howard & Ruder 2018


@dataclass
class DataConfig:
    root: str = "${oc.env:ELMO_BENCH_DATA,data}"
    train_size: Optional[float] = None  # examples (>= 1) or a fraction (< 1) of the pool; null = all
    # The training subset's seed; null = the run's seed, so seeds vary the examples as well as the initialisation
    # (a learning-curve study's seed variance). Every strategy of one seed still trains on the same subset.
    subset_seed: Optional[int] = None
    use_hub: bool = True  # fall back to the Hugging Face hub when local files are missing
    # The dev examples that select the checkpoint: null = the whole dev split; a count; or "train" = as many as
    # the training subset (at most dev_cap). Drawn with the training subset's seed, nested across sizes.
    dev_size: Optional[Union[int, str]] = None
    dev_cap: Optional[int] = 1000  # with dev_size=train: at most this many; null = no cap

    def __post_init__(self) -> None:
        dev = self.dev_size
        check(dev is None or dev == "train" or (isinstance(dev, int) and dev >= 1), "data.dev_size",
              f"must be null (the whole dev split), a count >= 1 or 'train', got {dev!r}")
        check(self.dev_cap is None or self.dev_cap >= 1, "data.dev_cap", f"must be >= 1 or null, got {self.dev_cap}")
        size = self.train_size
        check(size is None or size > 0, "data.train_size", f"must be a positive count or fraction, got {size}")
        check(size is None or size < 1 or float(size).is_integer(), "data.train_size",
               f"a count must be a whole number, got {size}")
        check(self.subset_seed is None or self.subset_seed >= 0, "data.subset_seed",
              f"must be >= 0 or null (the run's seed), got {self.subset_seed}")


@dataclass
class TrainerConfig:
    """The task model's training recipe: the same in every strategy's arm (only the encoder's groups differ).

    Budget: at most `max_epochs` epochs, but never fewer than `min_steps` updates (a small subset gets more
    epochs), and never more than `max_steps`. Dev is scored every `eval_steps` updates, rounded up to whole
    epochs; `patience` counts evaluations without a dev gain above `min_delta` and only acts after `min_steps`
    updates. A smaller gain still makes that model the best one kept, but does not reset the count, so dev noise
    between evaluations cannot keep a run going on a plateau. `min_delta: auto` is one standard error of the dev
    score at the best score so far (binomial; Fisher's for a correlation), and `smooth_evals: k` has patience
    compare the mean of the last k dev scores instead of the last one, so one lucky evaluation does not end a run.
    A strategy with stages (two_stage) divides this budget among them (strategy.frozen_share); each stage has the
    patience.
    """

    max_epochs: int = 30
    min_steps: int = 300  # updates every run gets, whatever the subset size
    max_steps: Optional[int] = None  # a cap on updates; null = none
    eval_steps: int = 50  # updates between dev evaluations (at least one epoch)
    patience: int = 5  # dev evaluations without an improvement before stopping
    # the dev gain (in the metric's 0-1 units) that resets patience; 0 = any gain; auto = the dev score's standard error
    min_delta: Union[float, str] = 0.0
    smooth_evals: int = 1  # patience follows the mean of the last k dev scores (1 = the last score alone)
    batch_tokens: int = 1000  # padded tokens per training batch
    eval_batch_tokens: int = 4000
    lr: float = 1e-3
    optimizer: Optimizer = Optimizer.adam
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.constant  # the task model's schedule over each stage's budget
    # what the schedules span (the task model's and the encoder's): see ScheduleHorizon and docs/strategies.md
    schedule_horizon: ScheduleHorizon = ScheduleHorizon.patience
    warmup_fraction: float = 0.1  # share of the steps spent warming up (linear, slanted_triangular)
    stlr_ratio: float = 32.0  # slanted_triangular: how much smaller the lowest lr is than the peak
    grad_clip: Optional[float] = 5.0  # max gradient norm (of each group, see clip_groups); null = off
    clip_groups: ClipGroups = ClipGroups.separate  # so the encoder's gradients never shrink the task model's step
    device: Device = Device.auto
    precision: Precision = Precision.fp32
    threads: Optional[int] = None  # CPU threads; null = the CPUs this process may use, or its launcher's share

    def __post_init__(self) -> None:
        check(self.lr > 0, "trainer.lr", f"must be > 0, got {self.lr}")
        check(self.threads is None or self.threads >= 1, "trainer.threads",
              f"must be >= 1 or null, got {self.threads}")
        check(self.max_epochs >= 1, "trainer.max_epochs", f"must be >= 1, got {self.max_epochs}")
        check(self.min_steps >= 0, "trainer.min_steps", f"must be >= 0, got {self.min_steps}")
        check(self.max_steps is None or self.max_steps >= max(1, self.min_steps), "trainer.max_steps",
              f"must be >= trainer.min_steps ({self.min_steps}) and >= 1, or null, got {self.max_steps}")
        check(self.eval_steps >= 1, "trainer.eval_steps", f"must be >= 1, got {self.eval_steps}")
        check(self.patience >= 1, "trainer.patience", f"must be >= 1, got {self.patience}")
        check(self.min_delta == "auto" or (not isinstance(self.min_delta, str) and self.min_delta >= 0),
              "trainer.min_delta", f"must be a number >= 0 or 'auto', got {self.min_delta!r}")
        check(self.smooth_evals >= 1, "trainer.smooth_evals", f"must be >= 1, got {self.smooth_evals}")
        check(self.batch_tokens >= 1, "trainer.batch_tokens", f"must be >= 1, got {self.batch_tokens}")
        check(self.eval_batch_tokens >= 1, "trainer.eval_batch_tokens", f"must be >= 1, got {self.eval_batch_tokens}")
        check(self.weight_decay >= 0, "trainer.weight_decay", f"must be >= 0, got {self.weight_decay}")
        check_schedule(self, "trainer")
        check(self.grad_clip is None or self.grad_clip > 0, "trainer.grad_clip",
              f"must be > 0 or null, got {self.grad_clip}")


def check_schedule(config: Any, prefix: str) -> None:
    """The schedule keys shared by the trainer and the fine-tuned encoder groups."""
    check(0 <= config.warmup_fraction < 1, f"{prefix}.warmup_fraction",
          f"must be in [0, 1), got {config.warmup_fraction}")
    check(config.stlr_ratio >= 1, f"{prefix}.stlr_ratio", f"must be >= 1, got {config.stlr_ratio}")


@dataclass
class InputConfig:
    """The task model's input [encoder mix ; word embedding]: identical for every strategy."""

    word_dim: int = 50  # trainable word embeddings (no GloVe offline); 0 = the encoder's layers only
    min_word_count: int = 2  # rarer training words share the unknown-word vector
    # The one dropout on the encoder's layers: applied to the whole input vector in the embedder (allennlp's NER
    # setup: ELMo's own dropout 0, the model's input dropout 0.5); heads never drop their input again.
    dropout: float = 0.5
    layer_norm: bool = False  # normalise each encoder layer before mixing (allennlp do_layer_norm)
    mix_l2: float = 0.001  # L2 penalty on the pre-softmax mix weights (Peters et al. 2018: lambda)

    def __post_init__(self) -> None:
        check(self.word_dim >= 0, "inputs.word_dim", f"must be >= 0, got {self.word_dim}")
        check(self.min_word_count >= 1, "inputs.min_word_count", f"must be >= 1, got {self.min_word_count}")
        check(0 <= self.dropout < 1, "inputs.dropout", f"must be in [0, 1), got {self.dropout}")
        check(self.mix_l2 >= 0, "inputs.mix_l2", f"must be >= 0, got {self.mix_l2}")


@dataclass
class RunConfig:
    task: Any = MISSING  # one of the task schemas above
    head: Any = MISSING
    strategy: Any = MISSING  # one of the strategy schemas (strategies/)
    model: Any = MISSING  # one of the encoder schemas (encoders/): model/<kind>_schema
    data: DataConfig = field(default_factory=DataConfig)
    inputs: InputConfig = field(default_factory=InputConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 1
    output_dir: str = "outputs"
    force: bool = False  # rerun a finished cell (its old result is replaced only when the new one is done)
    keep_checkpoint: bool = False  # keep the last checkpoint after the result is written
    # Save the encoder's weights as encoder.pt after a run that tuned them (finetune, two_stage), so that
    # elmo-bench-probe probe.cell=<that cell> probes the fine-tuned layers.
    keep_encoder: bool = False

    def __post_init__(self) -> None:
        check_seed(self.seed, "seed")


def register_schemas(groups: dict[str, dict[str, type]]) -> None:
    """Make the schemas available to conf/: `run_schema` and `<group>/<kind>_schema` for each group
    (task families, heads, strategies, encoders)."""
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for group, schemas in groups.items():
        for kind, schema in schemas.items():
            store.store(group=group, name=f"{kind}_schema", node=schema)


@lru_cache(maxsize=None)  # the report asks once per result file
def conf_choices(group: str) -> dict[str, str]:
    """The options of a config group (conf/<group>/*.yaml), each with the schema kind it composes
    (`- <kind>_schema` among its defaults): {"ner": "tagging", "frozen_top": "feature_ensemble", ...}."""
    choices = {}
    for path in sorted((PROJECT_ROOT / "conf" / group).glob("*.yaml")):
        defaults = OmegaConf.load(path).get("defaults") or []
        kinds = [entry[: -len("_schema")] for entry in defaults if isinstance(entry, str) and entry.endswith("_schema")]
        if kinds:
            choices[path.stem] = kinds[0]
    return choices


def shared_path(relative: str) -> str:
    """A path under the shared folder beside the project ($ELMO_BENCH_SHARED overrides it)."""
    return str(Path(os.environ.get("ELMO_BENCH_SHARED", PROJECT_ROOT.parent / "shared")) / relative)


def project_path(relative: str) -> str:
    """A path inside the project (the models shipped with it), wherever it was cloned."""
    return str(PROJECT_ROOT / relative)


def cache_path(relative: str) -> str:
    return str(cache_dir() / relative)


def model_label(name: str, random_weights: bool) -> str:
    return f"{name}-random" if random_weights else name


def register_resolvers() -> None:
    resolvers = (("shared", shared_path), ("project", project_path), ("cell_subdir", cell_subdir), ("cache", cache_path),
                 ("model_label", model_label), ("dataset_name", dataset_name), ("stock_dataset", stock_dataset))
    for name, function in resolvers:
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


def typed(cfg: DictConfig) -> Any:
    """The composed config as dataclass objects, each value checked by its `__post_init__` and every float
    finite. A mandatory key left unset (`???`, e.g. model.name of model=transformer) or a resolver's ConfigError is
    a ConfigError naming the key, never OmegaConf's traceback."""
    try:
        check_mandatory(cfg)
        config = OmegaConf.to_object(cfg)
    except InterpolationResolutionError as error:
        cause = resolver_error(error)
        if cause is None:
            raise
        raise cause from None
    check_finite(config)
    return config


def resolver_error(error: BaseException) -> ConfigError | None:
    """The ConfigError a resolver raised, from the chain OmegaConf wraps it in (one wrapper per nesting level)."""
    while error is not None and not isinstance(error, ConfigError):
        error = error.__cause__ or error.__context__
    return error


def check_mandatory(cfg: DictConfig, set_later: frozenset[str] = frozenset()) -> None:
    """Every `???` key is set; `set_later`: keys a sweep sets per job (not set in the sweep's own config)."""
    missing = sorted(set(OmegaConf.missing_keys(cfg)) - set_later)
    if missing:
        also = f" (also unset: {', '.join(missing[1:])})" if missing[1:] else ""
        raise ConfigError(f"config key '{missing[0]}': must be set, it has no default; add {missing[0]}=VALUE to the"
                          f" command line{also}")
