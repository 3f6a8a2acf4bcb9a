"""What a task is to the runner: data splits, a model over token representations, a metric.

A task model never touches the biLM directly: it receives an `Embedder` (built by the strategy) that
turns a batch of token lists into vectors, and adds its own head on top.
"""
from __future__ import annotations

import codecs
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Protocol

import torch
from omegaconf import MISSING
from torch import nn

from ..config import check, check_path_part
from ..data.carve import carve_dev
from ..errors import DataError
from ..data.errors import existing_file
from ..data.hub import is_hub_ref, load_hub_split, parse_hub_ref

Tokens = tuple[str, ...]


@dataclass(frozen=True)
class Example:
    id: str
    texts: tuple[Tokens, ...]  # the token sequences the encoder embeds (one, or two for pairs)
    label: Any  # tag tuple, class, score or answer set: whatever the task's metric compares
    meta: Any = None  # what else the task needs to predict (e.g. token offsets into a QA context)


@dataclass(frozen=True)
class ExtraTest:
    """A test set beside the task's own (task.extra_test), scored by the same model: e.g. out of domain."""

    examples: list[Example]
    source: str  # the file or hub split it came from
    details: dict = field(default_factory=dict)  # what the reading counted (tokens, labels, answers aligned, ...)


@dataclass
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    source: str  # where the data came from (local paths or hub id), recorded in result.json
    details: dict = field(default_factory=dict)  # facts of the load worth recording (pool, skips, ...)
    extra_test: dict[str, ExtraTest] = field(default_factory=dict)


@dataclass
class SplitNames:
    """What marks each split: a hub data set's split names (task.hub_splits), or the values of a split column.
    dev null: carve the dev split out of train (task.dev_size, task.dev_seed)."""

    train: str = "train"
    dev: Optional[str] = "validation"
    test: str = "test"


EXTRA_TEST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # it names a predictions file


@dataclass
class TaskConfig:
    """The keys every task family shares: naming, reading and carving the data, the hub, extra test sets.
    Files are relative to data.root (or absolute)."""

    name: str = MISSING  # the cell folder's first part
    # The data set's name in result.json and the report. conf/task sets the stock name for the stock files
    # and your training file's stem (or its folder, for train.txt) for files of your own.
    dataset: str = MISSING
    encoding: str = "utf-8"  # of every data file: latin-1, cp1252, utf-8-sig, ...
    dev_size: float = 0.1  # no dev split given: a count (>= 1) or fraction (< 1) of train becomes dev
    dev_seed: int = 0  # the carve's permutation, independent of the run's seed
    hub_id: Optional[str] = None  # Hugging Face data set: the data when no training file is set, else the fallback
    hub_config: Optional[str] = None  # its configuration (GLUE: sst2, stsb, ...)
    hub_splits: SplitNames = field(default_factory=SplitNames)  # a dev split the data set lacks is carved
    # name -> a file in the task's format, or hub:ID[:CONFIG][@SPLIT] (split default test): scored in the same
    # run by the selected model, each into predictions/extra_<name>.jsonl and result.json's extra_test.
    extra_test: dict[str, str] = field(default_factory=dict)
    # name -> at most this many of that extra test set's examples are scored: a sample drawn with
    # extra_test_seed (the same examples for every cell), kept in file order; result.json's record says so
    extra_test_max_examples: dict[str, int] = field(default_factory=dict)
    extra_test_seed: int = 0

    @property
    def hub_source(self) -> str:
        """hub:ID, or hub:ID:CONFIG: how result.json and messages name the hub data."""
        return f"hub:{self.hub_id}" + (f":{self.hub_config}" if self.hub_config else "")

    def __post_init__(self) -> None:
        check_path_part(self.name, "task.name")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            check(False, "task.encoding", f"unknown encoding {self.encoding!r} (e.g. utf-8, latin-1, cp1252)")
        check(self.dev_seed >= 0, "task.dev_seed", f"must be >= 0, got {self.dev_seed}")
        check(self.dev_size > 0 and (self.dev_size < 1 or float(self.dev_size).is_integer()), "task.dev_size",
              f"must be a whole count >= 1 or a fraction in (0, 1), got {self.dev_size}")
        for name, location in self.extra_test.items():
            check(EXTRA_TEST_NAME.fullmatch(name) is not None, f"task.extra_test.{name}",
                  "a name of letters, digits, '_', '.' and '-' (it names the predictions file)")
            if is_hub_ref(location):
                parse_hub_ref(location, f"task.extra_test.{name}")
        for name, count in self.extra_test_max_examples.items():
            check(name in self.extra_test, f"task.extra_test_max_examples.{name}",
                  f"names no extra test set (task.extra_test has {', '.join(self.extra_test) or 'none'})")
            check(count >= 1, f"task.extra_test_max_examples.{name}", f"must be >= 1, got {count}")
        check(self.extra_test_seed >= 0, "task.extra_test_seed", f"must be >= 0, got {self.extra_test_seed}")


