"""The language model's output vocabulary: the most frequent words, most frequent first.

Ids: 0 = </S>, 1 = <S>, 2 = <UNK>, then words by descending count (ties alphabetical), which is
the order the log-uniform sampler of the sampled softmax assumes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

SPECIALS = ("</S>", "<S>", "<UNK>")
EOS, BOS, UNK = 0, 1, 2


class LMVocabulary:
    def __init__(self, words: Sequence[str]):
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, counts: Counter, max_size: int, min_count: int) -> "LMVocabulary":
        ranked = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                        key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *ranked[: max(0, max_size - len(SPECIALS))]])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[Sequence[str]]) -> torch.Tensor:
        """(B, T+2) ids with <S> and </S> around each text, padded with -1."""
        width = max((len(t) for t in texts), default=0) + 2
        ids = torch.full((len(texts), width), -1, dtype=torch.long)
        for row, text in enumerate(texts):
            ids[row, : len(text) + 2] = torch.tensor([BOS, *(self.index.get(w, UNK) for w in text), EOS])
        return ids

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.words) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "LMVocabulary":
        return cls(Path(path).read_text(encoding="utf-8-sig").splitlines())  # a BOM is not part of the first word


def count_words(texts: Iterable[Sequence[str]]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(text)
    return counts
