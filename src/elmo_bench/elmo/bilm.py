"""The bidirectional language model whose layers ELMo mixes (ELMO_FORMAT.md §4).

    char ids (B, T, 50) -> add <S>, </S> -> token vectors (B, T+2, P) -> L biLSTM layers
    -> L+1 layers of (B, T, 2P) without the boundaries, and the mask (B, T)

Layer 0 is the token vector twice ([tok; tok]); layer l is [forward_l; backward_l].

Stateless by default: every call starts from a zero LSTM state, so a sentence's vectors never depend
on its batch. `stateful=True` reproduces allennlp/bilm-tf, which carry each batch row's final state
into the same row of the next call (needed only to match their reference outputs).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .char_encoder import CharEncoder, TokenTypeEncoder
from .char_ids import BOS_IDS, EOS_IDS
from .lstm import LayerState, StackedBiLSTM
from .options import BiLMOptions


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[b] steps of each row of x (B, T, ...); padding stays at the end."""
    steps = x.shape[1]
    positions = torch.arange(steps, device=x.device).unsqueeze(0)  # (1, T)
    flipped = lengths.unsqueeze(1) - 1 - positions
    index = torch.where(flipped >= 0, flipped, positions)  # (B, T); its own inverse
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class BiLM(nn.Module):
    def __init__(self, options: BiLMOptions, stateful: bool = False):
        super().__init__()
        self.options = options
        self.stateful = stateful
        self.token_encoder = TokenTypeEncoder(CharEncoder(options.char_cnn, options.lstm.projection_dim))
        self.lstm = StackedBiLSTM(options.lstm)
        self.register_buffer("bos_ids", torch.tensor(BOS_IDS), persistent=False)
        self.register_buffer("eos_ids", torch.tensor(EOS_IDS), persistent=False)
        self._states: list[LayerState] | None = None

    @property
    def output_dim(self) -> int:
        return self.options.output_dim

    @property
    def num_layers(self) -> int:
        return self.options.num_layers

    @property
    def char_encoder(self) -> CharEncoder:
        return self.token_encoder.encoder

    def parts(self) -> list[nn.Module]:
        """The biLM from bottom to top: the character encoder (layer 0), then each LSTM layer. Fine-tuning
        recipes address these (discriminative rates, gradual unfreezing) without knowing what is inside."""
        return [self.char_encoder, *self.lstm.layers]

    def set_trainable(self, char_encoder: bool, lstm_layers: bool | Iterable[int]) -> None:
        """Freeze or unfreeze by part; `lstm_layers` is True/False for all or the indices to train."""
        self.char_encoder.requires_grad_(char_encoder)
        trainable = set(range(len(self.lstm.layers))) if lstm_layers is True else set(lstm_layers or ())
        for index, layer in enumerate(self.lstm.layers):
            layer.requires_grad_(index in trainable)

    def reset_states(self) -> None:
        self._states = None

    def forward(self, char_ids: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """char_ids (B, T, 50) without boundaries -> L+1 layers (B, T, 2P) and mask (B, T) bool."""
        layers, mask = self.forward_with_boundaries(char_ids)
        steps = char_ids.shape[1]
        inner_mask = mask[:, 2:]  # position t is real iff t + 2 < len, i.e. t < n_tokens
        return [layer[:, 1 : steps + 1] * inner_mask.unsqueeze(-1) for layer in layers], inner_mask

    def forward_with_boundaries(self, char_ids: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """As `forward`, but keeping the <S>/</S> positions: layers (B, T+2, 2P), mask (B, T+2).

        An empty sentence gets no boundaries: its mask is all False and its vectors are zero.
        """
        if char_ids.dim() != 3 or char_ids.shape[-1] != self.options.char_cnn.max_characters_per_token:
            raise ValueError(
                f"char_ids must have shape (batch, tokens, {self.options.char_cnn.max_characters_per_token}),"
                f" got {tuple(char_ids.shape)}"
            )
        ids, mask, lengths = self._add_boundaries(char_ids)
        tokens = ids.new_zeros(*mask.shape, self.options.lstm.projection_dim, dtype=torch.float32)
        encoded = self.token_encoder(ids[mask])
        tokens = tokens.to(encoded.dtype).masked_scatter(mask.unsqueeze(-1), encoded)  # (B, T+2, P)
        both_directions = torch.stack([tokens, reverse_padded(tokens, lengths)])  # (2, B, T+2, P)
        layer_outputs, final_states = self.lstm(both_directions, mask, self._initial_states(tokens))
        if self.stateful:
            self._store_states(final_states)
        keep = mask.unsqueeze(-1)
        layers = [torch.cat([tokens, tokens], dim=-1) * keep]
        for output in layer_outputs:
            forward, backward = output[0], reverse_padded(output[1], lengths)
            layers.append(torch.cat([forward, backward], dim=-1) * keep)
        return layers, mask

    def _add_boundaries(self, char_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, steps, width = char_ids.shape
        n_tokens = (char_ids > 0).any(dim=-1).sum(dim=1)  # (B,)
        nonempty = n_tokens > 0
        lengths = torch.where(nonempty, n_tokens + 2, 0)
        ids = char_ids.new_zeros(batch, steps + 2, width)
        ids[:, 1 : steps + 1] = char_ids
        rows = torch.arange(batch, device=char_ids.device)[nonempty]
        ids[rows, 0] = self.bos_ids
        ids[rows, n_tokens[nonempty] + 1] = self.eos_ids
        mask = torch.arange(steps + 2, device=char_ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        return ids, mask, lengths

    def _initial_states(self, like: torch.Tensor) -> list[LayerState]:
        batch = like.shape[0]
        zeros = [layer.zero_state(batch, like) for layer in self.lstm.layers]
        if not self.stateful or self._states is None:
            return zeros
        # Rows beyond the stored batch start from zero (allennlp and bilm-tf do the same).
        initial = []
        for (h0, c0), (h, c) in zip(zeros, self._states):
            rows = min(batch, h.shape[1])
            h0[:, :rows], c0[:, :rows] = h[:, :rows], c[:, :rows]
            initial.append((h0, c0))
        return initial

    def _store_states(self, final_states: list[LayerState]) -> None:
        # Rows beyond the current batch keep their stored states; no gradient crosses calls.
        previous = self._states or [(h[:, :0], c[:, :0]) for h, c in final_states]
        stored = []
        for (h, c), (old_h, old_c) in zip(final_states, previous):
            h, c = h.detach(), c.detach()
            if old_h.shape[1] > h.shape[1]:
                h = torch.cat([h, old_h[:, h.shape[1] :]], dim=1)
                c = torch.cat([c, old_c[:, c.shape[1] :]], dim=1)
            stored.append((h, c))
        self._states = stored
