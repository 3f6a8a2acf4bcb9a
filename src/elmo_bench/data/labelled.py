"""Labelled texts for classification from the generic formats: tables (CSV, TSV, JSONL) and labelled lines.

A labelled-lines file holds one example per line; a regular expression with the named groups `label` and
`text` picks them out (TREC question classification, fastText's `__label__x text`, ...):

    DESC:manner How did serfdom develop in and then leave Russia ?
    pattern ^(?P<label>\\S+)\\s+(?P<text>.+)$        <- the default: a label, white space, the text

A non-blank line that the pattern does not match is an error naming the file and line, never skipped.
A label with parts (`DESC:manner`) can be cut to its first parts (`DESC`): `label_prefix`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError, DataFormatError
from .errors import CONTROL_CHARACTER, check_no_control, read_text_lines
from .tables import Table


@dataclass(frozen=True)
class LabelledText:
    line: int  # 1-based line in the file (row number for hub data)
    text: str
    label: str  # as written (JSON numbers as their text)


def read_labelled_lines(path: str | Path, pattern: str, encoding: str = "utf-8") -> list[LabelledText]:
    regex = re.compile(pattern)
    examples = []
    for number, line in enumerate(read_text_lines(path, encoding), start=1):
        if not line.strip():
            continue
        match = regex.search(line)
        if match is None:
            raise DataFormatError(path, number, f"the line does not match task.line_pattern {pattern!r}: {line[:80]!r}")
        if not match["label"].strip():
            raise DataFormatError(path, number, f"empty label (task.line_pattern {pattern!r}): {line[:80]!r}")
        examples.append(LabelledText(number, match["text"], match["label"]))
    if not examples:
        raise DataError(f"{path}: no examples (empty, or only blank lines)")
    return examples


def labelled_rows(table: Table, text_column: str, label_column: str) -> list[LabelledText]:
    text_of = table.column(text_column, "task.text_column")
    label_of = table.column(label_column, "task.label_column")
    examples = []
    first_kind = None  # (line, kind) of the first label: a file's labels are all strings or all numbers
    for row in table.rows:
        text, label = text_of(row), label_of(row)
        if not isinstance(text, str):
            raise DataFormatError(table.path, row.line, f"text (task.text_column={text_column}) is a"
                                                        f" {type(text).__name__}, not a string")
        kind = _label_kind(table.path, row.line, label, label_column)
        first_kind = first_kind or (row.line, kind)
        if kind != first_kind[1]:  # JSON 3 among "pos", "neg": a class "3" with no training example
            raise DataFormatError(table.path, row.line, f"label {label!r} (task.label_column={label_column}) is a"
                                                        f" {kind}, but line {first_kind[0]}'s label is a"
                                                        f" {first_kind[1]}; a file's labels must be of one kind")
        examples.append(LabelledText(row.line, text, str(label)))
    return examples


def _label_kind(path, line: int, label, column: str) -> str:
    """"string" or "number"; an empty label, null, true/false or a list is a DataFormatError."""
    if isinstance(label, str):
        if not label.strip():
            raise DataFormatError(path, line, f"empty label (task.label_column={column})")
        check_no_control(path, line, label, f" in the label (task.label_column={column})", CONTROL_CHARACTER)
        return "string"
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return "number"
    raise DataFormatError(path, line, f"label {label!r} (task.label_column={column}) is a"
                                      f" {type(label).__name__}; expected a string or a number")


def label_prefix(label: str, separator: str, parts: Optional[int]) -> str:
    """The label's first `parts` parts (all of it when None): the coarser class of a label with parts."""
    return label if parts is None else separator.join(label.split(separator)[:parts])
