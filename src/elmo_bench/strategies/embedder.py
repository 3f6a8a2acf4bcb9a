"""The task model's input: a scalar mix of the encoder's layers, concatenated with word embeddings, then dropout.

    reps = dropout([gamma * sum_j s_j * H_j ; word_embedding(token)])     (B, T, D + word_dim)

This is the one place where dropout meets the encoder (`inputs.dropout`; heads never drop their input again) and
the one place where the layers and the mask are moved to the model's device. Where the layers H_j come from
is the strategy's choice (a frozen cache, the live encoder, or one then the other), and so is how they are
mixed (`LayerMix`: learned weights, fixed equal weights, or a single layer). Everything else is identical
in every strategy's arm.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..config import InputConfig
from ..elmo import ScalarMix
from ..encoders import Encoder
from ..tasks.base import Tokens

PAD, UNK = 0, 1


class LayerSource(Protocol):
    """texts -> the encoder's L+1 layers, each (B, T, D), and the (B, T) mask."""

    def __call__(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]: ...


class LiveLayers(nn.Module):
    """Runs the encoder on every call (its parameters belong to the task model). In evaluation a text repeated
    within the call (a context shared by several questions) is encoded once: the encoder is deterministic there,
    so this changes no output. Training encodes every copy, so each keeps its own dropout."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        if self.training:
            return self.encoder(texts)
        slots: dict[Tokens, int] = {}  # each distinct text -> its row in the encoder's batch
        for text in texts:
            slots.setdefault(tuple(text), len(slots))
        if len(slots) == len(texts):
            return self.encoder(texts)
        layers, mask = self.encoder(list(slots))
        index = torch.tensor([slots[tuple(text)] for text in texts], device=mask.device)
        return [layer.index_select(0, index) for layer in layers], mask.index_select(0, index)


class StagedLayers(nn.Module):
    """A frozen cache while `use_cache` is set, the live encoder after (the two_stage strategy)."""

    def __init__(self, live: LiveLayers, cached: LayerSource):
        super().__init__()
        self.live = live
        self.cached = cached
        self.use_cache = True

    def forward(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        return (self.cached if self.use_cache else self.live)(texts)


@dataclass(frozen=True)
class LayerMix:
    """How the L+1 layers become one vector (ELMo paper, Table 2 ablations)."""

    learned: bool = True  # softmax weights trained with the task; False = fixed equal weights
    layer: int | None = None  # this layer alone (0 = the bottom: ELMo's character encoder; L = the top layer)


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


class Embedder(nn.Module):
    def __init__(self, layers: LayerSource, num_layers: int, encoder_dim: int, vocabulary: WordVocabulary | None,
                 inputs: InputConfig, mix: LayerMix):
        super().__init__()
        self.layers = layers
        self.num_layers = num_layers
        self.selected = mix.layer
        self.scalar_mix = ScalarMix(num_layers if mix.layer is None else 1, layer_norm=inputs.layer_norm)
        self.scalar_mix.scalar_parameters.requires_grad_(mix.learned and mix.layer is None)
        self.dropout = nn.Dropout(inputs.dropout)
        self.vocabulary = vocabulary if inputs.word_dim else None
        self.word_embedding = (nn.Embedding(len(vocabulary), inputs.word_dim, padding_idx=PAD)
                               if self.vocabulary else None)
        self.output_dim = encoder_dim + (inputs.word_dim if self.vocabulary else 0)

    def forward(self, texts: Sequence[Tokens]) -> tuple[torch.Tensor, torch.Tensor]:
        layers, mask = self.layers(texts)
        device = self.scalar_mix.gamma.device
        layers = [layer.to(device, non_blocking=True) for layer in layers]
        mask = mask.to(device, non_blocking=True)
        if self.selected is not None:
            layers = [layers[self.selected]]
        reps = self.scalar_mix(layers, mask)  # (B, T, D)
        if self.word_embedding is not None:
            words = self.vocabulary.encode(texts).to(device, non_blocking=True)
            reps = torch.cat([reps, self.word_embedding(words).to(reps.dtype)], dim=-1)
        return self.dropout(reps), mask

    def mix_penalty(self) -> torch.Tensor:
        """sum_j w_j^2 over the pre-softmax mix weights (the L2 term of Peters et al. 2018)."""
        return (self.scalar_mix.scalar_parameters**2).sum()

    def mix_summary(self) -> dict:
        """The weight of each of the L+1 layers after the softmax, and gamma."""
        if self.selected is None:
            weights = self.scalar_mix.normalized_weights().tolist()
        else:
            weights = [float(j == self.selected) for j in range(self.num_layers)]
        return {"weights": [round(w, 6) for w in weights], "gamma": round(self.scalar_mix.gamma.item(), 6)}
