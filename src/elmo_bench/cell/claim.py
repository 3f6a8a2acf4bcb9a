"""One process per cell: an exclusive claim on a cell folder, taken over when its owner is dead.

The claim is a file created with O_EXCL (atomic on local and NFS-v3+ file systems) holding the
owner's host and pid. While the owner works, a thread refreshes the file's mtime. Another process
takes the claim over when the owner is on this host and no longer running, or, for an owner on
another host, when the claim has not been refreshed for `stale_after` seconds.

Taking over is atomic: the stale claim is renamed away (of several processes judging it stale, exactly one
moves it) and is removed only if it is still the very file judged stale (same content, inode and mtime);
a newer claim moved by mistake (a rival took over first, or the owner refreshed it meanwhile) is linked
back. Only then is a new claim created, with O_EXCL as always, so two processes can never both own a cell.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CellBusy
from .layout import CLAIM_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimFile:
    """What a claim file held when it was read: takeover removes exactly this file, not a newer one."""

    content: bytes
    inode: int
    mtime_ns: int

    @classmethod
    def read(cls, path: Path) -> ClaimFile | None:
        try:
            with open(path, "rb") as handle:
                status = os.fstat(handle.fileno())
                return cls(handle.read(), status.st_ino, status.st_mtime_ns)
        except FileNotFoundError:
            return None

    def owner(self) -> dict:
        try:
            owner = json.loads(self.content)
        except ValueError:
            return {}  # half-written: judged by age alone
        return owner if isinstance(owner, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class CellLock:
    def __init__(self, folder: Path, stale_after: float = 600.0, heartbeat: float = 30.0):
        self.path = Path(folder) / CLAIM_FILE
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "CellLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._try_create():
            claim = ClaimFile.read(self.path)
            if claim is None:
                continue  # released meanwhile: try to create it again
            owner = claim.owner()
            if not self._stale(owner, claim):
                raise CellBusy(f"{self.path.parent} is being run by pid {owner.get('pid')} on"
                               f" {owner.get('host')}; leaving it to that process")
            log.warning("taking over %s from a dead run (pid %s on %s)", self.path.parent, owner.get("pid"),
                        owner.get("host"))
            self._remove_if_unchanged(claim)
        self._thread = threading.Thread(target=self._refresh, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.path.unlink(missing_ok=True)

    def _try_create(self) -> bool:
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(handle, "w") as out:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, out)
        return True

    def _stale(self, owner: dict, claim: ClaimFile) -> bool:
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            return not _alive(owner["pid"])
        return time.time() - claim.mtime_ns / 1e9 > self.stale_after

    def _remove_if_unchanged(self, stale: ClaimFile) -> None:
        aside = self.path.with_name(f"{self.path.name}.taken-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)  # atomic: of several processes taking over, one moves the file
        except FileNotFoundError:
            return  # another process moved it first
        if ClaimFile.read(aside) != stale:  # a newer claim: give it back (link never replaces a file)
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        aside.unlink()

    def _refresh(self) -> None:
        while not self._stop.wait(self.heartbeat):
            # The claim may be gone for a moment while another process checks a takeover (and puts it back).
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)
