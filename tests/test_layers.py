"""Shared head layers: the padded BiLSTM must ignore padding; masked max pooling against NumPy."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from elmo_bench.tasks.layers import (AttentionPool, MaskedBiLSTM, length_groups, masked_max_pool,
                                     masked_mean_pool)


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


def test_the_padded_run_matches_the_packed_lstm_with_its_dropout_masks():
    """Rows run in groups of similar length, each direction one call over a padded group: the outputs and gradients
    of nn.LSTM on the packed batch, with the same dropout masks between layers from the same seed."""
    torch.manual_seed(0)
    lstm = MaskedBiLSTM(input_dim=6, hidden_dim=4, layers=2, dropout=0.5).train()
    lengths = torch.tensor([5, 5, 1, 4, 5, 2])  # two groups: the five longest, then the 1 (length_groups)
    inputs = torch.randn(6, 5, 6, requires_grad=True)
    mask = torch.arange(5)[None, :] < lengths[:, None]
    weights = torch.randn(6, 5, 8)

    def run(forward):
        torch.manual_seed(7)
        outputs = forward()
        (outputs * weights).sum().backward()
        grads = [p.grad.clone() for p in lstm.parameters()] + [inputs.grad.clone()]
        lstm.zero_grad()
        inputs.grad = None
        return outputs.detach(), grads

    def packed_reference():
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(torch.nn.LSTM.forward(lstm, packed)[0], batch_first=True, total_length=5)[0]

    outputs, grads = run(lambda: lstm(inputs, mask))
    expected, expected_grads = run(packed_reference)
    torch.testing.assert_close(outputs, expected)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)
    assert not outputs[mask.logical_not()].any()


def test_length_groups_keep_padding_within_the_fill():
    assert length_groups([5, 5, 1, 4, 5, 2], 1.25) == [[0, 1, 4, 3, 5], [2]]  # 5 x 5 = 25 <= 1.25 x 21; 30 > 27.5
    assert length_groups([3, 3, 3], 1.0) == [[0, 1, 2]]
    assert length_groups([4, 2], 1.0) == [[0], [1]]


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
