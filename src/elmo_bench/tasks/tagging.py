"""Sequence tagging (NER, POS, or any column file): a BiLSTM(-CRF) over the embedder's vectors.

    reps (B, T, D) -> BiLSTM -> dropout -> linear -> emissions (B, T, K) -> CRF or softmax

The embedder has already applied the input dropout; `head.lstm_layers=0` (head=tagger_light) puts the
emissions straight on the mixed biLM states, a light head for fine-tuning.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from omegaconf import MISSING
from torch import nn
from torch.nn import functional as F

from ..config import check
from ..data.conll import read_column_file
from ..data.hub import load_hub_dataset
from .base import Example, Splits, Task, TaskModel
from .crf import (ConditionalRandomField, TransitionMask, bioes_transition_mask,
                  iob2_transition_mask)
from .layers import TokenEncoder
from .tagging_metrics import span_f1, token_accuracy


@dataclass
class TaggingTaskConfig:
    name: str = MISSING
    dataset: str = MISSING
    metric: str = MISSING  # f1 (entity spans) or accuracy (tokens)
    train_file: str = MISSING  # relative to data.root
    dev_file: str = MISSING
    test_file: str = MISSING
    token_column: int = 0
    label_column: int = -1
    scheme: str = "iob1"  # the file's tag scheme: iob1 (converted to IOB2), iob2, bioes, none
    docstart: Optional[str] = "-DOCSTART-"
    hub_id: Optional[str] = None  # Hugging Face dataset used when the files are missing
    hub_label_field: Optional[str] = None

    def __post_init__(self) -> None:
        check(self.metric in ("f1", "accuracy"), "task.metric", f"must be f1 or accuracy, got {self.metric}")
        check(self.scheme in ("iob1", "iob2", "bioes", "none"), "task.scheme",
               f"must be iob1, iob2, bioes or none, got {self.scheme}")
        check(self.metric != "f1" or self.scheme != "none", "task.metric", "span f1 needs a tag scheme")


@dataclass
class TaggerHeadConfig:
    name: str = MISSING
    lstm_layers: int = 2
    hidden_dim: int = 200  # per direction
    dropout: float = 0.5
    crf: bool = True  # CRF decoding; False = independent softmax per token

    def __post_init__(self) -> None:
        check(self.lstm_layers >= 0, "head.lstm_layers", f"must be >= 0, got {self.lstm_layers}")
        check(self.hidden_dim >= 1, "head.hidden_dim", f"must be >= 1, got {self.hidden_dim}")
        check(0 <= self.dropout < 1, "head.dropout", f"must be in [0, 1), got {self.dropout}")


SPLIT_FILES = {"train": "train_file", "dev": "dev_file", "test": "test_file"}
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


class TaggerModel(TaskModel):
    def __init__(self, embedder: nn.Module, labels: list[str], head: TaggerHeadConfig, allowed: TransitionMask | None):
        super().__init__(embedder)
        self.labels = labels
        self.label_index = {label: i for i, label in enumerate(labels)}
        self.encoder = TokenEncoder(embedder.output_dim, head.hidden_dim, head.lstm_layers, head.dropout)
        width = self.encoder.output_dim
        self.emission = nn.Linear(width, len(labels))
        self.crf = ConditionalRandomField(len(labels), allowed) if head.crf else None

    def _emissions(self, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        reps, mask = self.embedder([example.texts[0] for example in examples])  # (B, T, D), (B, T)
        hidden = self.encoder(reps, mask)
        return self.emission(hidden).float(), mask  # (B, T, K)

    def _gold(self, examples: Sequence[Example], shape: torch.Size, device) -> torch.Tensor:
        gold = torch.zeros(shape, dtype=torch.long)
        for row, example in enumerate(examples):
            gold[row, : len(example.label)] = torch.tensor([self.label_index[t] for t in example.label])
        return gold.to(device)

    def loss(self, examples: Sequence[Example]) -> torch.Tensor:
        emissions, mask = self._emissions(examples)
        gold = self._gold(examples, mask.shape, emissions.device)
        if self.crf is not None:
            return -self.crf.log_likelihood(emissions, gold, mask).mean()
        return F.cross_entropy(emissions[mask], gold[mask])

    def predict(self, examples: Sequence[Example]) -> list[list[str]]:
        emissions, mask = self._emissions(examples)
        if self.crf is not None:
            paths = self.crf.viterbi_decode(emissions, mask)
        else:
            best = emissions.argmax(dim=-1).tolist()
            paths = [row[:n] for row, n in zip(best, mask.sum(dim=1).tolist())]
        return [[self.labels[i] for i in path] for path in paths]


class TaggingTask(Task):
    family = "tagging"
    config_schema = TaggingTaskConfig
    head_schemas = {"tagger": TaggerHeadConfig}

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        paths = {split: Path(data_root) / getattr(self.config, key) for split, key in SPLIT_FILES.items()}
        missing = self.missing_files(paths, use_hub)
        if not missing:
            splits = {split: self._read_file(split, path) for split, path in paths.items()}
            return Splits(**splits, source=", ".join(str(p) for p in paths.values()))
        dataset = load_hub_dataset(self.config.hub_id, tried=missing)
        splits = {split: self._from_hub(split, dataset[hub_split]) for split, hub_split in HUB_SPLITS.items()}
        return Splits(**splits, source=f"hub:{self.config.hub_id}")

    def _read_file(self, split: str, path: Path) -> list[Example]:
        sentences = read_column_file(path, self.config.token_column, self.config.label_column,
                                     self.config.scheme, self.config.docstart)
        return [Example(f"{split}-{i}", (s.tokens,), s.labels) for i, s in enumerate(sentences)]

    def _from_hub(self, split: str, rows) -> list[Example]:
        names = rows.features[self.config.hub_label_field].feature.names
        return [
            Example(f"{split}-{i}", (tuple(row["tokens"]),), tuple(names[t] for t in row[self.config.hub_label_field]))
            for i, row in enumerate(rows)
            if row["tokens"]
        ]

    def build_model(self, embedder: nn.Module, head_config: TaggerHeadConfig, train: Sequence[Example]) -> TaskModel:
        labels = sorted({tag for example in train for tag in example.label})
        # The CRF may only move between tags the scheme allows (files in IOB1 are IOB2 once read).
        constraints = {"iob1": iob2_transition_mask, "iob2": iob2_transition_mask, "bioes": bioes_transition_mask}
        allowed = constraints[self.config.scheme](labels) if self.config.scheme in constraints else None
        return TaggerModel(embedder, labels, head_config, allowed)

    def score(self, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
        if self.metric == "accuracy":
            return token_accuracy(gold, predicted)
        scores = span_f1(gold, predicted)
        per_type = scores.pop("per_type", {})
        return scores | {f"f1_{kind}": value for kind, value in sorted(per_type.items())}
