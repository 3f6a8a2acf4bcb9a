"""Tables of examples in the common generic formats: CSV, TSV and JSON lines.

    csv    a real CSV reader: a quoted field may hold commas, doubled quotes and line breaks
    tsv    split on tabs only, no quoting: quotes are text (STS and SICK files hold unescaped ones)
    jsonl  one JSON object per line

A column is named by its header name (JSONL: its field), or by its 0-based index in a CSV/TSV file
("2"; the only way in a file without a header). Rows keep the line where they start, so every error
names the file, the line and the config key of the column at fault.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import DataError, DataFormatError
from .errors import check_no_control, read_text_lines

TABLE_FORMATS = ("csv", "tsv", "jsonl")


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line where the row starts
    values: Sequence[str] | Mapping[str, Any]  # fields in column order (CSV/TSV) or the JSON object


@dataclass(frozen=True)
class Table:
    path: Path
    header: Optional[tuple[str, ...]]  # CSV/TSV column names; None without a header and for JSONL
    rows: list[Row]

    def column(self, spec: str, key: str) -> Callable[[Row], Any]:
        """A getter for the column `spec` (a name or an index); an unknown one is a DataFormatError naming `key`."""
        if self.rows and isinstance(self.rows[0].values, Mapping):
            return self._field(spec, key)
        if self.header is not None and spec in self.header:
            return self._getter(self.header.index(spec), key)
        width = len(self.header) if self.header is not None else max((len(row.values) for row in self.rows), default=0)
        if spec.isdigit() and int(spec) < width:
            return self._getter(int(spec), key)
        names = f"the header has {', '.join(self.header)}" if self.header is not None else "the file has no header"
        raise DataFormatError(self.path, 1, f"no column {spec!r} ({key}): {names}, and an index must be below {width}")

    def _field(self, name: str, key: str) -> Callable[[Row], Any]:
        def get(row: Row) -> Any:
            if name not in row.values:
                raise DataFormatError(self.path, row.line, f"no field {name!r} ({key}); the object has"
                                                           f" {', '.join(row.values)}")
            return row.values[name]

        return get


    def _getter(self, index: int, key: str) -> Callable[[Row], str]:
        def get(row: Row) -> str:
            if index >= len(row.values):  # a headerless file may have rows of several widths
                raise DataFormatError(self.path, row.line, f"no column {index} ({key}): the row has"
                                                           f" {len(row.values)} fields")
            return row.values[index]

        return get


def read_table(path: str | Path, format: str, encoding: str = "utf-8", header: bool = True) -> Table:
    """The rows of a CSV, TSV or JSONL file (blank lines skipped). With a header, every CSV/TSV row must have as
    many fields as it; without one, rows may differ in width (the original STS Benchmark files add two optional
    columns to some rows) and a row too short for a column is named when that column is read."""
    path = Path(path)
    lines = read_text_lines(path, encoding)
    if format == "jsonl":
        return Table(path, None, list(_json_rows(path, lines)))
    rows = list(_csv_rows(path, lines) if format == "csv" else _tsv_rows(lines))
    names = tuple(rows.pop(0).values) if header and rows else None
    for row in rows if names is not None else ():
        if len(row.values) != len(names):
            raise DataFormatError(path, row.line, f"expected {len(names)} {format.upper()} columns (as in the"
                                                  f" header), found {len(row.values)}")
    if not rows:
        raise DataError(f"{path}: no rows{' after the header' if names else ''}")
    return Table(path, names, rows)


def _tsv_rows(lines: list[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield Row(number, line.split("\t"))


def _csv_rows(path: Path, lines: list[str]) -> Iterator[Row]:
    reader = csv.reader((line + "\n" for line in lines), strict=True)
    start = 1  # the line where the next row begins (a quoted field may span lines)
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if fields:
                yield Row(line, fields)
    except csv.Error as error:
        raise DataFormatError(path, start, f"not valid CSV ({error})") from None


def _json_rows(path: Path, lines: list[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, number, f"not valid JSON ({error.msg}, column {error.colno})") from None
        if not isinstance(value, dict):
            raise DataFormatError(path, number, f"expected a JSON object, got {type(value).__name__}")
        for name, field in value.items():  # JSON may escape a control character (\u0000), which the line check misses
            if isinstance(field, str):
                check_no_control(path, number, field, f" in field {name!r}")
        yield Row(number, value)


def rows_by_split(table: Table, column: Callable[[Row], Any], values: Mapping[str, Optional[str]],
                  key: str) -> dict[str, list[Row]]:
    """The table's rows grouped by a split column: `values` maps each split to the value that marks it
    (a split mapped to None gets no rows); a row with any other value is a DataFormatError naming `key`."""
    split_of = {str(value): split for split, value in values.items() if value is not None}
    grouped: dict[str, list[Row]] = {split: [] for split in values}
    for row in table.rows:
        value = str(column(row))
        if value not in split_of:
            raise DataFormatError(table.path, row.line, f"split {value!r} ({key}) is not one of"
                                                        f" {', '.join(map(repr, split_of))}")
        grouped[split_of[value]].append(row)
    return grouped
