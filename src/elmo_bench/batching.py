"""Length-bucketed batching: group sentences of similar length so little work is spent on padding."""
from __future__ import annotations

import random
from collections.abc import Sequence


def bucket_batches(lengths: Sequence[int], max_tokens: int, shuffle_seed: int | None = None,
                   order_keys: Sequence | None = None) -> list[list[int]]:
    """Split sentence indices into batches of similar length under a padded-token budget.

    The indices are sorted by length and cut greedily into consecutive runs, so each batch holds
    sentences of nearly equal length. A batch's padded size is `len(batch) * max(lengths in batch)`
    (what a right-padded `(B, T_max, ...)` tensor costs); a batch is closed before that would exceed
    `max_tokens`. A sentence longer than `max_tokens` on its own gets a batch to itself. Zero-length
    sentences are charged as length 1 so that a batch of them stays bounded.

    `lengths` is whatever the caller pads, e.g. tokens per sentence (plus 2 if the model adds
    `<S>`/`</S>`). Every index `0..len(lengths)-1` appears in exactly one batch.

    `shuffle_seed=None` gives a fully deterministic order: shortest batch first, indices ascending
    among equal lengths. With a seed, ties between equal lengths are broken randomly and the batch
    order is shuffled (for training), reproducibly for the same seed.

    `order_keys` (one per index, sortable) replaces the length as the sort key, e.g. to put texts that share a
    part next to each other so that one batch holds them all; the budget still counts padded lengths.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths):
        raise ValueError("lengths must be non-negative")
    order = list(range(len(lengths)))
    rng = random.Random(shuffle_seed) if shuffle_seed is not None else None
    if rng is not None:
        rng.shuffle(order)  # the stable sort below keeps this order among equal lengths
    order.sort(key=(lambda i: lengths[i]) if order_keys is None else (lambda i: order_keys[i]))

    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        cost = max(lengths[index], 1)
        if current and (len(current) + 1) * max(longest, cost) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, cost)
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches
