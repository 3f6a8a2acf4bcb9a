"""Reading a data file's lines so that every error names the file and, where known, the line."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError, DataFormatError


def read_text_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """The file's lines without line endings or a leading byte-order mark (editors on Windows add one);
    a decoding error names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    lines = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                lines.append(raw.decode(encoding).rstrip("\r\n"))
            except UnicodeDecodeError as error:
                raise DataFormatError(path, number, f"not valid {encoding} ({error.reason} at byte {error.start});"
                                                    " set task.encoding to the file's encoding") from None
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines
