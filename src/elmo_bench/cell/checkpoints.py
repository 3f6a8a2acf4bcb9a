"""Reading resumable state back without trusting it.

Checkpoints hold only tensors, numbers, strings, lists, tuples and dicts, so they load with
`torch.load(weights_only=True)`: a planted or foreign file can never run code. A file that cannot be
read that way, or whose tensors do not fit the model being trained, is renamed aside
(`checkpoint.pt.rejected-<UTC time>`, kept for inspection) and the run starts from scratch.
"""
from __future__ import annotations

import logging
import pickle
import re
import time
from collections.abc import Mapping
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class CheckpointMismatch(ValueError):
    """A readable checkpoint that was not written by this run's model (another shape or key)."""


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict | None:
    """The checkpoint's contents; None when there is none or it was set aside as unreadable."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise  # the disk or the permissions, not the file's content: nothing to set aside
    except Exception as error:  # torch.load raises many types for a damaged file (EOF, zip, key, index)
        set_aside(path, unreadable_reason(error))
        return None
    if not isinstance(state, dict):
        set_aside(path, f"holds a {type(state).__name__}, not a checkpoint's dict")
        return None
    return state


def unreadable_reason(error: Exception) -> str:
    if isinstance(error, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        what = found.group(1) if found else "an object other than tensors, numbers, strings, lists and dicts"
        return f"holds a pickled object ({what}) and is not loaded"
    first_sentence = next((line for line in str(error).splitlines() if line.strip()), "").split(". ")[0]
    return f"is damaged ({type(error).__name__}: {first_sentence[:120]})"


def set_aside(path: Path, reason: str) -> Path:
    """Rename the file out of the way (never deleted: it may be evidence) and say why."""
    target = path.with_name(f"{path.name}.rejected-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    path.replace(target)
    log.warning("checkpoint %s %s; set aside as %s, starting this run afresh", path, reason, target.name)
    return target


def check_fits(saved: Mapping, current: Mapping, what: str) -> None:
    """Raise CheckpointMismatch unless `saved` has exactly the keys of `current`, each a tensor of its shape."""
    if not isinstance(saved, Mapping) or set(saved) != set(current):
        keys = set(saved) if isinstance(saved, Mapping) else set()
        odd = sorted(keys ^ set(current))[:3]
        raise CheckpointMismatch(f"{what}: the keys differ from this run's ({', '.join(map(str, odd))} ...)")
    for key, tensor in current.items():
        value = saved[key]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointMismatch(f"{what}: '{key}' is {found}, this run needs {tuple(tensor.shape)}")
