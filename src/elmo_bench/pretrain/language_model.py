"""Forward and backward language models on top of the biLM, sharing one softmax (as bilm-tf does).

With boundaries, a sentence is <S> w_1 .. w_n </S> at positions 0 .. n+1. The forward half of the
top layer at position i predicts the token at i+1; the backward half at i predicts the token at i-1.

Sampled softmax (Jean et al. 2015, as in TensorFlow): K classes are drawn with replacement from a
log-uniform distribution over the frequency-ranked vocabulary, Q(k) = log((k+2)/(k+1)) / log(V+1);
each logit is corrected by -log(K Q(k)), and samples equal to the target are masked out.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..elmo import BiLM, batch_to_ids
from ..elmo.lstm import LayerState

CarriedStates = list[LayerState]  # per layer, detached: the truncated-BPTT state between windows


class BiLanguageModel(nn.Module):
    def __init__(self, bilm: BiLM, vocab_size: int, num_samples: int | None, dropout: float = 0.0):
        super().__init__()
        self.bilm = bilm
        # bilm-tf's dropout: on every LSTM layer's input and on the top layer's output before the softmax
        self.bilm.lstm.dropout = self.dropout = dropout
        dim = bilm.options.lstm.projection_dim
        self.softmax_weight = nn.Parameter(torch.randn(vocab_size, dim) / math.sqrt(dim))
        self.softmax_bias = nn.Parameter(torch.zeros(vocab_size))
        self.num_samples = num_samples if num_samples and num_samples < vocab_size else None
        ranks = torch.arange(vocab_size, dtype=torch.float64)
        log_uniform = (torch.log(ranks + 2) - torch.log(ranks + 1)) / math.log(vocab_size + 1)
        self.register_buffer("sampling_probs", log_uniform.float(), persistent=False)

    def hidden_and_targets(self, texts, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-layer states of both directions and the ids they predict -> (N, P), (N,)."""
        device = self.softmax_weight.device
        layers, mask = self.bilm.forward_with_boundaries(batch_to_ids(texts).to(device))
        top, dim = layers[-1], self.softmax_weight.shape[1]  # (B, T+2, 2P)
        targets = targets.to(device)
        valid = mask[:, 1:]  # a pair (i, i+1) is real iff position i+1 is
        forward_hidden, forward_target = top[:, :-1, :dim][valid], targets[:, 1:][valid]
        backward_hidden, backward_target = top[:, 1:, dim:][valid], targets[:, :-1][valid]
        return torch.cat([forward_hidden, backward_hidden]), torch.cat([forward_target, backward_target])

    def loss(self, texts, targets: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per predicted token, both directions (sampled while training)."""
        return self.prediction_loss(*self.hidden_and_targets(texts, targets))

    def stream_loss(self, char_ids: torch.Tensor, targets: torch.Tensor,
                    carried: CarriedStates | None) -> tuple[torch.Tensor, CarriedStates]:
        """One truncated-BPTT window: char_ids (2, B, T, 50) and targets (2, B, T), each direction's
        window in its own reading order, starting from `carried` (zero when None).

        Returns the mean loss and the detached final states to carry into the next window.
        """
        device = self.softmax_weight.device
        n_dir, batch, steps, width = char_ids.shape
        tokens = self.bilm.token_encoder(char_ids.to(device).reshape(-1, width)).view(n_dir, batch, steps, -1)
        if carried is None:
            carried = [layer.zero_state(batch, tokens) for layer in self.bilm.lstm.layers]
        mask = torch.ones(batch, steps, dtype=torch.bool, device=device)
        outputs, final = self.bilm.lstm(tokens, mask, carried)
        top = outputs[-1]
        loss = self.prediction_loss(top.reshape(-1, top.shape[-1]), targets.to(device).reshape(-1))
        return loss, [(h.detach(), c.detach()) for h, c in final]

    def prediction_loss(self, hidden: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """Mean NLL of the gold ids given top-layer states: sampled while training, else full softmax."""
        hidden = F.dropout(hidden, self.dropout, self.training)
        if self.training and self.num_samples:
            return self._sampled_loss(hidden.float(), gold)
        return F.cross_entropy(self.logits(hidden.float()), gold)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.softmax_weight.t() + self.softmax_bias

    def direction_nll(self, texts, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed full-softmax NLL of (forward, backward) and the tokens each direction predicted."""
        hidden, gold = self.hidden_and_targets(texts, targets)
        nll = F.cross_entropy(self.logits(hidden.float()), gold, reduction="none")
        half = len(gold) // 2  # the first half are the forward predictions
        return torch.stack([nll[:half].sum(), nll[half:].sum()]), half

    def _sampled_loss(self, hidden: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        samples = torch.multinomial(self.sampling_probs, self.num_samples, replacement=True)  # (K,)
        correction = torch.log(self.num_samples * self.sampling_probs)
        true_logits = (hidden * self.softmax_weight[gold]).sum(-1) + self.softmax_bias[gold] - correction[gold]
        sample_logits = hidden @ self.softmax_weight[samples].t() + self.softmax_bias[samples] - correction[samples]
        sample_logits = sample_logits.masked_fill(samples.unsqueeze(0) == gold.unsqueeze(1), -1e9)
        logits = torch.cat([true_logits.unsqueeze(1), sample_logits], dim=1)  # (N, 1+K)
        return F.cross_entropy(logits, torch.zeros_like(gold))
