import random

import pytest

from elmo_bench.batching import bucket_batches


def _lengths(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 40, 77, 150]) + rng.randint(0, 3) for _ in range(n)]


def _padded(batch, lengths):
    return len(batch) * max(max(lengths[i] for i in batch), 1)


@pytest.mark.parametrize("seed", [None, 0, 7])
@pytest.mark.parametrize("max_tokens", [1, 30, 100, 1000])
def test_every_index_once_and_budget(seed, max_tokens):
    lengths = _lengths()
    batches = bucket_batches(lengths, max_tokens, shuffle_seed=seed)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert batch
        # Only a sentence longer than the budget by itself may exceed it, and then it is alone.
        if _padded(batch, lengths) > max_tokens:
            assert len(batch) == 1 and max(lengths[batch[0]], 1) > max_tokens


def test_oversized_sentence_alone():
    lengths = [5, 50, 4, 6]
    batches = bucket_batches(lengths, max_tokens=12)
    assert [1] in batches
    for batch in batches:
        if 1 not in batch:
            assert _padded(batch, lengths) <= 12


def test_similar_lengths_grouped():
    lengths = [10, 1, 10, 1, 10, 1]
    batches = bucket_batches(lengths, max_tokens=30)
    assert batches == [[1, 3, 5], [0, 2, 4]]


def test_deterministic_for_seed():
    lengths = _lengths(300, seed=3)
    assert bucket_batches(lengths, 200, shuffle_seed=5) == bucket_batches(lengths, 200, shuffle_seed=5)
    assert bucket_batches(lengths, 200) == bucket_batches(lengths, 200)
    assert bucket_batches(lengths, 200, shuffle_seed=5) != bucket_batches(lengths, 200, shuffle_seed=6)


def test_empty_and_invalid():
    assert bucket_batches([], 10) == []
    assert sorted(i for b in bucket_batches([0, 0, 0], 2) for i in b) == [0, 1, 2]
    with pytest.raises(ValueError):
        bucket_batches([1, 2], 0)
    with pytest.raises(ValueError):
        bucket_batches([-1], 5)


def test_order_keys_put_sharing_items_side_by_side_within_the_budget():
    # items 0, 2, 4 share one part, 1, 3, 5 another: sorted by key, each group fills one batch
    lengths = [9, 8, 10, 8, 9, 7]
    keys = [("a", 9), ("b", 8), ("a", 10), ("b", 8), ("a", 9), ("b", 7)]
    batches = bucket_batches(lengths, max_tokens=30, order_keys=keys)
    assert batches == [[0, 4, 2], [5, 1, 3]]
    assert all(_padded(batch, lengths) <= 30 for batch in batches)
    assert bucket_batches(lengths, max_tokens=20, order_keys=keys) == [[0, 4], [2, 5], [1, 3]]  # greedy, as ever
