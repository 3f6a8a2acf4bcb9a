"""Sentence-pair regression (STS-B): a siamese BiLSTM scores how similar two sentences are.

    both sentences, one embedder call  (2B, T, D) -> shared BiLSTM -> dropout -> max pool (2B, H)
    u, v = the two halves (B, H) -> [u; v; |u - v|; u * v] (B, 4H) -> MLP -> sigmoid -> [min_score, max_score]

The head is the GLUE baseline's sentence encoder (Wang et al. 2018: BiLSTM, max pooling, this feature
combination, one 512-unit hidden layer), narrower (512 per direction, not 1500) so a CPU epoch takes minutes.
Trained with mean squared error; scored with Pearson (main) and Spearman correlation.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import MISSING
from scipy import stats
from torch import nn
from torch.nn import functional as F

from ..config import check
from ..data.errors import DataFormatError
from ..data.hub import load_hub_dataset
from ..data.sts import ScoredPair, attach_gold_scores, checked_pair, read_glue_sts, read_original_sts
from ..data.tokenize import tokenize
from .base import Example, Splits, Task, TaskModel
from .layers import TokenEncoder, masked_max_pool

log = logging.getLogger(__name__)

METRICS = ("pearson", "spearman")


@dataclass
class PairRegressionTaskConfig:
    name: str = MISSING
    dataset: str = MISSING
    metric: str = "pearson"  # the main metric (early stopping, tables); both are always reported
    train_file: str = MISSING  # GLUE STS-B TSVs, relative to data.root
    dev_file: str = MISSING
    test_file: str = MISSING  # may lack the score column (GLUE hides test scores)
    test_gold_file: Optional[str] = None  # original STS Benchmark file holding the test scores, same row order
    min_score: float = 0.0
    max_score: float = 5.0
    hub_id: Optional[str] = None  # Hugging Face dataset (train/validation/test, all scored) when files are missing
    hub_sentence1_field: str = "sentence1"
    hub_sentence2_field: str = "sentence2"
    hub_score_field: str = "score"
    hub_score_scale: float = 1.0  # hub score x this = the task's score (sentence-transformers/stsb stores score/5)

    def __post_init__(self) -> None:
        check(self.metric in METRICS, "task.metric", f"must be one of {', '.join(METRICS)}, got {self.metric}")
        check(self.min_score < self.max_score, "task.max_score",
              f"must be above task.min_score ({self.min_score}), got {self.max_score}")
        check(self.hub_score_scale > 0, "task.hub_score_scale", f"must be > 0, got {self.hub_score_scale}")


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


SPLIT_FILES = {"train": "train_file", "dev": "dev_file", "test": "test_file"}
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


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
        paths = {split: Path(data_root) / getattr(self.config, key) for split, key in SPLIT_FILES.items()}
        missing = self.missing_files(paths, use_hub)
        if not missing:
            return self._from_files(paths, Path(data_root))
        return self._from_hub(load_hub_dataset(self.config.hub_id, tried=missing))

    def _from_files(self, paths: dict[str, Path], data_root: Path) -> Splits:
        pairs = {split: read_glue_sts(path, self.score_range) for split, path in paths.items()}
        for split in ("train", "dev"):
            if pairs[split][0].score is None:
                raise DataFormatError(paths[split], 1, f"no score column; the {split} split needs scores")
        details = {"test_gold": str(paths["test"])}
        if pairs["test"][0].score is None:
            pairs["test"], details = self._test_gold(pairs["test"], paths["test"], data_root)
        splits = {split: self._examples(split, split_pairs) for split, split_pairs in pairs.items()}
        return Splits(**splits, source=", ".join(str(p) for p in paths.values()),
                      details=details | self._counts(splits))

    def _test_gold(self, test: list[ScoredPair], test_path: Path, data_root: Path) -> tuple[list[ScoredPair], dict]:
        """The test pairs with the gold file's scores; without a gold file they stay unscored (labels None,
        which the runner records as test metrics null)."""
        gold_path = data_root / self.config.test_gold_file if self.config.test_gold_file else None
        if gold_path is not None and gold_path.is_file():
            gold = read_original_sts(gold_path, self.score_range)
            return attach_gold_scores(test, test_path, gold, gold_path), {"test_gold": str(gold_path)}
        note = (f"{test_path} has no scores and the gold file ({gold_path or 'task.test_gold_file unset'}) is"
                " missing: test metrics cannot be computed and are null; dev metrics are unaffected")
        log.warning("task '%s': %s", self.name, note)
        return test, {"test_gold": None, "test_note": note}

    def _from_hub(self, dataset) -> Splits:
        config = self.config
        splits = {}
        for split, hub_split in HUB_SPLITS.items():
            source = f"hub:{config.hub_id}/{hub_split}"
            pairs = [
                checked_pair(source, row_number, row[config.hub_sentence1_field], row[config.hub_sentence2_field],
                             row[config.hub_score_field] * config.hub_score_scale, self.score_range)
                for row_number, row in enumerate(dataset[hub_split], start=1)
            ]
            splits[split] = self._examples(split, pairs)
        details = {"test_gold": f"hub:{config.hub_id}/test", "hub_score_scale": config.hub_score_scale}
        return Splits(**splits, source=f"hub:{config.hub_id}", details=details | self._counts(splits))

    @staticmethod
    def _examples(split: str, pairs: Sequence[ScoredPair]) -> list[Example]:
        return [Example(f"{split}-{i}", (tokenize(p.sentence1), tokenize(p.sentence2)), p.score)
                for i, p in enumerate(pairs)]

    @staticmethod
    def _counts(splits: dict[str, list[Example]]) -> dict:
        return {"pairs": {split: len(examples) for split, examples in splits.items()}}

    def build_model(self, embedder: nn.Module, head_config: SiameseHeadConfig, train: Sequence[Example]) -> TaskModel:
        return SiameseRegressor(embedder, head_config, self.score_range)

    def score(self, gold: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
        return correlations(gold, predicted)
