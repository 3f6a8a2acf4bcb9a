"""Per-class scores with scikit-learn: precision, recall and F1 of each class, their macro mean, and the
confusion matrix. A single accuracy hides which classes a strategy moves; these say."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def class_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None,
                 ) -> dict[str, float]:
    """{"macro_f1", "precision_<c>", "recall_<c>", "f1_<c>" for each class c} as fractions; the classes are
    `labels`, or every label seen in gold or predicted. A class never predicted has precision 0."""
    labels = sorted(set(gold) | set(predicted)) if labels is None else list(labels)
    precision, recall, f1, _ = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    scores = {"macro_f1": float(np.mean(f1))}
    for label, *values in zip(labels, precision, recall, f1):
        scores |= {f"{kind}_{label}": float(value) for kind, value in zip(("precision", "recall", "f1"), values)}
    return scores


def confusion(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """{"labels", "matrix"}: matrix[i][j] counts examples of class labels[i] predicted as labels[j]."""
    return {"labels": list(labels), "matrix": confusion_matrix(gold, predicted, labels=list(labels)).tolist()}
