"""Where biLM files come from: a local path, an http(s) URL (downloaded once into a cache, see download.py),
or the name of one of the four official English models."""
from __future__ import annotations

import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..files import cache_dir
from .download import SourceError, check_cached, fetch, public_url

_BASE_URL = "https://allennlp.s3.amazonaws.com/models/elmo"


@dataclass(frozen=True)
class PretrainedBiLM:
    stem: str
    output_dim: int  # 2 * projection_dim
    parameters: str  # as published

    @property
    def options_url(self) -> str:
        return f"{_BASE_URL}/{self.stem}/elmo_{self.stem}_options.json"

    @property
    def weights_url(self) -> str:
        return f"{_BASE_URL}/{self.stem}/elmo_{self.stem}_weights.hdf5"


OFFICIAL_MODELS = {
    "small": PretrainedBiLM("2x1024_128_2048cnn_1xhighway", 256, "13.6M"),
    "medium": PretrainedBiLM("2x2048_256_2048cnn_1xhighway", 512, "28.0M"),
    "original": PretrainedBiLM("2x4096_512_2048cnn_2xhighway", 1024, "93.6M"),
    "original_5.5b": PretrainedBiLM("2x4096_512_2048cnn_2xhighway_5.5B", 1024, "93.6M"),
}


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def cached_path(url: str) -> Path:
    """Where `url` is (or would be) stored in the cache: <cache>/<scheme>/<host[_port]>/<path>, with a folder
    `query-<hash>` before the file name when the URL has a query; never its credentials, never a '..'."""
    parts = urllib.parse.urlsplit(url)
    segments = [s for s in parts.path.split("/") if s not in ("", ".", "..")]
    if not segments or not parts.hostname:
        raise SourceError(f"URL names no file: {public_url(url)}")
    if parts.query:
        segments.insert(-1, f"query-{hashlib.sha256(parts.query.encode()).hexdigest()[:16]}")
    host = parts.hostname + (f"_{parts.port}" if parts.port is not None else "")
    return cache_dir().joinpath(parts.scheme, host, *segments)


def resolve(location: str | os.PathLike) -> Path:
    """A local file for `location` (path or URL), downloading a URL on first use and checking its cached copy."""
    location = str(location)
    if not is_url(location):
        path = Path(location).expanduser()
        if not path.is_file():
            raise SourceError(f"file not found: {path}")
        return path
    target = cached_path(location)
    if not target.is_file():
        fetch(location, target)
    check_cached(target, location)
    return target