def check_unique_ids(examples: Sequence[Example], split: str, source: str) -> None:
    """Predictions are keyed by example id, so two examples of one split with one id would lose one of them."""
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DataError(f"{split} ({source}): example id {example.id!r} occurs twice; ids must be unique within"
                            " a split (predictions are keyed by them)")
        seen.add(example.id)


class Embedder(Protocol):
    """Token lists -> (B, T, output_dim) vectors and the (B, T) mask; provided by the strategy."""

    output_dim: int

    def __call__(self, texts: Sequence[Tokens]) -> tuple[torch.Tensor, torch.Tensor]: ...


class TaskModel(nn.Module, ABC):
    """A head over the embedder; `loss` for training, `predict` for evaluation."""

    def __init__(self, embedder: Embedder):
        super().__init__()
        self.embedder = embedder

    @abstractmethod
    def loss(self, examples: Sequence[Example]) -> torch.Tensor: ...

    @abstractmethod
    def predict(self, examples: Sequence[Example]) -> list[Any]: ...


class Task(ABC):
    """One task family; instances are made from the task config."""

    family: str  # the schema names in conf/: task/<family>_schema
    # what a linear probe (probe.py) classifies: "token" (one label per token), "sentence" (one per text, from the
    # mean of its token vectors), or None where the labels are neither (pairs, spans)
    probe_unit: str | None = None
    config_schema: type
    head_schemas: dict[str, type]  # head kind -> schema, for conf/head/<kind>_schema
    name: str
    metric: str  # key of the main metric in `score`

    def __init__(self, config: Any):
        self.config = config
        self.name = config.name
        self.metric = config.metric

    def missing_files(self, paths: Mapping[str, Path], use_hub: bool) -> list[str]:
        """The local files that are missing, once sure the hub may stand in for them (else a DataError)."""
        missing = []
        for split, path in paths.items():
            if path.exists() or path.is_symlink():
                existing_file(path, f"task.{split}_file")  # a folder or a symlink loop: named as what it is
            else:
                missing.append(str(path))
        if missing and not (use_hub and self.config.hub_id):
            raise DataError(f"task '{self.name}': data files not found: {', '.join(missing)} (set data.root"
                            f" or $ELMO_BENCH_DATA; hub fallback {'off' if not use_hub else 'not configured'})")
        return missing

    def load(self, data_root: str, use_hub: bool) -> Splits:
        """The task's splits and its extra test sets."""
        splits = self.load_splits(data_root, use_hub)
        extra = {name: self._extra_test(name, location, data_root) for name, location in self.config.extra_test.items()}
        for split, examples in (("train", splits.train), ("dev", splits.dev), ("test", splits.test),
                                *((f"task.extra_test.{name}", test.examples) for name, test in extra.items())):
            check_unique_ids(examples, split, splits.source)
        return replace(splits, extra_test=extra)

    @abstractmethod
    def load_splits(self, data_root: str, use_hub: bool) -> Splits: ...

    def _extra_test(self, name: str, location: str, data_root: str) -> ExtraTest:
        """An extra test set, sampled down to task.extra_test_max_examples.NAME when set."""
        extra = self._read_extra_test(name, location, data_root)
        limit = self.config.extra_test_max_examples.get(name)
        if limit is None or len(extra.examples) <= limit:
            return extra
        chosen = sorted(random.Random(self.config.extra_test_seed).sample(range(len(extra.examples)), limit))
        sampled = [extra.examples[i] for i in chosen]
        # the counts of what is scored, and those of the whole set as read
        details = self.evaluation_details(sampled) | {"examples_read": len(extra.examples), "max_examples": limit,
                                                      "sample_seed": self.config.extra_test_seed, "as_read": extra.details}
        return ExtraTest(sampled, extra.source, details)

    def _read_extra_test(self, name: str, location: str, data_root: str) -> ExtraTest:
        """An extra test set; any error in it names its key as well as its file and line."""
        key, prefix = f"task.extra_test.{name}", f"extra_{name}"
        try:
            if is_hub_ref(location):
                reference = parse_hub_ref(location, key)
                examples = self.hub_examples(load_hub_split(reference, key), str(reference), prefix)
                return ExtraTest(self.as_evaluated(examples), str(reference), self.evaluation_details(examples))
            examples, details = self.read_evaluation(existing_file(Path(data_root) / location), prefix)
        except DataError as error:
            raise DataError(str(error) if str(error).startswith(key) else f"{key}: {error}") from None
        return ExtraTest(self.as_evaluated(examples), str(Path(data_root) / location), details)

    def read_evaluation(self, path: Path, prefix: str) -> tuple[list[Example], dict]:
        """An evaluation file's examples and what reading them counted (result.json's extra_test records it)."""
        examples = self.read_examples(path, prefix)
        return examples, self.evaluation_details(examples)

    def evaluation_details(self, examples: list[Example]) -> dict:
        """What to record of a set of evaluation examples beside its score; a family adds its own counts."""
        return {"examples": len(examples)}

    def as_evaluated(self, examples: list[Example]) -> list[Example]:
        """Examples as the task's own splits are evaluated: a task that cuts long texts cuts these too."""
        return examples

    @abstractmethod
    def read_examples(self, path: Path, prefix: str) -> list[Example]:
        """The evaluation examples of one file in the task's format; ids start with `prefix` (unless the format
        has ids of its own, as SQuAD's questions do)."""

    @abstractmethod
    def hub_examples(self, rows, where: str, prefix: str) -> list[Example]:
        """The evaluation examples of one hub split's rows; `where` names them in errors."""

    def hub_splits(self, dataset, train_prefix: str = "train") -> tuple[dict[str, list[Example]], dict]:
        """train, dev and test examples of a loaded hub data set (task.hub_splits), and what to record: dev is
        carved out of train when the data set has no dev split (or task.hub_splits.dev is null)."""
        names, hub = self.config.hub_splits, self.config.hub_source

        def examples(split: str, name: str, prefix: str) -> list[Example]:
            if name not in dataset:
                raise DataError(f"task.hub_splits.{split}: {hub} has no split '{name}' (it has {', '.join(dataset)})")
            return self.hub_examples(dataset[name], f"{hub}/{name}", prefix)

        splits = {"train": examples("train", names.train, train_prefix), "test": examples("test", names.test, "test")}
        details = {"hub_splits": {"train": names.train, "test": names.test}}
        if names.dev is not None and names.dev in dataset:
            splits["dev"] = examples("dev", names.dev, "dev")
            details["hub_splits"]["dev"] = names.dev
        else:
            splits["train"], splits["dev"], details["dev_carve"] = self.carve_dev(splits["train"])
        return splits, details

    def carve_dev(self, pool: Sequence[Any]) -> tuple[list[Any], list[Any], dict]:
        """train and dev out of a pool without a dev split (task.dev_size, task.dev_seed), and the carve's record."""
        return carve_dev(pool, self.config.dev_size, self.config.dev_seed, f"task '{self.name}'")

    @abstractmethod
    def build_model(self, embedder: Embedder, head_config: Any, train: Sequence[Example]) -> TaskModel: ...

    @abstractmethod
    def score(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, float]:
        """Metrics as fractions (0-1); the runner reports them x100."""

    def floor(self, train: Sequence[Example], examples: Sequence[Example]) -> tuple[str, list] | None:
        """A trivial baseline: its rule in words and its predictions for `examples`, from the training data alone
        (result.json's `floor`, so the report can tell a row where nothing learned). None: the family has none."""
        return None

    def prediction_record(self, example: Example, predicted: Any) -> dict:
        """One line of predictions/*.jsonl: enough to recompute the metric without this code."""
        return {"id": example.id, "gold": example.label, "pred": predicted}

    def length(self, example: Example) -> int:
        """Token count used to bucket examples into batches of similar size."""
        return sum(len(text) for text in example.texts)

    def evaluation_order(self, example: Example) -> Any:
        """Sort key of the evaluation batches (the order of predictions does not matter): by default the length;
        a task whose examples share a text puts them side by side, so the live encoder reads it once a batch."""
        return self.length(example)
