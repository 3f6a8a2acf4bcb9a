"""ScalarMix: the task-specific weighting of the biLM layers (Peters et al. 2018, eq. 1).

    ELMo = gamma * sum_j s_j * H_j,    s = softmax(w)

w starts at 0 (uniform weights) and gamma at 1. With `layer_norm=True` each H_j is first normalised
by one mean and one variance taken over all unmasked positions and features of that layer:
    H_j <- (H_j - mu_j) / sqrt(var_j + eps)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ScalarMix(nn.Module):
    def __init__(
        self,
        num_layers: int,
        layer_norm: bool = False,
        initial_weights: Sequence[float] | None = None,
        trainable: bool = True,
        eps: float = 1e-13,
    ):
        super().__init__()
        if initial_weights is not None and len(initial_weights) != num_layers:
            raise ValueError(f"initial_weights has {len(initial_weights)} values for {num_layers} layers")
        weights = torch.tensor([0.0] * num_layers if initial_weights is None else list(initial_weights),
                               dtype=torch.float32)
        self.scalar_parameters = nn.Parameter(weights, requires_grad=trainable)
        self.gamma = nn.Parameter(torch.tensor(1.0), requires_grad=trainable)
        self.num_layers = num_layers
        self.layer_norm = layer_norm
        self.eps = eps

    def normalized_weights(self) -> torch.Tensor:
        """The layer weights after the softmax (what the paper reports as s_j)."""
        return torch.softmax(self.scalar_parameters, dim=0)

    def forward(self, layers: Sequence[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        """layers: num_layers tensors (B, T, D); mask (B, T), required with layer_norm -> (B, T, D)."""
        if len(layers) != self.num_layers:
            raise ValueError(f"ScalarMix built for {self.num_layers} layers was given {len(layers)}")
        if self.layer_norm and mask is None:
            raise ValueError("ScalarMix with layer_norm needs the mask")
        weights = self.normalized_weights()
        mixed = 0.0
        for weight, layer in zip(weights, layers):
            mixed = mixed + weight * (self._normalize(layer, mask) if self.layer_norm else layer)
        return self.gamma * mixed

    def _normalize(self, layer: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(layer.dtype)
        count = keep.sum() * layer.shape[-1]
        mean = (layer * keep).sum() / count
        variance = (((layer - mean) * keep) ** 2).sum() / count
        return (layer - mean) / torch.sqrt(variance + self.eps)
