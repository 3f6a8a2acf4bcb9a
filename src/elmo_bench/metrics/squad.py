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
from collections.abc import Callable, Sequence
from typing import Optional

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric: Callable[[str, str], float], prediction: Optional[str], golds: Sequence[str]) -> float:
    if prediction is None:  # unanswered
        return 0.0
    return max(metric(prediction, gold) for gold in golds)


def squad_scores(golds: Sequence[Sequence[str]], predictions: Sequence[Optional[str]]) -> dict[str, float]:
    """{"exact_match", "f1"} as fractions over all questions; golds[i] holds question i's answer texts."""
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} questions but {len(predictions)} predictions")
    if not golds:
        return {"exact_match": 0.0, "f1": 0.0}
    total = len(golds)
    return {
        "exact_match": sum(best_over_golds(exact_match, p, g) for g, p in zip(golds, predictions)) / total,
        "f1": sum(best_over_golds(token_f1, p, g) for g, p in zip(golds, predictions)) / total,
    }
