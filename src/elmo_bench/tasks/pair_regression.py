"""Sentence-pair regression (STS-B, or your own scored pairs): a siamese BiLSTM scores how similar two sentences are.

    both sentences, one embedder call  (2B, T, D) -> shared BiLSTM -> dropout -> max pool (2B, H)
    u, v = the two halves (B, H) -> [u; v; |u - v|; u * v] (B, 4H) -> MLP -> sigmoid -> [min_score, max_score]

The head is the GLUE baseline's sentence encoder (Wang et al. 2018: BiLSTM, max pooling, this feature
combination, one 512-unit hidden layer), narrower (512 per direction, not 1500) so a CPU epoch takes minutes.
Trained with mean squared error; scored with Pearson (main) and Spearman correlation.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import MISSING
from scipy import stats
from torch import nn
from torch.nn import functional as F

from ..config import check
from ..errors import DataError, DataFormatError
from ..data.hub import load_hub_dataset
from ..data.sts import ScoredPair, attach_gold_scores, checked_pair, read_glue_sts, read_original_sts
from ..data.tables import TABLE_FORMATS, read_table, rows_by_split
from ..data.tokenize import tokenize
from .base import Example, SplitNames, Splits, Task, TaskConfig, TaskModel
from .layers import TokenEncoder, masked_max_pool

log = logging.getLogger(__name__)

METRICS = ("pearson", "spearman")
PAIR_FORMATS = ("glue_sts", *TABLE_FORMATS)


@dataclass
class PairRegressionTaskConfig(TaskConfig):
    """Files in `format`: the stock glue_sts (GLUE STS-B's TSV header), or csv / tsv / jsonl with the two texts and
    the score in named columns. Splits: separate files, or one file (train_file) with a split column."""

    metric: str = "pearson"  # the main metric (early stopping, tables); both are always reported
    format: str = "glue_sts"
    train_file: Optional[str] = None  # null: the data come from the hub (task.hub_id)
    dev_file: Optional[str] = None  # null: carved out of train (or marked by the split column)
    test_file: Optional[str] = None  # glue_sts: may lack the score column (GLUE hides test scores)
    test_gold_file: Optional[str] = None  # glue_sts: the original STS Benchmark file with the test scores, same rows
    min_score: float = 0.0  # the scores' range: the head predicts within it; a score outside it is an error
    max_score: float = 5.0
    header: bool = True  # csv / tsv: the first row names the columns
    sentence1_column: str = "sentence1"  # csv / tsv / jsonl and hub rows: a name, or a 0-based index
    sentence2_column: str = "sentence2"
    score_column: str = "score"
    split_column: Optional[str] = None  # one file for every split: this column says which (values: split_values)
    split_values: SplitNames = field(default_factory=lambda: SplitNames(dev="dev"))  # dev null: carved out of train
    hub_score_scale: float = 1.0  # hub score x this = the task's score (sentence-transformers/stsb stores score/5)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.metric in METRICS, "task.metric", f"must be one of {', '.join(METRICS)}, got {self.metric}")
        check(self.format in PAIR_FORMATS, "task.format",
              f"must be one of {', '.join(PAIR_FORMATS)}, got {self.format}")
        check(self.min_score < self.max_score, "task.max_score",
              f"must be above task.min_score ({self.min_score}), got {self.max_score}")
        check(self.hub_score_scale > 0, "task.hub_score_scale", f"must be > 0, got {self.hub_score_scale}")
        check(self.train_file is not None or self.hub_id is not None, "task.train_file",
              "set it (or task.hub_id for a hub data set)")
        if self.split_column is None:
            check(self.train_file is None or self.test_file is not None, "task.test_file",
                  "must be set with task.train_file (or task.split_column, to split one file)")
        else:
            check(self.format in TABLE_FORMATS, "task.split_column", f"works with {', '.join(TABLE_FORMATS)} files")
            check(self.dev_file is None and self.test_file is None, "task.split_column",
                  "splits the one file task.train_file; task.dev_file and task.test_file must be null")


@dataclass
class SiameseHeadConfig:
    name: str = MISSING
    lstm_layers: int = 1  # 0 = max-pool the embedder's vectors directly
    hidden_dim: int = 512  # per direction
    mlp_dim: int = 512  # the hidden layer between the pair features and the score
    dropout: float = 0.2

    def __post_init__(self) -> None:
        check(self.lstm_layers >= 0, "head.lstm_layers", f"must be >= 0, got {self.lstm_layers}")
        check(self.hidden_dim >= 1, "head.hidden_dim", f"must be >= 1, got {self.hidden_dim}")
        check(self.mlp_dim >= 1, "head.mlp_dim", f"must be >= 1, got {self.mlp_dim}")
        check(0 <= self.dropout < 1, "head.dropout", f"must be in [0, 1), got {self.dropout}")


def correlations(gold: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation (fractions). Constant scores on either side carry no ranking, so
    both are 0 there (scipy would return nan with a warning, and nan never wins early stopping)."""
    gold, predicted = np.asarray(gold, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if np.ptp(gold) == 0 or np.ptp(predicted) == 0:
        return {"pearson": 0.0, "spearman": 0.0}
    return {"pearson": float(stats.pearsonr(gold, predicted)[0]),
            "spearman": float(stats.spearmanr(gold, predicted)[0])}


class SiameseRegressor(TaskModel):
    def __init__(self, embedder: nn.Module, head: SiameseHeadConfig, score_range: tuple[float, float]):
        super().__init__(embedder)
        self.low, self.high = score_range
        self.encoder = TokenEncoder(embedder.output_dim, head.hidden_dim, head.lstm_layers, head.dropout)
        width = self.encoder.output_dim
        self.mlp = nn.Sequential(
            nn.Linear(4 * width, head.mlp_dim), nn.ReLU(), nn.Dropout(head.dropout), nn.Linear(head.mlp_dim, 1)
        )

    def _scores(self, examples: Sequence[Example]) -> torch.Tensor:
        # One embedder call for all 2B sentences: the biLM runs once per batch, and frozen features are
        # looked up in one go. Rows 0..B-1 are the first sentences, B..2B-1 the second ones.
        texts = [example.texts[0] for example in examples] + [example.texts[1] for example in examples]
        reps, mask = self.embedder(texts)  # (2B, T, D), (2B, T)
        hidden = self.encoder(reps, mask)  # (2B, T, H); the embedder applied the input dropout
        u, v = masked_max_pool(hidden, mask).chunk(2)  # (B, H) each
        features = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)  # (B, 4H)
        unit = torch.sigmoid(self.mlp(features).squeeze(-1).float())  # (B,) in (0, 1)
        return self.low + (self.high - self.low) * unit

    def loss(self, examples: Sequence[Example]) -> torch.Tensor:
        scores = self._scores(examples)
        gold = torch.tensor([example.label for example in examples], dtype=scores.dtype, device=scores.device)
        return F.mse_loss(scores, gold)

    def predict(self, examples: Sequence[Example]) -> list[float]:
        return self._scores(examples).tolist()


class PairRegressionTask(Task):
    family = "pair_regression"
    config_schema = PairRegressionTaskConfig
    head_schemas = {"siamese": SiameseHeadConfig}

    def __init__(self, config: PairRegressionTaskConfig):
        super().__init__(config)
        self.score_range = (config.min_score, config.max_score)

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        config = self.config
        files = {"train": config.train_file, "dev": config.dev_file, "test": config.test_file}
        paths = {split: Path(data_root) / file for split, file in files.items() if file is not None}
        missing = self.missing_files(paths, use_hub) if paths else []
        if not paths or missing:
            check(use_hub, "data.use_hub", f"task.train_file is not set, so the data come from {config.hub_source}")
            return self._from_hub(load_hub_dataset(config.hub_id, tried=missing, config=config.hub_config))
        if config.format == "glue_sts":
            pairs, details = self._glue_pairs(paths, Path(data_root))
        else:
            pairs, details = self._table_pairs(paths), {}
        splits = {split: self._examples(split, split_pairs) for split, split_pairs in pairs.items()}
        if "dev" not in splits:
            splits["train"], splits["dev"], details["dev_carve"] = self.carve_dev(splits["train"])
        return Splits(**splits, source=", ".join(str(p) for p in paths.values()),
                      details=details | self._counts(splits))

    def _glue_pairs(self, paths: dict[str, Path], data_root: Path) -> tuple[dict[str, list[ScoredPair]], dict]:
        pairs = {split: read_glue_sts(path, self.score_range, self.config.encoding) for split, path in paths.items()}
        for split in ("train", "dev"):
            if split in pairs and pairs[split][0].score is None:
                raise DataFormatError(paths[split], 1, f"no score column; the {split} split needs scores")
        details = {"test_gold": str(paths["test"])}
        if pairs["test"][0].score is None:
            pairs["test"], details = self._test_gold(pairs["test"], paths["test"], data_root)
        return pairs, details

    def _table_pairs(self, paths: dict[str, Path]) -> dict[str, list[ScoredPair]]:
        """Pairs of CSV / TSV / JSONL files: one per split, or the training file's rows by the split column."""
        config = self.config
        if config.split_column is None:
            return {split: self._read_table_pairs(path) for split, path in paths.items()}
        table = read_table(paths["train"], config.format, config.encoding, config.header)
        values = {"train": config.split_values.train, "dev": config.split_values.dev, "test": config.split_values.test}
        grouped = rows_by_split(table, table.column(config.split_column, "task.split_column"), values,
                                "task.split_column")
        for split, rows in grouped.items():
            if values[split] is not None and not rows:
                raise DataError(f"{table.path}: no row marked {values[split]!r} (task.split_values.{split}) in the"
                                f" split column {config.split_column!r}")
        return {split: self._pairs(table, rows) for split, rows in grouped.items() if values[split] is not None}

    def _read_table_pairs(self, path: Path) -> list[ScoredPair]:
        table = read_table(path, self.config.format, self.config.encoding, self.config.header)
        return self._pairs(table, table.rows)

    def _pairs(self, table, rows) -> list[ScoredPair]:
        config = self.config
        columns = [table.column(getattr(config, key), f"task.{key}")
                   for key in ("sentence1_column", "sentence2_column", "score_column")]
        score_name = f"score (task.score_column={config.score_column})"
        return [checked_pair(table.path, row.line, *(column(row) for column in columns), self.score_range, score_name)
                for row in rows]

    def read_examples(self, path: Path, prefix: str) -> list[Example]:
        if self.config.format == "glue_sts":
            return self._examples(prefix, read_glue_sts(path, self.score_range, self.config.encoding))
        return self._examples(prefix, self._read_table_pairs(path))

    def _test_gold(self, test: list[ScoredPair], test_path: Path, data_root: Path) -> tuple[list[ScoredPair], dict]:
        """The test pairs with the gold file's scores; without a gold file they stay unscored (labels None,
        which the runner records as test metrics null)."""
        config = self.config
        gold_path = data_root / config.test_gold_file if config.test_gold_file else None
        if gold_path is not None and gold_path.is_file():
            gold = read_original_sts(gold_path, self.score_range, config.encoding)
            return attach_gold_scores(test, test_path, gold, gold_path), {"test_gold": str(gold_path)}
        note = (f"{test_path} has no scores and the gold file ({gold_path or 'task.test_gold_file unset'}) is"
                " missing: test metrics cannot be computed and are null; dev metrics are unaffected")
        log.warning("task '%s': %s", self.name, note)
        return test, {"test_gold": None, "test_note": note}

    def _from_hub(self, dataset) -> Splits:
        config = self.config
        splits, details = self.hub_splits(dataset)
        details |= {"test_gold": f"{config.hub_source}/{config.hub_splits.test}",
                    "hub_score_scale": config.hub_score_scale}
        return Splits(**splits, source=config.hub_source, details=details | self._counts(splits))

    def hub_examples(self, rows, where: str, prefix: str) -> list[Example]:
        config = self.config
        pairs = [checked_pair(where, row_number, row[config.sentence1_column], row[config.sentence2_column],
                              row[config.score_column] * config.hub_score_scale, self.score_range)
                 for row_number, row in enumerate(rows, start=1)]
        return self._examples(prefix, pairs)

    @staticmethod
    def _examples(split: str, pairs: Sequence[ScoredPair]) -> list[Example]:
        return [Example(f"{split}-{i}", (tokenize(p.sentence1), tokenize(p.sentence2)), p.score)
                for i, p in enumerate(pairs)]

    @staticmethod
    def _counts(splits: dict[str, list[Example]]) -> dict:
        return {"pairs": {split: len(examples) for split, examples in splits.items()}}

    def build_model(self, embedder: nn.Module, head_config: SiameseHeadConfig, train: Sequence[Example]) -> TaskModel:
        return SiameseRegressor(embedder, head_config, self.score_range)

    def floor(self, train: Sequence[Example], examples: Sequence[Example]) -> tuple[str, list]:
        mean = sum(example.label for example in train) / len(train)
        return "the training subset's mean score (a constant: correlation 0)", [mean] * len(examples)

    def score(self, gold: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
        return correlations(gold, predicted)
