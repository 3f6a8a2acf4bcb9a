"""Building blocks shared by task heads: a BiLSTM that skips padding, and masked pooling."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


# A batch padded to at most this many times its real tokens runs each direction over the padded tensor (one fused
# LSTM call per direction and layer); a more ragged one runs packed, which computes real tokens only.
PADDED_RUN_MAX_FILL = 1.3


class MaskedBiLSTM(nn.LSTM):
    """A batch-first bidirectional LSTM over padded sequences: (B, T, D), (B, T) mask -> (B, T, 2H).

    The backward direction starts at each sequence's own last token rather than at the padding. It subclasses
    nn.LSTM, so its parameters are an LSTM's, by the same names.

    Two ways to the same outputs: packed (nn.LSTM over a PackedSequence), or, when the batch holds little padding,
    each direction of each layer as one LSTM call over the padded tensor, the backward one over each row reversed
    within its own length (padding after a row's last token never reaches its real steps). The second avoids the
    packed backward pass's per-step slicing of the whole input (a zero-filled copy of it per time step) and runs
    under bf16 autocast as one fused kernel; the dropout between layers is drawn on the packed layout in both, so a
    seed draws the same masks either way.
    """

    def __init__(self, input_dim: int, hidden_dim: int, layers: int, dropout: float):
        super().__init__(input_dim, hidden_dim, layers, batch_first=True, bidirectional=True,
                         dropout=dropout if layers > 1 else 0.0)
        self.output_dim = 2 * hidden_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.device.type == "meta":  # the device-placement tests: no values to pack by, same shapes
            return super().forward(inputs)[0]
        lengths = mask.sum(dim=1).clamp(min=1)
        if mask.numel() > PADDED_RUN_MAX_FILL * float(lengths.sum()):
            return self._packed(inputs, mask, lengths.cpu())
        return self._padded(inputs, mask, lengths)

    def _packed(self, inputs: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(super().forward(packed)[0], batch_first=True, total_length=mask.shape[1])
        return outputs  # (B, T, 2H), zeros at padded positions

    def _padded(self, inputs: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        reverse = reversal_index(lengths, mask.shape[1])  # (B, T)
        layer_input = inputs
        for layer in range(self.num_layers):
            forward = self._direction(layer_input, layer, "")
            backward = self._direction(reverse_rows(layer_input, reverse), layer, "_reverse")
            layer_input = torch.cat([forward, reverse_rows(backward, reverse)], dim=-1)
            if layer < self.num_layers - 1 and self.training and self.dropout:
                layer_input = packed_dropout(layer_input, lengths.cpu(), self.dropout)
        return layer_input * mask.unsqueeze(-1).to(layer_input.dtype)

    def _direction(self, inputs: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        weights = [getattr(self, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                          "bias_hh")]
        zeros = inputs.new_zeros(1, inputs.shape[0], self.hidden_size)
        return torch._VF.lstm(inputs, (zeros, zeros), weights, True, 1, 0.0, self.training, False, True)[0]


def reversal_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, T) positions that reverse each row's first lengths[b] steps and leave its padding in place."""
    positions = torch.arange(width, device=lengths.device).unsqueeze(0)  # (1, T)
    last = lengths.unsqueeze(1) - 1  # (B, 1)
    return torch.where(positions <= last, last - positions, positions)


def reverse_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (B, T, D) with each row's steps reordered by index (B, T) (its own inverse)."""
    return values.gather(1, index.unsqueeze(-1).expand_as(values))


def packed_dropout(values: torch.Tensor, lengths: torch.Tensor, rate: float) -> torch.Tensor:
    """Dropout on the real steps of (B, T, D), drawn in PackedSequence order: the masks nn.LSTM draws between
    layers on a packed batch (padded steps come back as zeros; nothing later reads them)."""
    packed = pack_padded_sequence(values, lengths, batch_first=True, enforce_sorted=False)
    dropped = packed._replace(data=torch.dropout(packed.data, rate, True))
    return pad_packed_sequence(dropped, batch_first=True, total_length=values.shape[1])[0]


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
