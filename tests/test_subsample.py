"""Learning-curve subsets: seeded, random (not the first N), nested across sizes, identical per seed."""
from __future__ import annotations

import pytest

from elmo_bench.errors import DataError
from elmo_bench.data.subsample import dev_count, nested_subset, subset_size

POOL = list(range(14041))  # the size of CoNLL-2003's training pool


def test_smaller_subsets_lie_inside_larger_ones():
    sizes = [50, 500, 2000, 8000, 14041]
    subsets = [set(nested_subset(POOL, size, subset_seed=0)) for size in sizes]
    assert [len(s) for s in subsets] == sizes
    assert all(small <= large for small, large in zip(subsets, subsets[1:]))


def test_subsets_are_random_in_file_order_and_seeded():
    subset = nested_subset(POOL, 500, subset_seed=0)
    assert subset != POOL[:500] and subset == sorted(subset)
    assert max(subset) > 10_000  # drawn from the whole pool, not its head
    assert nested_subset(POOL, 500, subset_seed=0) == subset
    assert nested_subset(POOL, 500, subset_seed=1) != subset


def test_fractions_and_all():
    assert subset_size(0.1, 14041) == 1404
    assert subset_size(None, 14041) == 14041
    assert nested_subset(POOL, None, 0) == POOL
    assert set(nested_subset(POOL, 0.1, 0)) <= set(nested_subset(POOL, 2000, 0))


def test_a_count_larger_than_the_pool_is_an_error():
    with pytest.raises(DataError, match=r"data\.train_size=14042 is larger than the training pool \(14041 examples\)"):
        nested_subset(POOL, 14042, 0)


@pytest.mark.parametrize(("dev_size", "dev_cap", "train", "expected"), [
    (None, 1000, 100, None),  # the whole dev split
    (300, 1000, 100, 300),  # a count, whatever the training size
    ("train", 1000, 100, 100),  # as many as the training subset
    ("train", 1000, 5000, 1000),  # ... at most the cap
    ("train", None, 5000, 3250),  # ... and at most the pool
])
def test_the_dev_protocols_counts(dev_size, dev_cap, train, expected):
    assert dev_count(dev_size, dev_cap, train, pool=3250) == expected


def test_dev_subsets_are_nested_across_training_sizes():
    dev_pool = list(range(3250))  # CoNLL-2003's dev sentences
    subsets = [set(nested_subset(dev_pool, dev_count("train", 1000, n, 3250), 7)) for n in (100, 1000, 5000)]
    assert [len(s) for s in subsets] == [100, 1000, 1000]
    assert subsets[0] < subsets[1] == subsets[2]


def test_a_dev_count_larger_than_the_dev_pool_names_its_key():
    with pytest.raises(DataError, match=r"data\.dev_size=4000 is larger than the dev pool \(3250 examples\)"):
        nested_subset(list(range(3250)), 4000, 0, "data.dev_size", "dev")
