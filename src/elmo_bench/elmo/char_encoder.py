"""Context-independent token representations: char embedding -> char-CNN -> highway -> projection.

Formulas (ELMO_FORMAT.md §4.2-4.5), for one token with character embeddings e (C, E):
    x_k  = act(max_t conv_k(e)[t])                  one block per filter width, concatenated -> (F,)
    g    = sigmoid(x W_carry + b_carry)             per highway layer; the "carry" gate gates h
    h    = relu(x W_transform + b_transform)
    x    = g * h + (1 - g) * x
    tok  = x W_proj + b_proj                        -> (P,)
The work depends only on the token's spelling, so `TokenTypeEncoder` runs it once per distinct
token in a batch, and, while the encoder is frozen, once per distinct token ever seen.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .options import CharCNNOptions


class Highway(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.transform = nn.Linear(dim, dim)
        self.carry = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, F) -> (N, F)
        gate = torch.sigmoid(self.carry(x))
        return gate * F.relu(self.transform(x)) + (1.0 - gate) * x


class CharEncoder(nn.Module):
    """(N, C) shifted char ids -> (N, P) token vectors; id 0 rows are padding tokens."""

    def __init__(self, options: CharCNNOptions, projection_dim: int):
        super().__init__()
        self.options = options
        self.char_embedding = nn.Embedding(options.n_characters, options.embedding_dim)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(options.embedding_dim, n_filters, kernel_size=width) for width, n_filters in options.filters
        )
        self.highways = nn.ModuleList(Highway(options.n_filters) for _ in range(options.n_highway))
        self.projection = nn.Linear(options.n_filters, projection_dim)
        self.activation = torch.tanh if options.activation == "tanh" else F.relu

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        chars = self.char_embedding(char_ids).transpose(1, 2)  # (N, E, C)
        # The activation is monotone, so applying it after the max-pool gives the same result, cheaper.
        # max, not amax: amax's backward spreads the gradient over ties and trains 12% slower.
        pooled = [conv(chars).max(dim=-1).values for conv in self.convolutions]
        x = self.activation(torch.cat(pooled, dim=-1))  # (N, F)
        for highway in self.highways:
            x = highway(x)
        return self.projection(x)


class TokenTypeEncoder(nn.Module):
    """Runs `CharEncoder` once per distinct token type.

    Within a batch, duplicate tokens share one computation (gradients flow through the shared row).
    While every encoder parameter is frozen and the module is in eval mode, results are also kept across
    calls in a table keyed by the token's char ids. The table is dropped whenever the weights may have
    changed: on loading weights or a state dict, on a dtype or device move, and on any call with a
    trainable encoder. Training never reads the table: a row's last bits depend on the batch it was
    computed in, so a run resumed from a checkpoint (with an empty table) would drift from one that
    was never interrupted (fine-tuning with gradual unfreezing trains above a frozen encoder).
    """

    def __init__(self, encoder: CharEncoder):
        super().__init__()
        self.encoder = encoder
        self._rows: dict[bytes, int] = {}
        self._table: torch.Tensor | None = None
        self.encoder.register_load_state_dict_post_hook(lambda module, keys: self.clear_cache())

    def _apply(self, fn, *args, **kwargs):  # .to(), .double(), .cuda() ... all pass through here
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    def clear_cache(self) -> None:
        self._rows.clear()
        self._table = None

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.encoder.parameters())

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:  # (N, C) -> (N, P)
        if len(char_ids) == 0:
            return self.encoder(char_ids)
        types, inverse = torch.unique(char_ids, dim=0, return_inverse=True)
        if self.frozen and not self.training:
            return self._cached(types)[inverse]
        self.clear_cache()
        return self.encoder(types)[inverse]

    def _cached(self, types: torch.Tensor) -> torch.Tensor:
        keys = [row.tobytes() for row in types.cpu().numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        if missing:
            with torch.no_grad():
                fresh = self.encoder(types[missing])
            self._append(fresh, [keys[i] for i in missing])
        index = torch.tensor([self._rows[key] for key in keys], device=types.device)
        return self._table[index]

    def _append(self, fresh: torch.Tensor, keys: list[bytes]) -> None:
        if self._table is None or self._table.dtype != fresh.dtype or self._table.device != fresh.device:
            self.clear_cache()
            self._table = fresh.new_empty(0, fresh.shape[1])
        start = len(self._rows)
        if start + len(keys) > self._table.shape[0]:  # grow geometrically: amortised O(1) per type
            grown = self._table.new_empty(max(2 * self._table.shape[0], start + len(keys)), fresh.shape[1])
            grown[:start] = self._table[:start]
            self._table = grown
        self._table[start : start + len(keys)] = fresh
        self._rows.update((key, start + i) for i, key in enumerate(keys))
