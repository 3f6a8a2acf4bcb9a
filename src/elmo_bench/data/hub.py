"""Hugging Face hub datasets: a task's data by id (`task.hub_id`, `task.hub_config`), the fallback when its
local files are missing, and extra test sets named `hub:ID[:CONFIG][@SPLIT]`.

`datasets` downloads a data set once and caches it itself (`$HF_DATASETS_CACHE`); offline, or for an id
the hub does not know, the error names the id (and the local files tried first).
"""
from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional
from unittest import mock

from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

HUB_PREFIX = "hub:"
HUB_HOST = ("huggingface.co", 443)


@dataclass(frozen=True)
class HubRef:
    """One split of a hub data set, as an extra test set names it: hub:nyu-mll/glue:sst2@validation."""

    id: str
    config: Optional[str]
    split: str

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.id}{':' + self.config if self.config else ''}@{self.split}"


def is_hub_ref(location: str) -> bool:
    return location.startswith(HUB_PREFIX)


def parse_hub_ref(location: str, key: str, default_split: str = "test") -> HubRef:
    """`hub:ID`, `hub:ID@SPLIT`, `hub:ID:CONFIG` or `hub:ID:CONFIG@SPLIT`; the split defaults to test."""
    reference, at, split = location.removeprefix(HUB_PREFIX).partition("@")
    hub_id, colon, config = reference.partition(":")
    if not hub_id or ":" in config or "@" in split or (at and not split) or (colon and not config):
        raise ConfigError(f"config key '{key}': {location!r} is not hub:ID[:CONFIG][@SPLIT]")
    return HubRef(hub_id, config or None, split or default_split)


def load_hub_dataset(hub_id: str, tried: Sequence[str], config: Optional[str] = None):
    """`datasets.load_dataset(hub_id, config)`, or a DataError naming the hub id and any local paths tried."""
    try:
        import datasets

        with offline_unless_reachable():
            return datasets.load_dataset(hub_id, config)
    except Exception as error:  # offline, unknown id, or a hub-side failure: all end the same way
        local = f"local files not found ({', '.join(tried)}) and " if tried else ""
        name = f"'{hub_id}'" + (f" (config '{config}')" if config else "")
        raise DataError(
            f"no data: {local}the Hugging Face dataset {name} could not be loaded ({type(error).__name__}:"
            f" {error}). Offline, put the files under data.root (or $ELMO_BENCH_DATA) and name them in the task's"
            " file keys; online, check the id."
        ) from None


def offline_unless_reachable():
    """Cache-only reading when the hub cannot be reached: `datasets` would otherwise retry for about half a minute,
    printing each retry's warning, before failing (or reading its cache) all the same."""
    try:
        socket.create_connection(HUB_HOST, timeout=3).close()
        return contextlib.nullcontext()
    except OSError as error:
        log.warning("the Hugging Face hub is unreachable (%s); reading its local cache only", error)
    import datasets.config
    import huggingface_hub.constants

    stack = contextlib.ExitStack()
    for module in (datasets.config, huggingface_hub.constants):
        stack.enter_context(mock.patch.object(module, "HF_HUB_OFFLINE", True))
    return stack


def load_hub_split(reference: HubRef, key: str):
    """The rows of one split of a hub data set; a split the data set lacks is a DataError naming `key`."""
    dataset = load_hub_dataset(reference.id, tried=[], config=reference.config)
    if reference.split not in dataset:
        raise DataError(f"{key}: {reference} has no split '{reference.split}' (it has {', '.join(dataset)})")
    return dataset[reference.split]
