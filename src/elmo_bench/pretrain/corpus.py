"""Plain-text corpora for language-model pretraining: files or folders, each line a sentence.

Real files are messy (shared/data/MANIFEST.md): UTF-8 byte-order marks, CRLF endings, latin-1 files,
Project Gutenberg headers and licences around the book text. Each file is decoded as UTF-8 (BOM
dropped), falling back to latin-1 when that fails, and only the part between Gutenberg's START and
END markers is kept when the markers are present. Lines are tokenized with the project tokenizer
(a no-op in effect for already tokenized corpora) and long lines are cut into windows. Two marks of
tokenized LM corpora are undone first: `<unk>` (PTB, WikiText) is dropped, since the char-CNN should
not learn it as a spelling, and WikiText's `@-@`, `@,@`, `@.@` become `-`, `,`, `.`.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import DataError, DataFormatError
from ..data.tokenize import tokenize

log = logging.getLogger(__name__)

_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE | re.IGNORECASE)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE | re.IGNORECASE)
_SKIPPED_NAMES = {"README", "LICENSE", "MANIFEST.md"}


def corpus_files(paths: Sequence[str | Path]) -> list[Path]:
    """The text files named, or found (sorted, recursively) under the folders named."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _SKIPPED_NAMES)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"corpus path not found: {path}")
    if not files:
        raise DataError(f"no corpus files under {', '.join(map(str, paths))}")
    return files


def decode(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw:  # text in any 8-bit encoding has none; latin-1 would "decode" a binary file all the same
        line = raw[:raw.index(b"\x00")].count(b"\n") + 1
        raise DataFormatError(path, line, "a NUL byte: a binary file, not text (a corpus holds plain text, a"
                                          " sentence a line)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("%s is not UTF-8; read as latin-1", path)
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def book_text(text: str) -> str:
    """The text between Project Gutenberg's START and END markers, or all of it without markers."""
    start, end = _START.search(text), _END.search(text)
    if start and end and start.end() < end.start():
        return text[start.end() : end.start()]
    return text


_MARKS = {"<unk>": "", "@-@": "-", "@,@": ",", "@.@": "."}


def undo_marks(line: str) -> str:
    for mark, replacement in _MARKS.items():
        line = line.replace(mark, replacement)
    return line


def sentences(paths: Sequence[str | Path], max_tokens: int) -> Iterator[tuple[str, ...]]:
    """Token windows of at most `max_tokens`, one or more per non-empty line, file by file."""
    for path in corpus_files(paths):
        for line in book_text(decode(path)).split("\n"):
            tokens = tokenize(undo_marks(line))
            for start in range(0, len(tokens), max_tokens):
                yield tokens[start : start + max_tokens]
