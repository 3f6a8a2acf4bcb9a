"""Recompute every cell's main metric from its predictions files and compare with its result.json.

    python scripts/recompute_metrics.py outputs [more folders ...]

Dev, test and every extra test set (result.json's `extra_test`) are checked.

Predictions are read wherever the study keeps them (gzipped per cell, or in a study's frozen archive), in place.
Scores come from the standard libraries, not from the code that trained the model: seqeval (default,
conlleval-compatible mode) for entity F1, plain counting for accuracies, scipy for Pearson/Spearman,
and the official SQuAD v1.1 rules for QA F1. Exits 1 if any cell disagrees by more than 1e-3.
"""
from __future__ import annotations

import argparse
import re
import string
import sys
from collections import Counter
from pathlib import Path

from scipy import stats
from seqeval.metrics import f1_score

from elmo_bench.cell.layout import RESULT_FILE, read_predictions  # reading files only: the scoring is below
from elmo_bench.cell.result import CellResult


def squad_normalize(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def squad_f1(golds: list[str], pred: str | None) -> float:
    def f1(gold: str) -> float:
        common = Counter(squad_normalize(gold)) & Counter(squad_normalize(pred or ""))
        overlap = sum(common.values())
        if overlap == 0:
            return 0.0
        precision, recall = overlap / len(squad_normalize(pred or "")), overlap / len(squad_normalize(gold))
        return 2 * precision * recall / (precision + recall)

    return max(f1(gold) for gold in golds) if pred is not None else 0.0


def recompute(metric: str, rows: list[dict]) -> float:
    gold, pred = [r["gold"] for r in rows], [r["pred"] for r in rows]
    if metric in ("pearson", "spearman"):
        return 100 * (stats.pearsonr if metric == "pearson" else stats.spearmanr)(gold, pred)[0]
    sequences = isinstance(gold[0], list) and isinstance(pred[0], list)
    if metric == "f1" and sequences:
        return 100 * f1_score(gold, pred)
    if metric == "f1":  # extractive QA: gold is a list of answer texts, pred one text
        return 100 * sum(squad_f1(g, p) for g, p in zip(gold, pred)) / len(rows)
    if sequences:
        pairs = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
        return 100 * sum(g == p for g, p in pairs) / len(pairs)
    return 100 * sum(g == p for g, p in zip(gold, pred)) / len(rows)


def scored_sets(result: dict) -> list[tuple[str, str, float, str]]:
    """(name, metric, recorded score, predictions file) of dev, test and every extra test set with a score."""
    sets = [(split, result["metric"], result[split], result["predictions"][split]) for split in ("dev", "test")]
    sets += [(f"extra_test.{name}", extra["metric"], extra["score"], extra["predictions"])
             for name, extra in (result.get("extra_test") or {}).items()]
    return [entry for entry in sets if entry[2] is not None]


def check(result_file: Path) -> list[str]:
    result = CellResult.read(result_file).to_json()
    problems = []
    for name, metric, recorded, predictions in scored_sets(result):
        rows = read_predictions(result_file.parent, predictions)  # gzipped, plain or in a study's frozen archive
        value = recompute(metric, rows)
        status = "ok" if abs(value - recorded) <= 1e-3 else "MISMATCH"
        print(f"{status:8} {result_file.parent} {name} {metric}: recorded {recorded:.4f}, recomputed {value:.4f}")
        if status != "ok":
            problems.append(f"{result_file.parent} {name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    files = sorted(f for folder in args.folders for f in folder.rglob(RESULT_FILE))
    if not files:
        print(f"no result.json under {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    problems = [p for f in files for p in check(f)]
    print(f"{len(files)} cells checked, {len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
