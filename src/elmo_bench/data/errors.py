"""Reading a data file's lines so that every error names the file and, where known, the line."""
from __future__ import annotations

import errno
import re
from pathlib import Path

from ..errors import DataError, DataFormatError

# C0 control characters but tab and carriage return, and DEL: never part of a label (`I-LOC\x01` would become a
# class of its own). Texts may hold them: public data does (STS-B's train.tsv has a U+0012 in one sentence).
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A NUL is the mark of a binary or damaged file, in a text as in a label.
NUL = re.compile(r"\x00")


def check_no_control(path: str | Path, line: int | None, text: str, what: str = "",
                     pattern: re.Pattern = NUL) -> None:
    """A DataFormatError naming the character of `pattern` (a NUL by default; CONTROL_CHARACTER for a label) in
    `text` (and `what` holds it), if there is one."""
    found = pattern.search(text)
    if found is not None:
        raise DataFormatError(path, line, f"control character U+{ord(found.group()):04X} at column {found.start() + 1}"
                                          f"{what}; a data file holds text (is it binary, or damaged?)")


def existing_file(path: str | Path, key: str = "") -> Path:
    """`path` if it is a readable file; else a DataError saying what it is instead (and `key` names it)."""
    path, named = Path(path), f"{key}: " if key else ""
    try:
        path.stat()
    except OSError as error:  # missing, a symlink loop, a folder on the way that is a file, no permission
        reason = "a symlink loop" if error.errno == errno.ELOOP else error.strerror
        raise DataError(f"{named}data file not found: {path} ({reason})") from None
    if path.is_dir():
        raise DataError(f"{named}{path} is a folder, not a data file (name the file inside it)")
    return path


def read_text_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """The file's lines without line endings or a leading byte-order mark (editors on Windows add one);
    a decoding error names the file and line."""
    path = existing_file(path)
    lines = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                lines.append(raw.decode(encoding).rstrip("\r\n"))
            except UnicodeDecodeError as error:
                raise DataFormatError(path, number, f"not valid {encoding} ({error.reason} at byte {error.start});"
                                                    " set task.encoding to the file's encoding") from None
            check_no_control(path, number, lines[-1])
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines
