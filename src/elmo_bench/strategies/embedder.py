"""The task model's input: a learned scalar mix of the biLM layers, concatenated with word embeddings.

    reps = [dropout(gamma * sum_j softmax(w)_j * H_j) ; word_embedding(token)]     (B, T, 2P + word_dim)

Where the layers H_j come from is the strategy's choice: a frozen cache (feature ensemble) or the
live biLM (fine-tuning). Everything else is shared, so the two strategies differ only in that.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

import torch
from torch import nn

from ..elmo import BiLM, ScalarMix, batch_to_ids
from ..tasks.base import Tokens

PAD, UNK = 0, 1


class LayerSource(Protocol):
    """texts -> the biLM's L+1 layers, each (B, T, 2P), and the (B, T) mask."""

    def __call__(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]: ...


class LiveLayers(nn.Module):
    """Runs the biLM on every call (its parameters belong to the task model)."""

    def __init__(self, bilm: BiLM):
        super().__init__()
        self.bilm = bilm

    def forward(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        device = next(self.bilm.parameters()).device
        return self.bilm(batch_to_ids(texts).to(device))


class WordVocabulary:
    """Words seen at least `min_count` times in the given texts; the rest map to UNK."""

    def __init__(self, texts: Iterable[Tokens], min_count: int):
        counts = Counter(token for text in texts for token in text)
        self.words = ["<pad>", "<unk>"] + sorted(w for w, c in counts.items() if c >= min_count)
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[Tokens]) -> torch.Tensor:  # (B, T) long, PAD-padded
        width = max((len(t) for t in texts), default=0)
        ids = torch.full((len(texts), width), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            ids[row, : len(text)] = torch.tensor([self.index.get(token, UNK) for token in text], dtype=torch.long)
        return ids


class ElmoEmbedder(nn.Module):
    def __init__(
        self,
        layers: LayerSource,
        num_layers: int,
        elmo_dim: int,
        vocabulary: WordVocabulary | None,
        word_dim: int,
        layer_norm: bool,
        dropout: float,
    ):
        super().__init__()
        self.layers = layers
        self.scalar_mix = ScalarMix(num_layers, layer_norm=layer_norm)
        self.dropout = nn.Dropout(dropout)
        self.vocabulary = vocabulary if word_dim else None
        self.word_embedding = nn.Embedding(len(vocabulary), word_dim, padding_idx=PAD) if self.vocabulary else None
        self.output_dim = elmo_dim + (word_dim if self.vocabulary else 0)

    def forward(self, texts: Sequence[Tokens]) -> tuple[torch.Tensor, torch.Tensor]:
        layers, mask = self.layers(texts)
        reps = self.dropout(self.scalar_mix(layers, mask))  # (B, T, 2P)
        if self.word_embedding is not None:
            words = self.vocabulary.encode(texts).to(reps.device)
            reps = torch.cat([reps, self.word_embedding(words).to(reps.dtype)], dim=-1)
        return reps, mask

    def mix_penalty(self) -> torch.Tensor:
        """sum_j w_j^2 over the pre-softmax mix weights (the L2 term of Peters et al. 2018)."""
        return (self.scalar_mix.scalar_parameters**2).sum()

    def mix_summary(self) -> dict:
        return {
            "weights": [round(w, 6) for w in self.scalar_mix.normalized_weights().tolist()],
            "gamma": round(self.scalar_mix.gamma.item(), 6),
        }
