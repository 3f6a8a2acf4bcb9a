"""Hugging Face hub datasets, used when a task's local files are missing."""
from __future__ import annotations

from collections.abc import Sequence

from .errors import DataError


def load_hub_dataset(hub_id: str, tried: Sequence[str]):
    """`datasets.load_dataset(hub_id)`, or a DataError naming the local paths tried and the hub id."""
    try:
        import datasets

        return datasets.load_dataset(hub_id)
    except Exception as error:  # offline, unknown id, or a hub-side failure: all end the same way
        raise DataError(
            f"no data: local files not found ({', '.join(tried)}) and the Hugging Face dataset"
            f" '{hub_id}' could not be loaded ({type(error).__name__}: {error}). Put the files under"
            f" data.root (or $ELMO_BENCH_DATA), or run online."
        ) from None
