"""Tagging scores: entity-level (span) F1 for NER/chunking, token accuracy for POS.

Span scores come from seqeval in its default mode, which reads tags the way the CoNLL `conlleval`
script does: an I-X after O or after another type opens a new X chunk instead of being thrown away
(strict mode drops it). An entity counts as correct only when its type and both boundaries match.
Precision, recall and F1 are micro-averaged over entities and given as fractions in [0, 1]; with no
predicted (or no gold) entities the undefined ratio is 0, not NaN.
"""
from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")  # classification_report rows that are not types


def span_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """{"precision", "recall", "f1", "per_type": {"PER": f1, ...}, "per_type_precision": {...},
    "per_type_recall": {...}} over IOB2 tag sequences."""
    gold, pred = _as_lists(gold, pred)
    scores = {
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "per_type": {}, "per_type_precision": {}, "per_type_recall": {},
    }
    # classification_report averages over an empty set of types (a NumPy warning) when there are no entities.
    if any(tag != "O" for sentence in gold + pred for tag in sentence):
        report = classification_report(gold, pred, output_dict=True, zero_division=0)
        rows = {name: row for name, row in report.items() if name not in AVERAGE_ROWS}
        for key, column in (("per_type", "f1-score"), ("per_type_precision", "precision"),
                            ("per_type_recall", "recall")):
            scores[key] = {name: float(row[column]) for name, row in rows.items()}
    return scores


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """{"accuracy": fraction of tokens whose predicted tag equals the gold tag}."""
    gold, pred = _as_lists(gold, pred)
    total = sum(len(sentence) for sentence in gold)
    if total == 0:
        raise ValueError("no tokens to score")
    correct = sum(
        gold_tag == pred_tag
        for gold_sentence, pred_sentence in zip(gold, pred)
        for gold_tag, pred_tag in zip(gold_sentence, pred_sentence)
    )
    return {"accuracy": correct / total}


def _as_lists(gold, pred) -> tuple[list[list[str]], list[list[str]]]:
    """Checks that the sentences line up; seqeval wants lists of lists."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for index, (gold_sentence, pred_sentence) in enumerate(zip(gold, pred)):
        if len(gold_sentence) != len(pred_sentence):
            raise ValueError(f"sentence {index}: {len(gold_sentence)} gold tags but {len(pred_sentence)} predicted")
    return [list(sentence) for sentence in gold], [list(sentence) for sentence in pred]
