"""Where biLM files come from: a local path, an http(s) URL (downloaded once into a cache), or the
name of one of the four official English models."""
from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

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


class SourceError(OSError):
    """A biLM file that is neither on disk nor downloadable."""


def cache_dir() -> Path:
    return Path(os.environ.get("ELMO_BENCH_CACHE", Path.home() / ".cache" / "elmo_bench"))


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def cached_path(url: str) -> Path:
    """Where `url` is (or would be) stored in the cache: <cache>/<host>/<path> (no query, no '..')."""
    parts = urllib.parse.urlsplit(url)
    segments = [s for s in parts.path.split("/") if s not in ("", ".", "..")]
    if not segments:
        raise SourceError(f"URL names no file: {url}")
    return cache_dir().joinpath(parts.netloc.replace(":", "_"), *segments)


def resolve(location: str | os.PathLike) -> Path:
    """A local file for `location` (path or URL), downloading a URL on first use."""
    location = str(location)
    if not is_url(location):
        path = Path(location).expanduser()
        if not path.is_file():
            raise SourceError(f"file not found: {path}")
        return path
    target = cached_path(location)
    if not target.is_file():
        download(location, target)
    return target


def download(url: str, target: Path) -> None:
    """Fetch `url` into `target` with a progress bar; the file appears only once complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise SourceError(
            f"cannot download {url} ({error}). If this machine is offline, fetch the file elsewhere"
            f" and put it at {target} (the cache; set $ELMO_BENCH_CACHE to move it), or pass a local path."
        ) from None
    partial.replace(target)
