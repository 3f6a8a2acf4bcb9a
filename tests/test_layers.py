"""Shared head layers: the padded BiLSTM must ignore padding; masked max pooling against NumPy."""
from __future__ import annotations

import numpy as np
import torch

from elmo_bench.tasks.layers import AttentionPool, MaskedBiLSTM, masked_max_pool, masked_mean_pool


def test_padding_does_not_change_a_sequence_outputs():
    torch.manual_seed(0)
    lstm = MaskedBiLSTM(input_dim=5, hidden_dim=3, layers=2, dropout=0.0)
    lengths = [4, 2, 1]
    batch = torch.randn(3, 4, 5)
    mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]  # (3, 4)
    padded = lstm(batch, mask)
    assert padded.shape == (3, 4, 6)
    for row, n in enumerate(lengths):
        alone = torch.nn.LSTM.forward(lstm, batch[row : row + 1, :n])[0]  # the plain LSTM on the unpadded row
        torch.testing.assert_close(padded[row, :n], alone[0])
        assert not padded[row, n:].any()


def test_masked_max_pool_matches_numpy():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 5, 4)).astype(np.float32) - 10  # all negative: padding zeros would win a plain max
    lengths = [5, 2, 1]
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    expected = np.stack([vectors[row, :n].max(axis=0) for row, n in enumerate(lengths)])
    pooled = masked_max_pool(torch.from_numpy(vectors), torch.from_numpy(mask))
    np.testing.assert_allclose(pooled.numpy(), expected)


def test_masked_mean_pool_matches_numpy():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(3, 5, 4)).astype(np.float32)
    lengths = [5, 2, 1]
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    expected = np.stack([vectors[row, :n].mean(axis=0) for row, n in enumerate(lengths)])
    pooled = masked_mean_pool(torch.from_numpy(vectors), torch.from_numpy(mask))
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-6)


def test_attention_pool_matches_numpy_softmax_over_the_unmasked_positions():
    torch.manual_seed(0)
    pool = AttentionPool(dim=4)
    vectors = torch.randn(3, 5, 4)
    lengths = [5, 2, 1]
    mask = torch.arange(5)[None, :] < torch.tensor(lengths)[:, None]
    w, b = pool.score.weight.detach().numpy()[0], pool.score.bias.item()
    expected = []
    for row, n in enumerate(lengths):
        v = vectors[row, :n].numpy()
        scores = v @ w + b
        a = np.exp(scores - scores.max())
        expected.append((a / a.sum()) @ v)
    np.testing.assert_allclose(pool(vectors, mask).detach().numpy(), np.stack(expected), rtol=1e-5, atol=1e-6)
