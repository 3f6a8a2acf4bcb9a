"""Files the package keeps or checks, whatever produced them: the download and feature cache, content digests."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """$ELMO_BENCH_CACHE, else ~/.cache/elmo_bench: downloaded weights, hub data sets, frozen features."""
    return Path(os.environ.get("ELMO_BENCH_CACHE", Path.home() / ".cache" / "elmo_bench"))


def file_digest(path: str | Path) -> str:
    """The file's sha256 (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
