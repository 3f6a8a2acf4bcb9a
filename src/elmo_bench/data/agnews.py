"""AG News rows (Zhang, Zhao & LeCun 2015): CSV `class,title,description`, and the cleaning of their text.

Two layouts occur: the canonical files (no header, every field quoted) and the Kaggle copy
(header `class_index,title,description`, quotes only where needed); a CSV reader takes both.
The text keeps traces of its HTML origin, undone by `clean_news_text`:
  - `\\` where the article had a line break (it also escapes `$` as `\\$`);
  - numeric character references whose `&` became a space: `America #39;s`, `the  #36;10 million`,
    `convention  #151; California` (128-159 are Windows-1252 code points: #151 is an em dash);
  - named entities `&lt;` `&gt;` and, once those are undone, HTML tags (`<b>`, `<A HREF=...>`);
    Reuters' ticker marks such as `<TXN.N>` are not tags and stay.
"""
from __future__ import annotations

import csv
import html
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError
from .errors import read_text_lines

KAGGLE_HEADER = ["class_index", "title", "description"]

_NUMERIC_REFERENCE = re.compile(r" ?#(\d{2,5});")
_NAMED_ENTITY = re.compile(r"&[A-Za-z]+;")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class NewsRow:
    line: int  # 1-based line number where the row starts
    label: str  # the class field, as written
    text: str  # cleaned title + " " + description


def _character(code: int) -> str:
    if 128 <= code < 160:  # Windows-1252 punctuation, as the source pages meant it (#146 = ’)
        return bytes([code]).decode("cp1252", errors="replace")
    return chr(code)


def clean_news_text(text: str) -> str:
    text = text.replace("\\", " ")
    text = _NUMERIC_REFERENCE.sub(lambda match: _character(int(match.group(1))), text)
    text = _NAMED_ENTITY.sub(lambda match: html.unescape(match.group()), text)
    text = _HTML_TAG.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def read_news_csv(path: str | Path, labels: Collection[str], encoding: str = "utf-8") -> list[NewsRow]:
    """Rows of an AG News CSV file (a first line equal to the Kaggle header is skipped; blank lines too).

    A row with a column count other than 3, a class outside `labels` or no text left after cleaning
    is a DataFormatError naming the file and line.
    """
    lines = read_text_lines(path, encoding)
    reader = csv.reader((line + "\n" for line in lines), strict=True)
    rows, start = [], 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields or (line == 1 and fields == KAGGLE_HEADER):
                continue
            rows.append(_news_row(path, line, fields, labels))
    except csv.Error as error:
        raise DataFormatError(path, start, f"not valid CSV ({error})") from None
    return rows


def _news_row(path: str | Path, line: int, fields: list[str], labels: Collection[str]) -> NewsRow:
    if len(fields) != 3:
        raise DataFormatError(path, line, f"expected 3 columns (class, title, description), found {len(fields)}")
    label, title, description = fields
    if label not in labels:
        raise DataFormatError(path, line, f"class {label!r} is not one of {', '.join(sorted(labels))}")
    text = clean_news_text(f"{title} {description}")
    if not text:
        raise DataFormatError(path, line, "empty text: no title or description left after cleaning")
    return NewsRow(line, label, text)
