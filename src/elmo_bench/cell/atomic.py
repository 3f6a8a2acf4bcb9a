"""Write files so that a reader sees either the old file or the complete new one, never a part.

The content goes to a temporary file in the same folder and is renamed over the target only once it is
complete; a failure removes the temporary file. The temporary file is created exclusively (O_EXCL, so a
file or symlink planted under its name is never opened, let alone followed) under a random name nobody can
guess in advance, and is written through the handle that created it, never reopened by name.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

# Not tempfile.mkstemp: its files are private (0600), and results in a shared output_dir must stay readable by
# the group the umask allows.
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w+b", encoding: str | None = None) -> Iterator[IO]:
    """A new file's handle (`mode` as for open, without truncating anything); renamed to `path` on success."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(tmp, _CREATE, 0o666)
    try:
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, payload: Any) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def save_torch(path: str | Path, payload: Any) -> None:
    import torch

    with atomic_open(path) as handle:
        torch.save(payload, handle)
