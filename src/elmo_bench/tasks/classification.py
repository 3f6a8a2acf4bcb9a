"""Sentence and document classification (SST-5, AG News, or your own labelled texts): a BiLSTM over the
embedder's vectors, pooled.

    reps (B, T, D) -> BiLSTM -> dropout -> pool over T (max | mean | attention) -> (B, 2H)
                   -> [linear -> ReLU -> dropout] -> linear -> logits (B, K)

A training pool that comes without a dev split (AG News) gives up a seeded random share of itself.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch
from omegaconf import MISSING
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError, DataError, DataFormatError
from ..config import check
from ..data.agnews import clean_news_text, read_news_csv
from ..data.hub import load_hub_dataset
from ..data.labelled import label_prefix, labelled_rows, read_labelled_lines
from ..data.sst import read_sst_trees
from ..data.tables import TABLE_FORMATS, read_table
from ..data.tokenize import tokenize
from ..metrics.per_class import class_scores, confusion
from .base import Example, Splits, Task, TaskConfig, TaskModel, Tokens
from .layers import AttentionPool, TokenEncoder, masked_max_pool, masked_mean_pool

log = logging.getLogger(__name__)

STOCK_FORMATS = ("sst_trees", "news_csv")
FORMATS = (*STOCK_FORMATS, *TABLE_FORMATS, "lines")
HUB_POOL = "hub"
POOLINGS = ("max", "mean", "attention")


@dataclass
class ClassificationTaskConfig(TaskConfig):
    """Files in `format`: the stock sst_trees (one labelled PTB tree per line) and news_csv (class,title,
    description), or your own: csv / tsv / jsonl (text_column, label_column) or lines (line_pattern).
    The training data: train_file (yours), else the stock pool (a key of train_files, or hub), else the hub."""

    metric: str = "accuracy"
    format: str = MISSING
    classes: Optional[list[str]] = None  # class names in label order; null = the training file's labels, sorted
    first_label: int = 0  # a numeric label n in a file means classes[n - first_label] (AG News counts from 1)
    train_file: Optional[str] = None  # your training file; when set, task.pool is not used
    pool: Optional[str] = None  # the stock training pool: a key of train_files, or "hub" (the hub's train split)
    train_files: dict[str, str] = field(default_factory=dict)  # pool name -> file
    dev_file: Optional[str] = None  # null: a dev split is carved out of the training pool
    test_file: Optional[str] = None
    dev_size: float = 0.05  # the stock carve: 1,000 of AG News' 20,000-row pool
    max_tokens: Optional[int] = None  # texts are cut to their first max_tokens tokens; null = no limit
    header: bool = True  # csv / tsv: the first row names the columns
    text_column: str = "text"  # csv / tsv / jsonl and hub rows: a name, or a 0-based index
    label_column: str = "label"
    line_pattern: str = r"^(?P<label>\S+)\s+(?P<text>.+)$"  # lines: named groups `label` and `text`
    label_separator: str = ":"  # between the parts of a label (TREC: ENTY:animal)
    label_parts: Optional[int] = None  # keep the label's first parts only (TREC: 1 = the 6 coarse classes)

    @property
    def training_file(self) -> Optional[str]:
        """The file the training pool is read from; None when it comes from the hub."""
        return self.train_file if self.train_file is not None else self.train_files.get(self.pool)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.metric == "accuracy", "task.metric", f"must be accuracy, got {self.metric}")
        check(self.format in FORMATS, "task.format", f"must be one of {', '.join(FORMATS)}, got {self.format}")
        check(self.classes is None or len(self.classes) >= 2, "task.classes",
              f"needs at least 2 classes, got {self.classes and list(self.classes)}")
        check(self.classes is not None or self.format not in STOCK_FORMATS, "task.classes",
              f"the {self.format} format needs the class names")
        check(self.pool in (None, HUB_POOL, *self.train_files), "task.pool",
              f"must be one of {', '.join([*self.train_files, HUB_POOL])}, got {self.pool}")
        check(self.training_file is not None or self.hub_id is not None, "task.train_file",
              "set it (or task.hub_id for a hub data set)")
        check(self.training_file is None or self.test_file is not None, "task.test_file",
              "must be set when the training data are a file")
        check(self.max_tokens is None or self.max_tokens >= 1, "task.max_tokens",
              f"must be >= 1 or null, got {self.max_tokens}")
        check(self.label_parts is None or self.label_parts >= 1, "task.label_parts",
              f"must be >= 1 or null, got {self.label_parts}")
        check_line_pattern(self.line_pattern)


def check_line_pattern(pattern: str) -> None:
    try:
        groups = re.compile(pattern).groupindex
    except re.error as error:
        raise ConfigError(f"config key 'task.line_pattern': not a regular expression ({error}): {pattern!r}") from None
    check({"label", "text"} <= set(groups), "task.line_pattern",
          f"needs the named groups (?P<label>...) and (?P<text>...), got {pattern!r}")


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
    probe_unit = "sentence"
    config_schema = ClassificationTaskConfig
    head_schemas = {"classifier": ClassifierHeadConfig}

    def __init__(self, config: ClassificationTaskConfig):
        super().__init__(config)
        self.classes = None if config.classes is None else list(config.classes)  # settled by the training data

    # --- data -------------------------------------------------------------------------------------

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        config = self.config
        if config.training_file is None:
            check(use_hub, "data.use_hub", f"the training data come from {config.hub_source}; set it to true")
            return self._from_hub(tried=[])
        paths = {"train": config.training_file, "dev": config.dev_file, "test": config.test_file}
        paths = {split: Path(data_root) / name for split, name in paths.items() if name is not None}
        missing = self.missing_files(paths, use_hub)
        if not missing:
            return self._from_files(paths)
        log.warning("task %s: %s missing; the hub's whole train split replaces the training file %s",
                    self.name, ", ".join(missing), config.training_file)
        return self._from_hub(tried=missing)

    def _from_files(self, paths: dict[str, Path]) -> Splits:
        config = self.config
        rows = self._read_rows(paths["train"])
        if self.classes is None:
            self.classes = sorted({label for _, _, label in rows})
            if len(self.classes) < 2:
                raise DataError(f"{paths['train']}: one label only ({self.classes[0]!r}); classification needs two")
        own_file = config.train_file is not None
        pool = self._labelled(rows, paths["train"], "train" if own_file else config.pool)
        details = {"pool": "train_file" if own_file else config.pool, "pool_file": config.training_file}
        if "dev" in paths:
            train, dev = pool, self.read_examples(paths["dev"], "dev")
        else:
            train, dev, details["dev_carve"] = self.carve_dev(pool)
        return self._finish(train, dev, self.read_examples(paths["test"], "test"),
                            ", ".join(str(path) for path in paths.values()), details)

    def read_examples(self, path: Path, prefix: str) -> list[Example]:
        """Examples with ids `<prefix>-<line>`, so each one can be found in its file."""
        return self._labelled(self._read_rows(path), path, prefix)

    def _read_rows(self, path: Path) -> list[tuple[int, Tokens, str]]:
        """(line, tokens, label as written, cut to task.label_parts) of each example in the file."""
        config = self.config
        if config.format == "sst_trees":
            return [(s.line, s.tokens, s.label) for s in read_sst_trees(path, self._numbered(), config.encoding)]
        if config.format == "news_csv":
            rows = read_news_csv(path, self._numbered(), config.encoding)
            return [(r.line, tokenize(r.text), r.label) for r in rows]
        if config.format == "lines":
            texts = read_labelled_lines(path, config.line_pattern, config.encoding)
        else:
            table = read_table(path, config.format, config.encoding, config.header)
            texts = labelled_rows(table, config.text_column, config.label_column)
        return [(t.line, self._tokens(path, t.line, t.text), label_prefix(t.label, config.label_separator,
                                                                           config.label_parts)) for t in texts]

    @staticmethod
    def _tokens(where, line: int, text: str) -> Tokens:
        tokens = tokenize(text)
        if not tokens:
            raise DataFormatError(where, line, "empty text")
        return tokens

    def _numbered(self) -> dict[str, str]:
        """The numbers files may write for the classes (first_label, first_label + 1, ...) -> class names."""
        return {str(self.config.first_label + i): name for i, name in enumerate(self.classes)}

    def _labelled(self, rows: list[tuple[int, Tokens, str]], where, prefix: str) -> list[Example]:
        """Examples labelled with class names; a label that is neither a class nor its number names its line."""
        class_of = self._numbered() | {name: name for name in self.classes}
        examples = []
        for line, tokens, label in rows:
            if label not in class_of:
                raise DataFormatError(where, line, f"label {label!r} is not one of the classes"
                                                   f" ({', '.join(self.classes)}; task.classes lists them, null = the"
                                                   " training file's labels)")
            examples.append(Example(f"{prefix}-{line}", (tokens,), class_of[label]))
        return examples

    def _from_hub(self, tried: list[str]) -> Splits:
        config = self.config
        dataset = load_hub_dataset(config.hub_id, tried=tried, config=config.hub_config)
        if self.classes is None:
            self.classes = self._hub_classes(dataset[config.hub_splits.train])
        splits, details = self.hub_splits(dataset, train_prefix=HUB_POOL)
        details = {"pool": HUB_POOL, "requested_pool": config.pool} | details
        return self._finish(splits["train"], splits["dev"], splits["test"], config.hub_source, details)

    def _hub_classes(self, rows) -> list[str]:
        """The class names of a hub label column: its ClassLabel names, or the labels of the rows, sorted."""
        names = getattr(getattr(rows, "features", {}).get(self.config.label_column), "names", None)
        if names:
            return list(names)
        labels = {row[self.config.label_column] for row in rows}
        check(not any(isinstance(label, int) for label in labels), "task.classes",
              f"{self.config.hub_source} labels are class numbers without names; list the class names")
        return sorted(label_prefix(label, self.config.label_separator, self.config.label_parts) for label in labels)

    def hub_examples(self, rows, where: str, prefix: str) -> list[Example]:
        """Ids `<prefix>-<row>` count rows from 1: the line numbers of the headerless CSV files. A number is a
        class index (0-based, as hub ClassLabels are); text labels are read like a file's."""
        config = self.config
        found = []
        for row_number, row in enumerate(rows, start=1):
            text, label = row[config.text_column], row[config.label_column]
            tokens = self._tokens(where, row_number, clean_news_text(text) if config.format == "news_csv" else text)
            if isinstance(label, int) and not 0 <= label < len(self.classes):
                raise DataFormatError(where, row_number, f"label {label} is not a class index 0-{len(self.classes) - 1}"
                                                         " (a hub test split without labels? see task.hub_splits)")
            label = self.classes[label] if isinstance(label, int) else label_prefix(
                label, config.label_separator, config.label_parts)
            found.append((row_number, tokens, label))
        return self._labelled(found, where, prefix)

    def _finish(self, train: list[Example], dev: list[Example], test: list[Example], source: str,
                details: dict) -> Splits:
        """Cut texts to max_tokens, and record what the splits hold."""
        splits = {"train": train, "dev": dev, "test": test}
        details["max_tokens"] = self.config.max_tokens
        details["truncated"] = {}
        for split, examples in splits.items():
            splits[split], details["truncated"][split] = self._truncate(examples)
        counts = {split: Counter(e.label for e in examples) for split, examples in splits.items()}
        details["label_counts"] = {split: {name: counts[split][name] for name in self.classes}
                                   for split in splits}
        return Splits(**splits, source=source, details=details)

    def as_evaluated(self, examples: list[Example]) -> list[Example]:
        return self._truncate(examples)[0]

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
        return ClassifierModel(embedder, self.classes, head_config)

    def floor(self, train: Sequence[Example], examples: Sequence[Example]) -> tuple[str, list]:
        counts = Counter(example.label for example in train)
        majority = min(counts, key=lambda label: (-counts[label], label))  # ties: the first name
        return "the training subset's majority class", [majority] * len(examples)

    def score(self, gold: Sequence[str], predicted: Sequence[str]) -> dict:
        """Accuracy, macro-F1 and each class's precision, recall and F1 (fractions), and the confusion matrix."""
        return ({"accuracy": accuracy(gold, predicted)} | class_scores(gold, predicted, self.classes)
                | {"confusion": confusion(gold, predicted, self.classes)})
