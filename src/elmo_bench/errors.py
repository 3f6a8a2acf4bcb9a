"""The errors a user can act on: each message names the file:line or the config key, the value and what was
expected, so the command line reports it in one line without a traceback (cli.py).

Encoders add their own readers' error types through `Encoder.user_errors` (ELMo's options, weights and
download errors live with the biLM in elmo/, which knows nothing of this package).
"""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Something the user can fix; the message says what and where."""


class ConfigError(UserError, ValueError):
    """A config value that is missing or out of range; the message names the key."""


class DataError(UserError, ValueError):
    """Input data that cannot be used (missing, malformed, empty, out of the task's label set)."""


class DataFormatError(DataError):
    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path, self.line = Path(path), line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


class EncoderError(UserError, ValueError):
    """An encoder that cannot be found or read; the message names the file or the config key."""


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""


class CellBusy(RuntimeError):
    """Another live process is running this cell (not an error of the user's: the launcher moves on)."""
