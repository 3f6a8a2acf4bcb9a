"""Building blocks shared by task heads: a BiLSTM that skips padding, and masked pooling."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


# Rows are run in groups of similar length, each padded to at most this many times its real steps: more groups
# mean more, smaller LSTM calls; fewer, more steps spent on padding.
GROUP_MAX_FILL = 1.25


class MaskedBiLSTM(nn.LSTM):
    """A batch-first bidirectional LSTM over padded sequences: (B, T, D), (B, T) mask -> (B, T, 2H).

    The backward direction starts at each sequence's own last token rather than at the padding. It subclasses
    nn.LSTM, so its parameters are an LSTM's, by the same names.

    It computes what nn.LSTM computes on the packed batch, differently: rows of similar length are grouped
    (`length_groups`), and each direction of each layer is one LSTM call over a group's padded tensor, the
    backward one over each row reversed within its own length (padding after a row's last step never reaches its
    real steps). nn.LSTM's packed backward pass slices the whole packed input once per time step (a zero-filled
    copy of it each time); these calls run the fused kernel, which bf16 autocast also speeds up. The dropout
    between layers is drawn on the packed layout, so a seed draws nn.LSTM's very masks.
    """

    def __init__(self, input_dim: int, hidden_dim: int, layers: int, dropout: float):
        super().__init__(input_dim, hidden_dim, layers, batch_first=True, bidirectional=True,
                         dropout=dropout if layers > 1 else 0.0)
        self.output_dim = 2 * hidden_dim

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.device.type == "meta":  # the device-placement tests: no values to pack by, same shapes
            return super().forward(inputs)[0]
        lengths = mask.sum(dim=1).clamp(min=1)
        groups = length_groups(lengths.tolist(), GROUP_MAX_FILL)
        rows = [torch.tensor(group, device=inputs.device) for group in groups]
        order = torch.argsort(torch.cat(rows))  # from the groups' concatenated rows back to the batch's
        reversals = [reversal_index(lengths[index], int(lengths[index].max())) for index in rows]
        layer_input = inputs
        for layer in range(self.num_layers):
            parts = [self._layer(layer_input[index, : reverse.shape[1]], reverse, layer, inputs.shape[1])
                     for index, reverse in zip(rows, reversals)]
            layer_input = torch.cat(parts).index_select(0, order)
            if layer < self.num_layers - 1 and self.training and self.dropout:
                layer_input = packed_dropout(layer_input, lengths.cpu(), self.dropout)
        return layer_input * mask.unsqueeze(-1).to(layer_input.dtype)  # zeros at padded positions

    def _layer(self, inputs: torch.Tensor, reverse: torch.Tensor, layer: int, width: int) -> torch.Tensor:
        """Both directions of one layer over one group (G, W, D) -> (G, width, 2H), zero-padded to `width`."""
        forward = self._direction(inputs, layer, "")
        backward = reverse_rows(self._direction(reverse_rows(inputs, reverse), layer, "_reverse"), reverse)
        both = torch.cat([forward, backward], dim=-1)
        return nn.functional.pad(both, (0, 0, 0, width - both.shape[1]))

    def _direction(self, inputs: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        weights = [getattr(self, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                          "bias_hh")]
        zeros = inputs.new_zeros(1, inputs.shape[0], self.hidden_size)
        return torch._VF.lstm(inputs, (zeros, zeros), weights, True, 1, 0.0, self.training, False, True)[0]


def length_groups(lengths: list[int], max_fill: float) -> list[list[int]]:
    """Row indices in groups of similar length, longest first: a group grows while its padded size (rows x its
    longest) stays within `max_fill` times its real steps."""
    order = sorted(range(len(lengths)), key=lambda row: -lengths[row])
    groups: list[list[int]] = []
    real = 0
    for row in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_fill * (real + lengths[row]):
            groups[-1].append(row)
            real += lengths[row]
        else:
            groups.append([row])
            real = lengths[row]
    return groups


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
