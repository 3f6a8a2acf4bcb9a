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
from ..data.conllu import TAG_FIELDS, read_conllu
from ..data.hub import load_hub_dataset
from ..metrics.per_class import class_scores
from .base import Example, Splits, Task, TaskConfig, TaskModel
from .crf import (ConditionalRandomField, TransitionMask, bioes_transition_mask,
                  iob2_transition_mask)
from .layers import TokenEncoder
from .tagging_metrics import span_f1, token_accuracy


TAGGING_FORMATS = ("columns", "conllu")


@dataclass
class TaggingTaskConfig(TaskConfig):
    """Files in `format`: columns (CoNLL-2003 style: token_column, label_column, scheme, docstart) or conllu
    (Universal Dependencies: the words' `tag_field`, upos or xpos)."""

    metric: str = MISSING  # f1 (entity spans) or accuracy (tokens)
    format: str = "columns"
    train_file: Optional[str] = None  # null: the data come from the hub (task.hub_id)
    dev_file: Optional[str] = None  # null: carved out of train (task.dev_size, task.dev_seed)
    test_file: Optional[str] = None
    token_column: int = 0
    label_column: int = -1
    scheme: str = "iob1"  # the file's tag scheme: iob1 (converted to IOB2), iob2, bioes, none
    docstart: Optional[str] = "-DOCSTART-"
    tag_field: str = "upos"  # conllu: which tag labels the words, upos or xpos
    hub_label_field: Optional[str] = None  # the hub rows' tag field (tokens are in `tokens`)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.metric in ("f1", "accuracy"), "task.metric", f"must be f1 or accuracy, got {self.metric}")
        check(self.format in TAGGING_FORMATS, "task.format",
              f"must be one of {', '.join(TAGGING_FORMATS)}, got {self.format}")
        check(self.scheme in ("iob1", "iob2", "bioes", "none"), "task.scheme",
               f"must be iob1, iob2, bioes or none, got {self.scheme}")
        check(self.metric != "f1" or self.scheme != "none", "task.metric", "span f1 needs a tag scheme")
        check(self.tag_field in TAG_FIELDS, "task.tag_field", f"must be upos or xpos, got {self.tag_field}")
        check(self.train_file is not None or self.hub_id is not None, "task.train_file",
              "set it (or task.hub_id for a hub data set)")
        check(self.train_file is None or self.test_file is not None, "task.test_file",
              "must be set with task.train_file")
        check(self.hub_id is None or self.hub_label_field is not None, "task.hub_label_field",
              "must name the hub rows' tag field when task.hub_id is set")


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
    probe_unit = "token"
    config_schema = TaggingTaskConfig
    head_schemas = {"tagger": TaggerHeadConfig}

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        config = self.config
        files = {"train": config.train_file, "dev": config.dev_file, "test": config.test_file}
        paths = {split: Path(data_root) / file for split, file in files.items() if file is not None}
        missing = self.missing_files(paths, use_hub) if paths else []
        if paths and not missing:
            splits = {split: self.read_examples(path, split) for split, path in paths.items()}
            details = {}
            if "dev" not in splits:
                splits["train"], splits["dev"], details["dev_carve"] = self.carve_dev(splits["train"])
            return Splits(**splits, source=", ".join(str(p) for p in paths.values()), details=details)
        check(use_hub, "data.use_hub", f"task.train_file is not set, so the data come from {config.hub_source}")
        dataset = load_hub_dataset(config.hub_id, tried=missing, config=config.hub_config)
        splits, details = self.hub_splits(dataset)
        return Splits(**splits, source=config.hub_source, details=details)

    def read_examples(self, path: Path, prefix: str) -> list[Example]:
        config = self.config
        if config.format == "conllu":
            sentences = read_conllu(path, config.tag_field, config.encoding)
        else:
            sentences = read_column_file(path, config.token_column, config.label_column, config.scheme,
                                         config.docstart, config.encoding)
        return [Example(f"{prefix}-{i}", (s.tokens,), s.labels) for i, s in enumerate(sentences)]

    def hub_examples(self, rows, where: str, prefix: str) -> list[Example]:
        names = rows.features[self.config.hub_label_field].feature.names
        return [
            Example(f"{prefix}-{i}", (tuple(row["tokens"]),), tuple(names[t] for t in row[self.config.hub_label_field]))
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
        """The main metric, and per tag (accuracy tasks) or entity type (span F1) its precision, recall, F1 and
        their macro mean."""
        if self.metric == "accuracy":
            tokens = [tag for sentence in gold for tag in sentence], [tag for sentence in predicted for tag in sentence]
            return token_accuracy(gold, predicted) | class_scores(*tokens)
        scores = span_f1(gold, predicted)
        per_type = {kind: scores.pop(f"per_type{suffix}", {}) for kind, suffix in
                    (("f1", ""), ("precision", "_precision"), ("recall", "_recall"))}
        macro = {"macro_f1": sum(per_type["f1"].values()) / len(per_type["f1"])} if per_type["f1"] else {}
        return scores | macro | {f"{kind}_{name}": value for kind, values in per_type.items()
                                 for name, value in sorted(values.items())}
