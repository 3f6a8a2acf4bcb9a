"""How each task family's test metric is resampled: the unit drawn, and every metric as a function of unit weights.
Torch-free: the report reads it (report/units.py), keyed by the task family that result.json records.

    tagging          the sentence; entity F1 = 2·TP / (predicted + gold entities), summed over the drawn
                     sentences (so F1 is recomputed on every resample, never averaged per sentence);
                     precision and recall alike; POS accuracy = correct tokens / tokens
    classification   the example; accuracy = correct / examples
    span_qa          the article (the questions on one passage are not independent); F1 and exact match are
                     sums over the drawn articles' questions / their number of questions
    pair_regression  the pair; Pearson and Spearman of the drawn pairs (ties in Spearman take mid-ranks,
                     as scipy.stats.spearmanr does)

A resample is given as weights: how many times each unit was drawn, one row per resample. Every metric is
computed for all rows at once, so thousands of resamples cost a few matrix products. A new task family adds its
rule to RESAMPLING (tests/test_registries.py checks every family has one).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from .squad import question_scores

# weights (R, units) -> score ×100 for each of the R resamples
Metric = Callable[[np.ndarray], np.ndarray]


class LinearMetric(ABC):
    """A metric of a few weighted sums over the units (weights @ columns), so that every such metric of every run
    on one test set is resampled by one matrix product."""

    @property
    @abstractmethod
    def columns(self) -> np.ndarray:
        """(units, k): what is summed."""

    @abstractmethod
    def combine(self, sums: np.ndarray) -> np.ndarray:
        """(R, k) weighted sums -> (R,) scores ×100."""

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        return self.combine(weights.astype(float) @ self.columns)


@dataclass(frozen=True)
class Ratio(LinearMetric):
    """score = 100 · Σ weight·numerator / Σ weight·denominator (0 where the denominator is 0)."""

    numerator: np.ndarray
    denominator: np.ndarray

    @property
    def columns(self) -> np.ndarray:
        return np.stack([self.numerator, self.denominator], axis=1)

    def combine(self, sums: np.ndarray) -> np.ndarray:
        numerator, denominator = sums.T
        return 100 * np.divide(numerator, denominator, out=np.zeros(len(sums)), where=denominator > 0)


@dataclass(frozen=True)
class Pearson(LinearMetric):
    """Pearson's r of gold and predicted scores over the weighted pairs."""

    gold: np.ndarray
    pred: np.ndarray

    @property
    def columns(self) -> np.ndarray:
        return np.stack([self.gold, self.pred, self.gold**2, self.pred**2, self.gold * self.pred,
                         np.ones_like(self.gold)], axis=1)

    def combine(self, sums: np.ndarray) -> np.ndarray:
        return _correlation(*sums.T)


@dataclass(frozen=True)
class Spearman:
    """Spearman's rho: Pearson of the mid-ranks, which change with every resample."""

    gold: np.ndarray
    pred: np.ndarray

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        weights = weights.astype(float)
        # Every resample draws as many units as there are, so the weighted mean rank is (n + 1) / 2 exactly.
        middle = (weights.shape[1] + 1) / 2
        gold = _weighted_midranks(self.gold, weights) - middle
        pred = _weighted_midranks(self.pred, weights) - middle
        weighted_gold = weights * gold
        covariance = np.einsum("ij,ij->i", weighted_gold, pred)
        spread = np.sqrt(np.einsum("ij,ij->i", weighted_gold, gold) * np.einsum("ij,ij->i", weights * pred, pred))
        return 100 * np.divide(covariance, spread, out=np.zeros(len(weights)), where=spread > 0)


def _correlation(gold_sum, pred_sum, gold_squares, pred_squares, products, total) -> np.ndarray:
    """Pearson's r ×100 from weighted sums; 0 where either side has no spread."""
    covariance = products - gold_sum * pred_sum / total
    # rounding can take a zero variance just below 0
    variances = np.maximum(gold_squares - gold_sum**2 / total, 0) * np.maximum(pred_squares - pred_sum**2 / total, 0)
    spread = np.sqrt(variances)
    return 100 * np.divide(covariance, spread, out=np.zeros(len(total)), where=spread > 1e-12 * total)


