"""Seeded, nested training (and dev) subsets for learning curves.

The subset of size n is the first n items of one permutation drawn from `subset_seed`, kept in file
order. So a smaller subset is always inside a larger one, and both strategies get the same examples.
The dev examples that select the checkpoint are drawn the same way from the dev pool (data.dev_size).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from ..errors import DataError

T = TypeVar("T")


def subset_size(requested: float | None, pool: int, key: str = "data.train_size", what: str = "training") -> int:
    """Examples to use: all (None), a count (>= 1) or a fraction (< 1) of the pool."""
    if requested is None:
        return pool
    count = int(requested) if requested >= 1 else max(1, round(requested * pool))
    if count > pool:
        raise DataError(f"{key}={int(requested)} is larger than the {what} pool ({pool} examples)")
    return count


def dev_count(dev_size: int | str | None, dev_cap: int | None, train: int, pool: int) -> int | None:
    """The dev examples data.dev_size asks for: None (the whole pool), a count, or with "train" as many as the
    training subset holds, at most data.dev_cap and at most the pool."""
    if dev_size != "train":
        return dev_size
    return min(train, pool, dev_cap or train)


def nested_subset(pool: Sequence[T], requested: float | None, subset_seed: int, key: str = "data.train_size",
                  what: str = "training") -> list[T]:
    count = subset_size(requested, len(pool), key, what)
    if count == len(pool):
        return list(pool)
    order = np.random.default_rng(subset_seed).permutation(len(pool))
    return [pool[i] for i in sorted(order[:count])]
