"""Sentence and document classification (SST-5, AG News): a BiLSTM over the embedder's vectors, pooled.

    reps (B, T, D) -> BiLSTM -> dropout -> pool over T (max | mean | attention) -> (B, 2H)
                   -> [linear -> ReLU -> dropout] -> linear -> logits (B, K)

A training pool that comes without a dev split (AG News) gives up a seeded random share of itself.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import MISSING
from torch import nn
from torch.nn import functional as F

from ..config import check
from ..data.agnews import clean_news_text, read_news_csv
from ..data.errors import DataError, DataFormatError
from ..data.hub import load_hub_dataset
from ..data.sst import read_sst_trees
from ..data.tokenize import tokenize
from .base import Example, Splits, Task, TaskModel
from .layers import AttentionPool, TokenEncoder, masked_max_pool, masked_mean_pool

log = logging.getLogger(__name__)

FORMATS = ("sst_trees", "news_csv")
HUB_POOL = "hub"
POOLINGS = ("max", "mean", "attention")


@dataclass
class ClassificationTaskConfig:
    name: str = MISSING
    dataset: str = MISSING
    metric: str = "accuracy"
    format: str = MISSING  # sst_trees (one labelled PTB tree per line) or news_csv (class,title,description)
    classes: list[str] = MISSING  # class names in label order; predictions files hold these names
    first_label: int = 0  # the number the files write for classes[0] (AG News counts from 1)
    pool: str = MISSING  # the training pool: a key of train_files, or "hub" (the hub's whole train split)
    train_files: dict[str, str] = MISSING  # pool name -> file, relative to data.root
    dev_file: Optional[str] = None  # null: a dev split is carved out of the training pool
    test_file: str = MISSING
    dev_size: float = 0.05  # the carved dev split: a count (>= 1) or a fraction (< 1) of the pool
    dev_seed: int = 0  # the carve's random permutation (it also shuffles the remaining pool)
    max_tokens: Optional[int] = None  # texts are cut to their first max_tokens tokens; null = no limit
    hub_id: Optional[str] = None  # Hugging Face dataset for pool=hub, or when the files are missing
    hub_text_field: str = "text"
    hub_label_field: str = "label"  # 0-based class index

    def __post_init__(self) -> None:
        check(self.metric == "accuracy", "task.metric", f"must be accuracy, got {self.metric}")
        check(self.format in FORMATS, "task.format", f"must be one of {', '.join(FORMATS)}, got {self.format}")
        check(len(self.classes) >= 2, "task.classes", f"needs at least 2 classes, got {list(self.classes)}")
        check(self.pool in self.train_files or self.pool == HUB_POOL, "task.pool",
              f"must be one of {', '.join([*self.train_files, HUB_POOL])}, got {self.pool}")
        check(self.pool != HUB_POOL or self.hub_id is not None, "task.pool", "pool=hub needs task.hub_id")
        check(self.dev_size > 0 and (self.dev_size < 1 or float(self.dev_size).is_integer()), "task.dev_size",
              f"must be a whole count >= 1 or a fraction in (0, 1), got {self.dev_size}")
        check(self.max_tokens is None or self.max_tokens >= 1, "task.max_tokens",
              f"must be >= 1 or null, got {self.max_tokens}")


@dataclass
class ClassifierHeadConfig:
    name: str = MISSING
    lstm_layers: int = 1  # 0 = pool the embedder's vectors directly (a light head, e.g. for fine-tuning)
    hidden_dim: int = 300  # LSTM units per direction
    pooling: str = "max"  # max | mean | attention, over the time steps
    feedforward_dim: int = 300  # hidden layer between the pooled vector and the output; 0 = none
    dropout: float = 0.5  # on the LSTM states and the hidden layer (the input dropout is the embedder's)

    def __post_init__(self) -> None:
        check(self.lstm_layers >= 0, "head.lstm_layers", f"must be >= 0, got {self.lstm_layers}")
        check(self.hidden_dim >= 1, "head.hidden_dim", f"must be >= 1, got {self.hidden_dim}")
        check(self.pooling in POOLINGS, "head.pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling}")
        check(self.feedforward_dim >= 0, "head.feedforward_dim", f"must be >= 0, got {self.feedforward_dim}")
        check(0 <= self.dropout < 1, "head.dropout", f"must be in [0, 1), got {self.dropout}")


class ClassifierModel(TaskModel):
    def __init__(self, embedder: nn.Module, classes: list[str], head: ClassifierHeadConfig):
        super().__init__(embedder)
        self.classes = classes
        self.class_index = {name: i for i, name in enumerate(classes)}
        self.encoder = TokenEncoder(embedder.output_dim, head.hidden_dim, head.lstm_layers, head.dropout)
        width = self.encoder.output_dim
        self.pooling = head.pooling
        self.attention = AttentionPool(width) if head.pooling == "attention" else None
        hidden = []
        if head.feedforward_dim:
            hidden = [nn.Linear(width, head.feedforward_dim), nn.ReLU(), nn.Dropout(head.dropout)]
            width = head.feedforward_dim
        self.output = nn.Sequential(*hidden, nn.Linear(width, len(classes)))

    def _pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.attention is not None:
            return self.attention(states, mask)
        return masked_max_pool(states, mask) if self.pooling == "max" else masked_mean_pool(states, mask)

    def _logits(self, examples: Sequence[Example]) -> torch.Tensor:
        states, mask = self.embedder([example.texts[0] for example in examples])  # (B, T, D), (B, T)
        states = self.encoder(states, mask)  # (B, T, 2H)
        return self.output(self._pool(states, mask)).float()  # (B, K)

    def loss(self, examples: Sequence[Example]) -> torch.Tensor:
        logits = self._logits(examples)
        gold = torch.tensor([self.class_index[example.label] for example in examples], device=logits.device)
        return F.cross_entropy(logits, gold)

    def predict(self, examples: Sequence[Example]) -> list[str]:
        return [self.classes[i] for i in self._logits(examples).argmax(dim=-1).tolist()]


def accuracy(gold: Sequence, predicted: Sequence) -> float:
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"accuracy needs one prediction per gold label, and some: {len(gold)} vs {len(predicted)}")
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold)


class ClassificationTask(Task):
    family = "classification"
    config_schema = ClassificationTaskConfig
    head_schemas = {"classifier": ClassifierHeadConfig}

    # --- data -------------------------------------------------------------------------------------

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        config = self.config
        if config.pool == HUB_POOL:
            check(use_hub, "data.use_hub", "task.pool=hub takes the training pool from the hub; set it to true")
            return self._from_hub(tried=[])
        paths = {"train": config.train_files[config.pool], "dev": config.dev_file, "test": config.test_file}
        paths = {split: Path(data_root) / name for split, name in paths.items() if name is not None}
        missing = self.missing_files(paths, use_hub)
        if not missing:
            return self._from_files(paths)
        log.warning("task %s: %s missing; the hub's whole train split replaces pool '%s'",
                    self.name, ", ".join(missing), config.pool)
        return self._from_hub(tried=missing)

    def _from_files(self, paths: dict[str, Path]) -> Splits:
        pool = self._read_file(paths["train"], self.config.pool)
        details = {"pool": self.config.pool, "pool_file": self.config.train_files[self.config.pool]}
        if "dev" in paths:
            train, dev = pool, self._read_file(paths["dev"], "dev")
        else:
            train, dev, details["dev_carve"] = self._carve_dev(pool)
        return self._finish(train, dev, self._read_file(paths["test"], "test"),
                            ", ".join(str(path) for path in paths.values()), details)

    def _read_file(self, path: Path, prefix: str) -> list[Example]:
        """Examples with ids `<prefix>-<line>`, so each one can be found in its file."""
        labels = {str(self.config.first_label + i): name for i, name in enumerate(self.config.classes)}
        if self.config.format == "sst_trees":
            rows = [(s.line, s.tokens, s.label) for s in read_sst_trees(path, labels)]
        else:
            rows = [(r.line, tokenize(r.text), r.label) for r in read_news_csv(path, labels)]
        return [Example(f"{prefix}-{line}", (tokens,), labels[label]) for line, tokens, label in rows]

    def _from_hub(self, tried: list[str]) -> Splits:
        config = self.config
        dataset = load_hub_dataset(config.hub_id, tried=tried)
        pool = self._hub_examples(dataset, "train", HUB_POOL)
        details = {"pool": HUB_POOL, "requested_pool": config.pool}
        if config.dev_file is not None:
            train, dev = pool, self._hub_examples(dataset, "validation", "dev")
        else:
            train, dev, details["dev_carve"] = self._carve_dev(pool)
        return self._finish(train, dev, self._hub_examples(dataset, "test", "test"), f"hub:{config.hub_id}", details)

    def _hub_examples(self, dataset, split: str, prefix: str) -> list[Example]:
        """Ids `<prefix>-<row>` count rows from 1: the line numbers of the headerless CSV files."""
        config = self.config
        where = f"hub:{config.hub_id}/{split}"
        examples = []
        for row_number, row in enumerate(dataset[split], start=1):
            text = row[config.hub_text_field]
            tokens = tokenize(clean_news_text(text) if config.format == "news_csv" else text)
            label = row[config.hub_label_field]
            if not 0 <= label < len(config.classes):
                raise DataFormatError(where, row_number,
                                      f"label {label} is not a class index 0-{len(config.classes) - 1}")
            if not tokens:
                raise DataFormatError(where, row_number, "empty text")
            examples.append(Example(f"{prefix}-{row_number}", (tokens,), config.classes[label]))
        return examples

    def _carve_dev(self, pool: list[Example]) -> tuple[list[Example], list[Example], dict]:
        """A seeded random dev split out of the pool; both parts come out shuffled (pools may be sorted by class)."""
        size = self.config.dev_size
        count = int(size) if size >= 1 else round(size * len(pool))
        if not 0 < count < len(pool):
            raise DataError(f"task '{self.name}': task.dev_size={size} leaves no dev or no training examples"
                            f" in a pool of {len(pool)}")
        order = np.random.default_rng(self.config.dev_seed).permutation(len(pool))
        carve = {"size": count, "seed": self.config.dev_seed, "pool_size": len(pool)}
        return [pool[i] for i in order[count:]], [pool[i] for i in order[:count]], carve

    def _finish(self, train: list[Example], dev: list[Example], test: list[Example], source: str,
                details: dict) -> Splits:
        """Cut texts to max_tokens, and record what the splits hold."""
        splits = {"train": train, "dev": dev, "test": test}
        details["max_tokens"] = self.config.max_tokens
        details["truncated"] = {}
        for split, examples in splits.items():
            splits[split], details["truncated"][split] = self._truncate(examples)
        counts = {split: Counter(e.label for e in examples) for split, examples in splits.items()}
        details["label_counts"] = {split: {name: counts[split][name] for name in self.config.classes}
                                   for split in splits}
        return Splits(**splits, source=source, details=details)

    def _truncate(self, examples: list[Example]) -> tuple[list[Example], int]:
        """The examples with texts cut to max_tokens, and how many were longer."""
        limit = self.config.max_tokens
        if limit is None:
            return examples, 0
        long = sum(len(e.texts[0]) > limit for e in examples)
        return [replace(e, texts=(e.texts[0][:limit],)) if len(e.texts[0]) > limit else e for e in examples], long

    # --- model and metric -------------------------------------------------------------------------

    def build_model(self, embedder: nn.Module, head_config: ClassifierHeadConfig,
                    train: Sequence[Example]) -> TaskModel:
        return ClassifierModel(embedder, list(self.config.classes), head_config)

    def score(self, gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
        return {"accuracy": accuracy(gold, predicted)}
