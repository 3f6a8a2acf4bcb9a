"""Sequence tagging (NER, POS, or any column file): a BiLSTM(-CRF) over the embedder's vectors.

    reps (B, T, D) -> BiLSTM -> dropout -> linear -> emissions (B, T, K) -> CRF or softmax

The embedder has already applied the input dropout; `head.lstm_layers=0` (head=tagger_light) puts the
emissions straight on the mixed biLM states, a light head for fine-tuning.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from omegaconf import MISSING
from torch import nn
from torch.nn import functional as F

from ..config import check
from ..data.conll import TaggedSentence, detect_scheme, read_columns, with_scheme
from ..data.conllu import TAG_FIELDS, read_conllu
from ..errors import DataError, DataFormatError
from ..data.hub import load_hub_dataset
from ..metrics.per_class import class_scores
from .base import Example, Splits, Task, TaskConfig, TaskModel
from .crf import (ConditionalRandomField, TransitionMask, bioes_transition_mask,
                  iob2_transition_mask)
from .layers import TokenEncoder
from .tagging_metrics import span_f1, token_accuracy

log = logging.getLogger(__name__)


TAGGING_FORMATS = ("columns", "conllu")
SCHEMES = ("iob1", "iob2", "bioes", "none")


@dataclass
class TaggingTaskConfig(TaskConfig):
    """Files in `format`: columns (CoNLL-2003 style: token_column, label_column, scheme, docstart) or conllu
    (Universal Dependencies: the words' `tag_field`, upos or xpos). scheme and metric null: read from the training
    labels (chunk tags B-/I-/E-/S-: their scheme and entity F1; plain tags: none and token accuracy)."""

    metric: Optional[str] = None  # f1 (entity spans), accuracy (tokens), or null: chosen by the tag scheme
    format: str = "columns"
    train_file: Optional[str] = None  # null: the data come from the hub (task.hub_id)
    dev_file: Optional[str] = None  # null: carved out of train (task.dev_size, task.dev_seed)
    test_file: Optional[str] = None
    token_column: int = 0
    label_column: int = -1
    scheme: Optional[str] = None  # iob1 (converted to IOB2), iob2, bioes, none, or null: read from the labels
    docstart: Optional[str] = "-DOCSTART-"
    tag_field: str = "upos"  # conllu: which tag labels the words, upos or xpos
    hub_label_field: Optional[str] = None  # the hub rows' tag field (tokens are in `tokens`)
    # An evaluation tag the training data never had: error (naming its file:line), or wrong (scored as a wrong
    # prediction, since the model cannot predict it; counted per split in data_details as unseen_tokens).
    unseen_labels: str = "error"  # conf/task: $ELMO_BENCH_UNSEEN_LABELS may change it (the tests' small slices)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.metric in ("f1", "accuracy", None), "task.metric",
              f"must be f1, accuracy or null (chosen by the tag scheme), got {self.metric}")
        check(self.format in TAGGING_FORMATS, "task.format",
              f"must be one of {', '.join(TAGGING_FORMATS)}, got {self.format}")
        check(self.scheme in (*SCHEMES, None), "task.scheme",
              f"must be iob1, iob2, bioes, none or null (read from the labels), got {self.scheme}")
        check(self.metric != "f1" or self.scheme != "none", "task.scheme",
              "task.metric=f1 scores entity spans, which needs a chunk scheme: set task.scheme=iob1, iob2 or bioes,"
              " or leave it null to read it from the labels (got none)")
        check(self.tag_field in TAG_FIELDS, "task.tag_field", f"must be upos or xpos, got {self.tag_field}")
        check(self.unseen_labels in ("error", "wrong"), "task.unseen_labels",
              f"must be error or wrong, got {self.unseen_labels}")
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

    def __init__(self, config: TaggingTaskConfig):
        super().__init__(config)
        self.scheme = config.scheme  # null: settled by the training data, as are the metric and the tag set
        self.labels: frozenset[str] | None = None  # the training pool's tags: a test tag outside them is an error

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        config = self.config
        files = {"train": config.train_file, "dev": config.dev_file, "test": config.test_file}
        paths = {split: Path(data_root) / file for split, file in files.items() if file is not None}
        missing = self.missing_files(paths, use_hub) if paths else []
        if paths and not missing:
            self._settle(paths["train"], self._read(paths["train"]))
            splits = {split: self.read_examples(path, split) for split, path in paths.items()}
            details = {}
            if "dev" not in splits:
                splits["train"], splits["dev"], details["dev_carve"] = self.carve_dev(splits["train"])
            source = ", ".join(str(p) for p in paths.values())
            return Splits(**splits, source=source, details=details | self._counts(splits))
        check(use_hub, "data.use_hub", f"task.train_file is not set, so the data come from {config.hub_source}")
        dataset = load_hub_dataset(config.hub_id, tried=missing, config=config.hub_config)
        train_rows = dataset[config.hub_splits.train] if config.hub_splits.train in dataset else []
        self._settle(f"{config.hub_source}/{config.hub_splits.train}", self._hub_sentences(train_rows))
        splits, details = self.hub_splits(dataset)
        return Splits(**splits, source=config.hub_source, details=details | self._counts(splits))

    def _read(self, path: Path) -> list[TaggedSentence]:
        config = self.config
        if config.format == "conllu":
            return read_conllu(path, config.tag_field, config.encoding)
        return read_columns(path, config.token_column, config.label_column, config.docstart, config.encoding)

    def _settle(self, where, train: list[TaggedSentence]) -> None:
        """The scheme and metric (from the training labels unless task.scheme / task.metric set them), the tag
        set, each logged: a NER file scored by token accuracy would otherwise pass unnoticed."""
        read = self.scheme is None
        self.scheme = detect_scheme(where, train) if read else self.scheme
        chosen = self.config.metric is None
        self.metric = self.config.metric or ("accuracy" if self.scheme == "none" else "f1")
        if self.metric == "f1" and self.scheme == "none":
            raise DataError(f"{where}: task.metric=f1 scores entity spans, but the labels are plain tags (no B-/I-/"
                            "E-/S- prefixes); set task.metric=accuracy, or task.scheme if the tags are chunk tags")
        self.labels = frozenset(tag for sentence in with_scheme(where, train, self.scheme) for tag in sentence.labels)
        log.info("task %s: tag scheme %s (%s), metric %s (%s)", self.name, self.scheme,
                 f"read from the labels of {where}" if read else "task.scheme", self.metric,
                 "chosen by the scheme" if chosen else "task.metric")

    def read_examples(self, path: Path, prefix: str) -> list[Example]:
        """Ids `<prefix>-<i>`: the sentence's 0-based place in the file."""
        sentences = with_scheme(path, self._read(path), self.scheme)
        self._check_seen(path, sentences)
        return [Example(f"{prefix}-{i}", (s.tokens,), s.labels) for i, s in enumerate(sentences)]

    def _check_seen(self, where, sentences: list[TaggedSentence]) -> None:
        """Every tag is one the training data had: the model can never predict another, so it would be scored as
        always wrong without a word. An error naming its line, or (task.unseen_labels=wrong) one warning."""
        unseen = [(number, label) for sentence in sentences
                  for number, label in zip(sentence.token_lines or (None,) * len(sentence.labels), sentence.labels)
                  if label not in self.labels]
        if unseen and self.config.unseen_labels == "error":
            number, label = unseen[0]
            raise DataFormatError(where, number, f"label {label!r} is not among the training data's tags; the model"
                                                 " cannot predict it (task.unseen_labels=wrong scores such tokens as"
                                                 " wrong)")
        if unseen:
            log.warning("%s: %d tokens have tags the training data never had (%s); scored as wrong"
                        " (task.unseen_labels=wrong)", where, len(unseen), ", ".join(sorted({l for _, l in unseen})))

    def _hub_sentences(self, rows) -> list[TaggedSentence]:
        """Hub rows as sentences (no file lines: their row numbers, from 1, name them); empty rows left out."""
        names = rows.features[self.config.hub_label_field].feature.names if rows else []
        return [TaggedSentence(tuple(row["tokens"]), tuple(names[t] for t in row[self.config.hub_label_field]), line=n,
                               token_lines=(n,) * len(row["tokens"]))
                for n, row in enumerate(rows, start=1) if row["tokens"]]

    def hub_examples(self, rows, where: str, prefix: str) -> list[Example]:
        """Ids `<prefix>-<i>`: the sentence's 0-based place among the split's non-empty rows."""
        sentences = with_scheme(where, self._hub_sentences(rows), self.scheme)
        self._check_seen(where, sentences)
        return [Example(f"{prefix}-{i}", (s.tokens,), s.labels) for i, s in enumerate(sentences)]

    def evaluation_details(self, examples: list[Example]) -> dict:
        return {"examples": len(examples), **self._split_counts(examples)}

    def _counts(self, splits: dict[str, list[Example]]) -> dict:
        """What result.json's data_details records: the scheme and metric and where they came from, and per split
        its sentences, tokens and tag counts."""
        return {"tag_scheme": self.scheme, "scheme_from": "task.scheme" if self.config.scheme else "labels",
                "metric_from": "task.metric" if self.config.metric else "scheme",
                "counts": {split: self._split_counts(examples) for split, examples in splits.items()}}

    def _split_counts(self, examples: list[Example]) -> dict:
        tags = Counter(tag for example in examples for tag in example.label)
        return {"sentences": len(examples), "tokens": sum(tags.values()), "labels": dict(sorted(tags.items())),
                "unseen_tokens": sum(count for tag, count in tags.items() if tag not in self.labels)}

    def build_model(self, embedder: nn.Module, head_config: TaggerHeadConfig, train: Sequence[Example]) -> TaskModel:
        labels = sorted({tag for example in train for tag in example.label})
        # The CRF may only move between tags the scheme allows (files in IOB1 are IOB2 once read).
        constraints = {"iob1": iob2_transition_mask, "iob2": iob2_transition_mask, "bioes": bioes_transition_mask}
        allowed = constraints[self.scheme](labels) if self.scheme in constraints else None
        return TaggerModel(embedder, labels, head_config, allowed)

    def floor(self, train: Sequence[Example], examples: Sequence[Example]) -> tuple[str, list]:
        by_word: dict[str, Counter] = defaultdict(Counter)
        for example in train:
            for word, tag in zip(example.texts[0], example.label):
                by_word[word][tag] += 1
        overall = sum(by_word.values(), Counter())
        commonest = {word: min(tags, key=lambda tag: (-tags[tag], tag)) for word, tags in by_word.items()}
        fallback = min(overall, key=lambda tag: (-overall[tag], tag))
        return ("each word's most frequent training tag (unseen words: the most frequent tag)",
                [tuple(commonest.get(word, fallback) for word in example.texts[0]) for example in examples])

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
