"""Seeded, nested training subsets for learning curves.

The subset of size n is the first n items of one permutation drawn from `subset_seed`, kept in file
order. So a smaller subset is always inside a larger one, and both strategies get the same examples.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from ..errors import DataError

T = TypeVar("T")


def subset_size(requested: float | None, pool: int) -> int:
    """Examples to use: all (None), a count (>= 1) or a fraction (< 1) of the pool."""
    if requested is None:
        return pool
    count = int(requested) if requested >= 1 else max(1, round(requested * pool))
    if count > pool:
        raise DataError(f"data.train_size={int(requested)} is larger than the training pool ({pool} examples)")
    return count


def nested_subset(pool: Sequence[T], requested: float | None, subset_seed: int) -> list[T]:
    count = subset_size(requested, len(pool))
    if count == len(pool):
        return list(pool)
    order = np.random.default_rng(subset_seed).permutation(len(pool))
    return [pool[i] for i in sorted(order[:count])]
