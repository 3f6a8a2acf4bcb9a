"""Tokens to character ids, exactly as allennlp's ELMo indexer makes them (ELMO_FORMAT.md §3).

Raw ids are UTF-8 bytes 0..255 plus five marks; every id is then shifted by +1 so that 0 can mean
"no token" (a padding position is 50 zeros).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

MAX_CHARS = 50
BOS_CHAR, EOS_CHAR, BOW_CHAR, EOW_CHAR, PAD_CHAR = 256, 257, 258, 259, 260
BOS_TOKEN, EOS_TOKEN = "<S>", "</S>"


def _marked(inner: list[int]) -> list[int]:
    ids = [BOW_CHAR, *inner, EOW_CHAR]
    ids += [PAD_CHAR] * (MAX_CHARS - len(ids))
    return [i + 1 for i in ids]


BOS_IDS = _marked([BOS_CHAR])
EOS_IDS = _marked([EOS_CHAR])


def token_to_char_ids(token: str) -> list[int]:
    """The 50 shifted ids of one token; longer tokens keep their first 48 UTF-8 bytes."""
    if token == BOS_TOKEN:
        return list(BOS_IDS)
    if token == EOS_TOKEN:
        return list(EOS_IDS)
    # Lone surrogates cannot be encoded; dropping them matches "invalid code points dropped".
    encoded = token.encode("utf-8", errors="ignore")[: MAX_CHARS - 2]
    return _marked(list(encoded))


def batch_to_ids(batch: Sequence[Sequence[str]]) -> torch.Tensor:
    """Sentences (lists of tokens) -> LongTensor (batch, max_len, 50), right-padded with zero tokens.

    An empty sentence is allowed and becomes an all-zero row (its mask is all False).
    """
    if isinstance(batch, str) or any(isinstance(sentence, str) for sentence in batch):
        raise TypeError("batch_to_ids expects a list of token lists, e.g. [['I', 'saw'], ['Hi']]")
    max_len = max((len(sentence) for sentence in batch), default=0)
    ids = torch.zeros(len(batch), max_len, MAX_CHARS, dtype=torch.long)
    for row, sentence in enumerate(batch):
        if sentence:
            ids[row, : len(sentence)] = torch.tensor([token_to_char_ids(t) for t in sentence])
    return ids
