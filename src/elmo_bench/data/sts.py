"""Semantic textual similarity files: GLUE's STS-B TSVs, and the original STS Benchmark's test scores.

GLUE (stsb/{train,dev,test}.tsv): a header row, then one pair per line, split on tabs only (the texts
hold unescaped quotes, so a CSV reader would merge lines):

    index genre filename year old_index source1 source2 sentence1 sentence2 score    <- test.tsv: no score

The original STS Benchmark (stsb/original/sts-*.tsv, Cer et al. 2017), no header:

    genre file years id score sentence1 sentence2 [source1 source2]

GLUE hides the test scores; the original test file has them, row for row in the same order. Its texts
differ from GLUE's only in whitespace (a few trailing spaces), so the rows are matched after collapsing
whitespace, and any row that does not match is an error, never a silent shift of every later score.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DataError, DataFormatError
from .errors import read_text_lines

GLUE_COLUMNS = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
GLUE_SCORED_COLUMNS = (*GLUE_COLUMNS, "score")
ORIGINAL_COLUMNS = ("genre", "file", "years", "id", "score", "sentence1", "sentence2")
ORIGINAL_OPTIONAL_COLUMNS = 2  # license/source notes after sentence2 on some rows


@dataclass(frozen=True)
class ScoredPair:
    sentence1: str
    sentence2: str
    score: float | None  # None: the file has no scores (GLUE test)
    line: int  # 1-based line in the file (row number for hub data)


def read_glue_sts(path: str | Path, score_range: tuple[float, float], encoding: str = "utf-8") -> list[ScoredPair]:
    """The pairs of a GLUE STS-B TSV; scores are None when the header has no score column."""
    lines = read_text_lines(path, encoding)
    if not lines:
        raise DataError(f"{path}: empty file (expected the GLUE STS-B header)")
    header = tuple(lines[0].split("\t"))
    if header not in (GLUE_COLUMNS, GLUE_SCORED_COLUMNS):
        raise DataFormatError(path, 1, f"header {' '.join(header)!r} is not GLUE STS-B's"
                                       f" ({' '.join(GLUE_SCORED_COLUMNS)}, score optional)")
    column = {name: i for i, name in enumerate(header)}
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataFormatError(path, number, f"expected {len(header)} tab-separated columns, found {len(fields)}")
        score = fields[column["score"]] if "score" in column else None
        pairs.append(checked_pair(path, number, fields[column["sentence1"]], fields[column["sentence2"]], score,
                                  score_range))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs after the header")
    return pairs


def read_original_sts(path: str | Path, score_range: tuple[float, float], encoding: str = "utf-8") -> list[ScoredPair]:
    """The pairs of an original STS Benchmark file (sts-{train,dev,test}.tsv): 7 columns, + 2 optional."""
    column = {name: i for i, name in enumerate(ORIGINAL_COLUMNS)}
    pairs = []
    for number, line in enumerate(read_text_lines(path, encoding), start=1):
        fields = line.split("\t")
        if not len(ORIGINAL_COLUMNS) <= len(fields) <= len(ORIGINAL_COLUMNS) + ORIGINAL_OPTIONAL_COLUMNS:
            raise DataFormatError(path, number, f"expected {len(ORIGINAL_COLUMNS)} tab-separated columns"
                                                f" (+ up to {ORIGINAL_OPTIONAL_COLUMNS} optional), found {len(fields)}")
        pairs.append(checked_pair(path, number, fields[column["sentence1"]], fields[column["sentence2"]],
                                  fields[column["score"]], score_range))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs (empty file)")
    return pairs


def attach_gold_scores(pairs: Sequence[ScoredPair], pairs_path: str | Path, gold: Sequence[ScoredPair],
                       gold_path: str | Path) -> list[ScoredPair]:
    """`pairs` with the scores of `gold`, which must hold the same sentences, row for row (up to whitespace)."""
    for pair, scored in zip(pairs, gold):
        for field in ("sentence1", "sentence2"):
            if _normalised(getattr(pair, field)) != _normalised(getattr(scored, field)):
                raise DataFormatError(gold_path, scored.line, f"{field} does not line up with {pairs_path}:{pair.line}"
                                      f" ({getattr(scored, field)!r} vs {getattr(pair, field)!r})")
    if len(gold) < len(pairs):
        raise DataFormatError(pairs_path, pairs[len(gold)].line,
                              f"no gold score: {gold_path} ends after {len(gold)} pairs")
    if len(gold) > len(pairs):
        raise DataFormatError(gold_path, gold[len(pairs)].line, f"{pairs_path} ends after {len(pairs)} pairs")
    return [replace(pair, score=scored.score) for pair, scored in zip(pairs, gold)]


def checked_pair(source: str | Path, number: int, sentence1: str, sentence2: str, score: str | float | None,
                 score_range: tuple[float, float], score_name: str = "score") -> ScoredPair:
    """A pair whose sentences are not blank and whose score (if any) is a number in `score_range`; `score_name`
    names the score in messages (e.g. with the config key of its column)."""
    for name, text in (("sentence1", sentence1), ("sentence2", sentence2)):
        if not isinstance(text, str):
            raise DataFormatError(source, number, f"{name} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise DataFormatError(source, number, f"{name} is empty")
    if score is None:
        return ScoredPair(sentence1, sentence2, None, number)
    return ScoredPair(sentence1, sentence2, _score(source, number, score, score_range, score_name), number)


def _score(source, number: int, value: str | float, score_range: tuple[float, float], name: str) -> float:
    low, high = score_range
    if isinstance(value, bool):  # JSON true is 1 to Python, never a similarity score
        raise DataFormatError(source, number, f"{name} {value!r} is not a number")
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise DataFormatError(source, number, f"{name} {value!r} is not a number") from None
    if not low <= score <= high:  # also catches nan
        raise DataFormatError(source, number, f"{name} {score:g} is outside [{low:g}, {high:g}] (task.min_score,"
                                              " task.max_score)")
    return score


def _normalised(text: str) -> str:
    return " ".join(text.split())
