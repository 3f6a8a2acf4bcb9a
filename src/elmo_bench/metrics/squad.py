"""Exact match and F1 by the rules of the official SQuAD v1.1 evaluation script (evaluate-v1.1.py).

    normalize(s) = collapse whitespace(remove articles a/an/the(remove string.punctuation(lower(s))))
    EM(p, g) = [normalize(p) == normalize(g)]
    F1(p, g) = harmonic mean of precision and recall over the multiset of normalized tokens
               (Counter intersection; 0 when no token is shared)

A question scores the best value over its gold answers; a question without a prediction (None) scores 0
for both. The corpus scores are means over questions, returned as fractions (the script prints x100).
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Optional

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@lru_cache(maxsize=1 << 17)  # the report rescores every run of a test set: the same answers come back each time
def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    return _normalized_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def _normalized_f1(predicted: list[str], expected: list[str]) -> float:
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def question_scores(prediction: Optional[str], golds: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of one question: each the best over its gold answers; (0, 0) when unanswered."""
    return _question_scores(prediction, tuple(golds))


@lru_cache(maxsize=1 << 17)  # runs of one test set often give a question the same answer
def _question_scores(prediction: Optional[str], golds: tuple[str, ...]) -> tuple[float, float]:
    if prediction is None:
        return 0.0, 0.0
    predicted = normalize_answer(prediction)
    expected = [normalize_answer(gold) for gold in golds]
    return (max(float(predicted == answer) for answer in expected),
            max(_normalized_f1(predicted.split(), answer.split()) for answer in expected))


def squad_scores(golds: Sequence[Sequence[str]], predictions: Sequence[Optional[str]]) -> dict[str, float]:
    """{"exact_match", "f1"} as fractions over all questions; golds[i] holds question i's answer texts."""
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} questions but {len(predictions)} predictions")
    if not golds:
        return {"exact_match": 0.0, "f1": 0.0}
    scores = [question_scores(prediction, gold) for gold, prediction in zip(golds, predictions)]
    return {"exact_match": sum(exact for exact, _ in scores) / len(scores),
            "f1": sum(f1 for _, f1 in scores) / len(scores)}
