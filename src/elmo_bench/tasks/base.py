"""What a task is to the runner: data splits, a model over token representations, a metric.

A task model never touches the biLM directly: it receives an `Embedder` (built by the strategy) that
turns a batch of token lists into vectors, and adds its own head on top.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..data.errors import DataError

Tokens = tuple[str, ...]


@dataclass(frozen=True)
class Example:
    id: str
    texts: tuple[Tokens, ...]  # the token sequences the encoder embeds (one, or two for pairs)
    label: Any  # tag tuple, class, score or answer set: whatever the task's metric compares
    meta: Any = None  # what else the task needs to predict (e.g. token offsets into a QA context)


@dataclass
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    source: str  # where the data came from (local paths or hub id), recorded in result.json
    details: dict = field(default_factory=dict)  # facts of the load worth recording (pool, skips, ...)


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
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing and not (use_hub and self.config.hub_id):
            raise DataError(f"task '{self.name}': data files not found: {', '.join(missing)} (set data.root"
                            f" or $ELMO_BENCH_DATA; hub fallback {'off' if not use_hub else 'not configured'})")
        return missing

    @abstractmethod
    def load_splits(self, data_root: str, use_hub: bool) -> Splits: ...

    @abstractmethod
    def build_model(self, embedder: Embedder, head_config: Any, train: Sequence[Example]) -> TaskModel: ...

    @abstractmethod
    def score(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, float]:
        """Metrics as fractions (0-1); the runner reports them x100."""

    def prediction_record(self, example: Example, predicted: Any) -> dict:
        """One line of predictions/*.jsonl: enough to recompute the metric without this code."""
        return {"id": example.id, "gold": example.label, "pred": predicted}

    def length(self, example: Example) -> int:
        """Token count used to bucket examples into batches of similar size."""
        return sum(len(text) for text in example.texts)
