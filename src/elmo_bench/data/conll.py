"""Column files for tagging (CoNLL-2003 and users' own): one token per line, blank lines between sentences.

    EU NNP I-NP I-ORG          <- columns split on whitespace; pick the token and the label column
    rejects VBZ I-VP O
                               <- one or more blank lines end a sentence
    -DOCSTART- -X- O O         <- document separators (token == `docstart`) are skipped

Every non-blank line (separators included) must have as many columns as the file's first one. Label schemes:
  "iob1"  CoNLL-2003 NER/chunk tags (I- by default, B- only between touching same-type chunks),
          converted to IOB2 on load so that span metrics and CRF constraints see one chunk start per chunk;
  "iob2", "bioes"  kept as they are, after checking each label has that scheme's form;
  "none"  plain tags such as POS, kept as they are.
`detect_scheme` reads the scheme from the labels themselves (task.scheme null): a file holds chunk tags or plain
tags, never both.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from elmo_bench.errors import DataError, DataFormatError
from elmo_bench.data.errors import read_text_lines

SCHEME_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES", "none": None}


@dataclass(frozen=True)
class TaggedSentence:
    tokens: tuple[str, ...]
    labels: tuple[str, ...]
    line: int  # 1-based line of the first token in the file
    token_lines: tuple[int, ...] = field(default=(), compare=False, repr=False)  # each token's line, for messages


def read_column_file(
    path: str | Path,
    token_column: int = 0,
    label_column: int = -1,
    scheme: str = "iob1",
    docstart: str | None = "-DOCSTART-",
    encoding: str = "utf-8",
) -> list[TaggedSentence]:
    """The file's sentences; labels in IOB2 when scheme is "iob1". Errors name the file and line."""
    if scheme not in SCHEME_PREFIXES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {sorted(SCHEME_PREFIXES)}")
    return with_scheme(path, read_columns(path, token_column, label_column, docstart, encoding), scheme)


def read_columns(path: str | Path, token_column: int = 0, label_column: int = -1, docstart: str | None = "-DOCSTART-",
                 encoding: str = "utf-8") -> list[TaggedSentence]:
    """The file's sentences with their labels as written (no scheme checked yet)."""
    lines = read_text_lines(path, encoding)
    sentences = []
    for block in _sentence_blocks(path, lines, token_column, label_column, docstart):
        sentences.append(TaggedSentence(tuple(fields[token_column] for _, fields in block),
                                        tuple(fields[label_column] for _, fields in block), line=block[0][0],
                                        token_lines=tuple(number for number, _ in block)))
    if not sentences:
        raise DataError(f"{path}: no sentences (empty, or only blank lines and document separators)")
    return sentences


def with_scheme(path, sentences: Sequence[TaggedSentence], scheme: str) -> list[TaggedSentence]:
    """The sentences after checking each label has the scheme's form (an error names its line); IOB1 -> IOB2."""
    checked = []
    for sentence in sentences:
        labels = [_checked_label(path, number, label, scheme) for number, label in _labelled_lines(sentence)]
        checked.append(replace(sentence, labels=tuple(iob1_to_iob2(labels) if scheme == "iob1" else labels)))
    return checked


def _labelled_lines(sentence: TaggedSentence) -> list[tuple[int | None, str]]:
    lines = sentence.token_lines or (None,) * len(sentence.labels)  # hub rows have no lines
    return list(zip(lines, sentence.labels))


def detect_scheme(path, sentences: Sequence[TaggedSentence]) -> str:
    """The tag scheme of the labels: bioes when an E- or S- tag occurs, iob1 when an I- tag opens a chunk (IOB2
    forbids it), iob2 for other B-/I- tags, none for plain tags (POS). Chunk tags and plain tags in one file are a
    DataFormatError naming the line of the first tag of the other kind."""
    first = None  # (line, label) of the first tag that is not O: it says which kind the file holds
    for number, label in (pair for sentence in sentences for pair in _labelled_lines(sentence)):
        if label == "O":
            continue
        first = first or (number, label)
        kind, first_kind = (_tag_kind(tag) for tag in (label, first[1]))
        if kind != first_kind:
            raise DataFormatError(path, number, f"label {label!r} is {kind}, but line {first[0]} has {first[1]!r},"
                                                f" {first_kind}: a file holds one kind (set task.scheme to say which)")
    labels = [sentence.labels for sentence in sentences]
    if first is None or not _is_chunk_label(first[1], "BIES"):
        return "none"
    if any(label[:2] in ("E-", "S-") for sentence in labels for label in sentence):
        return "bioes"
    return "iob1" if any(_opens_with_inside(sentence) for sentence in labels) else "iob2"


def _tag_kind(label: str) -> str:
    return "a chunk tag (B-/I-/E-/S-TYPE)" if _is_chunk_label(label, "BIES") else "a plain tag"


def _opens_with_inside(labels: Sequence[str]) -> bool:
    """Whether an I- tag opens a chunk (at the start, after O, after another type): IOB1, not IOB2."""
    return any(label.startswith("I-") and (previous == "O" or previous[2:] != label[2:])
               for previous, label in zip(("O", *labels), labels))


def _sentence_blocks(path, lines, token_column, label_column, docstart):
    """Yields each sentence as a list of (line number, fields); checks column counts and indices."""
    expected = None  # the column count of the first non-blank line, which every later one must match
    block = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if fields and expected is None:
            expected = len(fields)
            for name, index in (("token_column", token_column), ("label_column", label_column)):
                if not -expected <= index < expected:
                    raise DataFormatError(path, number, f"{name}={index} is out of range for {expected} columns")
        if fields and len(fields) != expected:
            message = f"expected {expected} columns (as on the first non-blank line), found {len(fields)}"
            if _looks_like_conllu(lines, line):
                message += ("; this looks like a CoNLL-U file (# comments, 10 tab-separated fields): set"
                            " task.format=conllu")
            raise DataFormatError(path, number, message)
        # A document separator also ends a sentence, in case a file omits the blank line before it.
        if not fields or fields[token_column] == docstart:
            if block:
                yield block
            block = []
        else:
            block.append((number, fields))
    if block:
        yield block


def _looks_like_conllu(lines: list[str], line: str) -> bool:
    return line.count("\t") == 9 or any(text.startswith(("# sent_id", "# text")) for text in lines[:50])


def _checked_label(path, number: int | None, label: str, scheme: str) -> str:
    prefixes = SCHEME_PREFIXES[scheme]
    if prefixes is not None and not _is_chunk_label(label, prefixes):
        expected = " / ".join(["O"] + [f"{prefix}-TYPE" for prefix in prefixes])
        raise DataFormatError(path, number, f"label {label!r} is not a {scheme} tag ({expected})")
    return label


def _is_chunk_label(label: str, prefixes: str) -> bool:
    return label == "O" or (len(label) > 2 and label[0] in prefixes and label[1] == "-")


def iob1_to_iob2(labels: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an I-X that starts a chunk (at the start, after O, after another type) becomes B-X."""
    converted = []
    previous_type = None  # the chunk type of the previous label; None after O and at the start
    for label in labels:
        if not _is_chunk_label(label, "BI"):
            raise ValueError(f"label {label!r} is not an IOB tag (O / B-TYPE / I-TYPE)")
        chunk_type = None if label == "O" else label[2:]
        if label.startswith("I-") and chunk_type != previous_type:
            label = "B-" + chunk_type
        converted.append(label)
        previous_type = chunk_type
    return converted
