"""Downloading a file into the cache so that what a run uses is exactly what the server sent.

- The bytes go to a temporary file of this process and are renamed into place only when their count is the
  server's Content-Length: a dropped connection never leaves a short file under the real name.
- One process at a time downloads a given file (an flock on `<file>.lock`); the others wait, then use its file.
- The sha256 of the download is recorded beside it (`<file>.sha256`) and checked each time the file is used,
  so a file damaged or replaced later stops the run with the name of the file to delete.
- `user:password@` in a URL is sent as HTTP basic authentication and never written into a path or a message.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from ..files import file_digest

log = logging.getLogger(__name__)


class SourceError(OSError):
    """A biLM file that is neither on disk nor downloadable, or whose cached copy is damaged."""


def public_url(url: str) -> str:
    """The URL without its `user:password@` part: safe to print, log and store."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    netloc += f":{parts.port}" if parts.port is not None else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def sha256_record(path: Path) -> Path:
    """The file beside `path` that records its sha256."""
    return path.with_name(f"{path.name}.sha256")


def check_cached(path: Path, url: str) -> None:
    """Raise SourceError when the cached file no longer has the sha256 recorded at download. A file put there by
    hand (offline) has no record yet: its digest is recorded now, and checked from then on."""
    recorded, actual = sha256_record(path), file_digest(path)
    if not recorded.is_file():
        _record(recorded, path, actual)
        return
    expected = (recorded.read_text(encoding="utf-8").split() or ["(nothing)"])[0]
    if actual != expected:
        raise SourceError(f"{path} is not the file downloaded from {public_url(url)}: its sha256 {actual[:16]}..."
                          f" differs from {expected[:16]}... recorded in {recorded}. Delete {path} to download it"
                          " again.")


def _record(recorded: Path, path: Path, sha256: str) -> None:
    try:
        recorded.write_text(f"{sha256}  {path.name}\n", encoding="utf-8")  # the format sha256sum -c reads
    except OSError as error:  # a cache shared read-only: the file is used, unchecked from now on
        log.warning("cannot record the sha256 of %s in %s (%s)", path, recorded, error.strerror)
    else:
        log.info("recorded the sha256 of %s in %s", path, recorded)


def fetch(url: str, target: Path) -> None:
    """Download `url` to `target` unless another process did while this one waited for the lock."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _download_lock(target):
        if target.is_file():
            return
        partial = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            _record(sha256_record(target), target, _copy_verified(url, target, partial))
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _download_lock(target: Path) -> Iterator[None]:
    with open(target.with_name(f"{target.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, also when the process dies
        yield


def _copy_verified(url: str, target: Path, partial: Path) -> str:
    """Write the response to `partial`, checking its length; returns its sha256."""
    digest, written, total = hashlib.sha256(), 0, None
    try:
        with urllib.request.urlopen(_request(url), timeout=30) as response, open(partial, "xb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    except http.client.IncompleteRead as error:  # a chunked response cut short
        raise _cut_short(url, target, written + len(error.partial), total) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise SourceError(f"cannot download {public_url(url)} ({error}). If this machine is offline, fetch the file"
                          f" elsewhere and put it at {target} (the cache; set $ELMO_BENCH_CACHE to move it), or"
                          " pass a local path.") from None
    if total is not None and written != total:
        raise _cut_short(url, target, written, total)
    return digest.hexdigest()


def _cut_short(url: str, target: Path, received: int, total: int | None) -> SourceError:
    size = f"{total:,}" if total is not None else "an unknown number of"
    return SourceError(f"download of {public_url(url)} stopped after {received:,} of {size} bytes; nothing was kept"
                       f" at {target}. Run again, or fetch the file elsewhere and put it at {target}.")


def _request(url: str) -> urllib.request.Request:
    """A request for the public URL, with the URL's credentials, if any, as a basic-auth header."""
    parts = urllib.parse.urlsplit(url)
    request = urllib.request.Request(public_url(url))
    if parts.username is not None:
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        # Unredirected: a redirect to another host must not receive the password.
        request.add_unredirected_header("Authorization", f"Basic {base64.b64encode(pair.encode()).decode()}")
    return request
