"""Building blocks shared by task heads: a BiLSTM that skips padding, and masked pooling."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class MaskedBiLSTM(nn.LSTM):
    """A batch-first bidirectional LSTM over padded sequences: (B, T, D), (B, T) mask -> (B, T, 2H).

    The sequences are packed, so the backward direction starts at each sequence's own last token
    rather than at the padding. It subclasses nn.LSTM, so its parameters are an LSTM's, by the same names.
    """

    def __init__(self, input_dim: int, hidden_dim: int, layers: int, dropout: float):
        super().__init__(input_dim, hidden_dim, layers, batch_first=True, bidirectional=True,
                         dropout=dropout if layers > 1 else 0.0)
        self.output_dim = 2 * hidden_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.device.type == "meta":  # the device-placement tests: no values to pack by, same shapes
            return super().forward(inputs)[0]
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(super().forward(packed)[0], batch_first=True, total_length=mask.shape[1])
        return outputs  # (B, T, 2H), zeros at padded positions


class TokenEncoder(nn.Module):
    """The heads' optional contextual layer: MaskedBiLSTM then dropout, or the identity with 0 layers."""

    def __init__(self, input_dim: int, hidden_dim: int, layers: int, dropout: float):
        super().__init__()
        self.lstm = MaskedBiLSTM(input_dim, hidden_dim, layers, dropout) if layers else None
        self.dropout = nn.Dropout(dropout)
        self.output_dim = self.lstm.output_dim if self.lstm is not None else input_dim

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, W)
        return vectors if self.lstm is None else self.dropout(self.lstm(vectors, mask))


def masked_max_pool(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-dimension max over the unmasked positions: (B, T, D), (B, T) -> (B, D).

    Every row needs at least one unmasked position (a row of padding only has no maximum).
    """
    padding = ~mask.unsqueeze(-1)  # (B, T, 1)
    return vectors.masked_fill(padding, torch.finfo(vectors.dtype).min).max(dim=1).values


def masked_mean_pool(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the unmasked positions: (B, T, D), (B, T) -> (B, D)."""
    weights = mask.unsqueeze(-1).to(vectors.dtype)  # (B, T, 1)
    return (vectors * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class AttentionPool(nn.Module):
    """A learned weighted mean: softmax over the unmasked positions of a linear score per vector.

        a = softmax_t(w . v_t + b)  (masked),   pooled = sum_t a_t v_t      (B, T, D) -> (B, D)
    """

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(vectors).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1)  # (B, T), zero at padding
        return torch.einsum("bt,btd->bd", weights, vectors)
