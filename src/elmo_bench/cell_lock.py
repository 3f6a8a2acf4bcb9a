"""One process per cell: an exclusive claim on a cell folder, taken over when its owner is dead.

The claim is a file created with O_EXCL (atomic on local and NFS-v3+ file systems) holding the
owner's host and pid. While the owner works, a thread refreshes the file's mtime. Another process
takes the claim over when the owner is on this host and no longer running, or, for an owner on
another host, when the claim has not been refreshed for `stale_after` seconds.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class CellBusy(RuntimeError):
    """Another live process is running this cell."""


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
        self.path = Path(folder) / ".claim"
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "CellLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._try_create():
            owner = self._owner()
            if not self._stale(owner):
                raise CellBusy(f"{self.path.parent} is being run by pid {owner.get('pid')} on"
                               f" {owner.get('host')}; leaving it to that process")
            log.warning("taking over %s from a dead run (pid %s on %s)", self.path.parent, owner.get("pid"),
                        owner.get("host"))
            self.path.unlink(missing_ok=True)
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

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # vanished or half-written: judged by age alone

    def _stale(self, owner: dict) -> bool:
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            return not _alive(owner["pid"])
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        return age > self.stale_after

    def _refresh(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return
