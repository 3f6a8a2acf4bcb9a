"""A dev split carved out of the training pool, for data that come without one.

The carve is a seeded random permutation of the pool: its first `size` items are dev, the rest train, both
in the permuted order (a pool sorted by class must not give a dev split of one class, nor batches of one).
The same pool, size and seed always give the same carve, whatever the run's seed, so every strategy and
every seed of a study is scored on the same dev examples.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from ..errors import DataError

T = TypeVar("T")


def carve_count(size: float, pool: int) -> int:
    """`size` as a count: a whole number (>= 1) as it is, a fraction (< 1) of the pool, rounded."""
    return int(size) if size >= 1 else round(size * pool)


def carve_dev(pool: Sequence[T], size: float, seed: int, what: str) -> tuple[list[T], list[T], dict]:
    """(train, dev, record of the carve); a carve that leaves either part empty is a DataError naming `what`."""
    count = carve_count(size, len(pool))
    if not 0 < count < len(pool):
        raise DataError(f"{what}: task.dev_size={size} leaves no dev or no training examples in a pool of {len(pool)}")
    order = np.random.default_rng(seed).permutation(len(pool))
    record = {"size": count, "seed": seed, "pool_size": len(pool)}
    return [pool[i] for i in order[count:]], [pool[i] for i in order[:count]], record
