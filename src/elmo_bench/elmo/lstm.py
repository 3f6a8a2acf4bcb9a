"""The biLM's stacked LSTMs with cell memory, projection and clipping (ELMO_FORMAT.md §4.6).

One step of one direction, in bilm-tf's row-vector convention and gate order (i, j, f, o):
    z   = u_t W_ih + h_{t-1} W_hh + b              (4D,)
    c_t = clip(sigmoid(f + 1) * c_{t-1} + sigmoid(i) * tanh(j), cell_clip)
    h_t = clip((sigmoid(o) * tanh(c_t)) W_proj, proj_clip)          (P,)
Layer l >= 1 may add its input to its output (skip connection); the recurrent state stays h_t.

Speed: both directions run in the same loop as one batched product (direction is a leading axis of
size 2), the input part u_t W_ih is computed for all steps in one matrix product, and the outputs are
collected in a list and stacked once, so the backward pass stays linear in sentence length.
`torch.nn.LSTM(proj_size=...)` cannot be used: it has no cell or projection clipping.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .options import LSTMOptions

# Per layer: (h, c) with shapes (2, batch, P) and (2, batch, D).
LayerState = tuple[torch.Tensor, torch.Tensor]


class BiLSTMLayer(nn.Module):
    """Forward and backward LSTM of one layer; parameters carry a leading direction axis of size 2."""

    def __init__(self, input_dim: int, options: LSTMOptions):
        super().__init__()
        dim, proj = options.dim, options.projection_dim
        self.weight_ih = nn.Parameter(torch.empty(2, input_dim, 4 * dim))
        self.weight_hh = nn.Parameter(torch.empty(2, proj, 4 * dim))
        self.bias = nn.Parameter(torch.zeros(2, 4 * dim))
        self.weight_proj = nn.Parameter(torch.empty(2, dim, proj))
        forget_offset = torch.zeros(4 * dim)
        forget_offset[2 * dim : 3 * dim] = 1.0  # TF's forget_bias, not stored in the weights file
        self.register_buffer("forget_offset", forget_offset, persistent=False)
        self.cell_clip = options.cell_clip
        self.proj_clip = options.proj_clip
        self.dim, self.projection_dim = dim, proj
        bound = 1.0 / dim**0.5
        for weight in (self.weight_ih, self.weight_hh, self.weight_proj):
            nn.init.uniform_(weight, -bound, bound)

    def zero_state(self, batch_size: int, like: torch.Tensor) -> LayerState:
        h = like.new_zeros(2, batch_size, self.projection_dim)
        return h, like.new_zeros(2, batch_size, self.dim)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor, state: LayerState) -> tuple[torch.Tensor, LayerState]:
        """inputs (2, B, T, I) in each direction's own time order; mask (B, T), real tokens first.

        Returns outputs (2, B, T, P) and the state after each row's last real step.
        """
        n_dir, batch, steps, _ = inputs.shape
        bias = (self.bias + self.forget_offset).unsqueeze(1)  # (2, 1, 4D)
        projected = torch.baddbmm(bias, inputs.reshape(n_dir, batch * steps, inputs.shape[-1]), self.weight_ih)
        # unbind once: indexing step t inside the loop would make the backward pass quadratic in T
        # (each slice's gradient is a full-size zero tensor), unbind's gradient is one stack.
        projected = projected.view(n_dir, batch, steps, 4 * self.dim).unbind(dim=2)  # T x (2, B, 4D)
        step_mask = mask.t().unsqueeze(-1)  # (T, B, 1)
        h, c = state
        outputs = []
        for t in range(steps):
            gates = torch.baddbmm(projected[t], h, self.weight_hh)  # (2, B, 4D)
            i, j, f, o = gates.chunk(4, dim=-1)
            new_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(j)
            if self.cell_clip:
                new_c = new_c.clamp(-self.cell_clip, self.cell_clip)
            new_h = torch.bmm(torch.sigmoid(o) * torch.tanh(new_c), self.weight_proj)
            if self.proj_clip:
                new_h = new_h.clamp(-self.proj_clip, self.proj_clip)
            # Past a row's end the state is held, so the final state is the one after its last token.
            keep = step_mask[t]
            h, c = torch.where(keep, new_h, h), torch.where(keep, new_c, c)
            outputs.append(new_h)
        if not outputs:  # no steps at all: an empty batch
            return inputs.new_zeros(n_dir, batch, steps, self.projection_dim), (h, c)
        return torch.stack(outputs, dim=2), (h, c)


class StackedBiLSTM(nn.Module):
    """`dropout` (0 unless a pretrainer sets it, as bilm-tf trains) drops each layer's input while training; the
    dropped input also feeds the skip connection, as in bilm-tf's DropoutWrapper around its ResidualWrapper."""

    def __init__(self, options: LSTMOptions, dropout: float = 0.0):
        super().__init__()
        self.options = options
        self.dropout = dropout
        self.layers = nn.ModuleList(
            BiLSTMLayer(options.projection_dim, options) for _ in range(options.n_layers)
        )

    def forward(
        self, inputs: torch.Tensor, mask: torch.Tensor, states: list[LayerState]
    ) -> tuple[list[torch.Tensor], list[LayerState]]:
        """inputs (2, B, T, P) per-direction time order -> each layer's outputs (2, B, T, P), final states."""
        outputs, final_states = [], []
        layer_input = inputs
        for index, (layer, state) in enumerate(zip(self.layers, states)):
            if self.dropout:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
            output, final = layer(layer_input, mask, state)
            if self.options.use_skip_connections and index > 0:
                output = output + layer_input
            outputs.append(output)
            final_states.append(final)
            layer_input = output
        return outputs, final_states