def _weighted_midranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(R, n) ranks of each unit's value within each resample, a unit drawn k times counting k times and
    tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each distinct value
    group = np.empty(len(values), dtype=int)
    group[order] = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    counts = np.add.reduceat(weights[:, order], starts, axis=1)  # (R, distinct values)
    midranks = np.cumsum(counts, axis=1) - (counts - 1) / 2
    return midranks[:, group]


# (what a unit is, the sorted unit ids, every metric of the family with the main one first)
Scored = tuple[str, tuple[str, ...], dict[str, "Metric"]]


def tagging(rows: list[dict], metric: str) -> Scored:
    if metric == "f1":
        units, sums = _unit_sums(rows, "id", _entity_counts)
        correct, predicted, gold = sums.T
        return "sentence", units, {"f1": Ratio(2 * correct, predicted + gold), "precision": Ratio(correct, predicted),
                                   "recall": Ratio(correct, gold)}
    units, sums = _unit_sums(rows, "id", _correct_tokens)
    return "sentence", units, {"accuracy": Ratio(*sums.T)}


def classification(rows: list[dict], metric: str) -> Scored:
    units, sums = _unit_sums(rows, "id", lambda row: (row["gold"] == row["pred"], 1))
    return "example", units, {"accuracy": Ratio(*sums.T)}


def pair_regression(rows: list[dict], metric: str) -> Scored:
    units, sums = _unit_sums(rows, "id", lambda row: (float(row["gold"]), float(row["pred"])))
    gold, pred = sums.T
    return "pair", units, {"pearson": Pearson(gold, pred), "spearman": Spearman(gold, pred)}


def span_qa(rows: list[dict], metric: str) -> Scored:
    """gold holds a question's answer texts, pred one text or null."""
    unit = "article" if all("article" in row for row in rows) else "question"
    units, sums = _unit_sums(rows, "article" if unit == "article" else "id", _answer_scores)
    f1, exact, questions = sums.T
    return unit, units, {"f1": Ratio(f1, questions), "exact_match": Ratio(exact, questions)}


RESAMPLING: dict[str, Callable[[list[dict], str], Scored]] = {
    "tagging": tagging, "classification": classification, "pair_regression": pair_regression, "span_qa": span_qa}


def scored(family: str, metric: str, rows: list[dict]) -> Scored:
    """The family's resampling rule applied to a run's test rows, with `metric` first among its metrics."""
    if family not in RESAMPLING:
        raise ValueError(f"no resampling rule for the task family {family!r}")
    unit, units, metrics = RESAMPLING[family](rows, metric)
    if metric not in metrics:
        raise ValueError(f"no resampling rule for the metric {metric!r} of a {family} task")
    return unit, units, {metric: metrics[metric]} | metrics


def _unit_sums(rows: list[dict], key: str, parts: Callable[[dict], tuple]) -> tuple[tuple[str, ...], np.ndarray]:
    """The sorted unit ids and, per unit, the sum of `parts` over its rows; ids are unique unless a unit is a
    group (an article)."""
    sums: dict[str, np.ndarray] = {}
    for row in rows:
        unit, values = str(row[key]), np.asarray(parts(row), dtype=float)
        if key == "id" and unit in sums:
            raise ValueError(f"two lines share the id {unit!r}")
        sums[unit] = sums[unit] + values if unit in sums else values
    units = tuple(sorted(sums))
    return units, np.array([sums[unit] for unit in units])


def _entity_counts(row: dict) -> tuple[int, int, int]:
    """(correct, predicted, gold) entities of one sentence, read as seqeval's default (conlleval) mode does."""
    if len(row["gold"]) != len(row["pred"]):
        raise ValueError(f"line {row['id']!r} has {len(row['gold'])} gold tags but {len(row['pred'])} predicted")
    gold, pred = _entities(tuple(row["gold"])), _entities(tuple(row["pred"]))
    return len(gold & pred), len(pred), len(gold)


@lru_cache(maxsize=1 << 16)  # every run of a test set repeats its gold sentences, and most of its predictions
def _entities(tags: tuple[str, ...]) -> frozenset:
    return frozenset(get_entities(list(tags)))


def _correct_tokens(row: dict) -> tuple[int, int]:
    return sum(g == p for g, p in zip(row["gold"], row["pred"], strict=True)), len(row["gold"])


def _answer_scores(row: dict) -> tuple[float, float, int]:
    """(F1, exact match, 1 question) of one question: its best over the gold answers."""
    exact, f1 = question_scores(row["pred"], row["gold"])
    return f1, exact, 1
