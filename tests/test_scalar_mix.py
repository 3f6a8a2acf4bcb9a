"""ScalarMix (ELMO_FORMAT.md §4.9) against an independent float64 NumPy computation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from elmo_bench.elmo import ScalarMix

B, T, D = 3, 6, 8
LENGTHS = [6, 2, 4]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    # layers with different offsets and scales, and large garbage at masked positions
    layers = [rng.normal(loc, scale, (B, T, D)).astype(np.float32) for loc, scale in [(0.5, 2.0), (-3.0, 0.3), (10.0, 5.0)]]
    mask = np.arange(T)[None, :] < np.asarray(LENGTHS)[:, None]  # (B, T)
    for layer in layers:
        layer[~mask] = rng.normal(100.0, 50.0, (int((~mask).sum()), D))
    return layers, mask


def softmax(w):
    e = np.exp(np.asarray(w, dtype=np.float64) - np.max(w))
    return e / e.sum()


def numpy_layer_norm(h, mask, eps):
    """Statistics over the unmasked (batch, time) positions and all features: taken here by selecting
    those positions (a different formulation from the masked sums of the implementation)."""
    h = h.astype(np.float64)
    real = h[mask]  # (n_real, D)
    return (h - real.mean()) / np.sqrt(real.var() + eps)


def numpy_mix(layers, w, gamma, mask=None, eps=1e-13):
    s = softmax(w)
    if mask is not None:
        layers = [numpy_layer_norm(h, mask, eps) for h in layers]
    return gamma * sum(sj * h.astype(np.float64) for sj, h in zip(s, layers))


def torch_mix(mix, layers, mask=None):
    with torch.no_grad():
        out = mix([torch.from_numpy(h) for h in layers], None if mask is None else torch.from_numpy(mask))
    return out.numpy()


def test_default_is_uniform_average(data):
    layers, mask = data
    mix = ScalarMix(3)
    np.testing.assert_allclose(mix.normalized_weights().detach().numpy(), [1 / 3] * 3, atol=1e-7)
    assert mix.gamma.item() == 1.0
    expected = (layers[0].astype(np.float64) + layers[1] + layers[2]) / 3
    np.testing.assert_allclose(torch_mix(mix, layers), expected, rtol=1e-5, atol=1e-4)
    # the mask does not matter without layer norm
    np.testing.assert_allclose(torch_mix(mix, layers, mask), expected, rtol=1e-5, atol=1e-4)


def test_initial_weights_and_gamma(data):
    layers, _ = data
    w = [0.3, -1.2, 2.0]
    mix = ScalarMix(3, initial_weights=w)
    with torch.no_grad():
        mix.gamma.fill_(0.7)
    np.testing.assert_allclose(mix.normalized_weights().detach().numpy(), softmax(w), rtol=1e-6)
    np.testing.assert_allclose(torch_mix(mix, layers), numpy_mix(layers, w, 0.7), rtol=1e-5, atol=1e-4)


def test_selecting_one_layer(data):
    layers, _ = data
    mix = ScalarMix(3, initial_weights=[-9e10, 1.0, -9e10], trainable=False)
    np.testing.assert_array_equal(torch_mix(mix, layers), layers[1])


@pytest.mark.parametrize("eps", [1e-13, 0.5])
def test_layer_norm_masked_statistics(data, eps):
    layers, mask = data
    w = [1.0, 0.0, -0.5]
    mix = ScalarMix(3, layer_norm=True, initial_weights=w, eps=eps)
    expected = numpy_mix(layers, w, 1.0, mask, eps=eps)
    np.testing.assert_allclose(torch_mix(mix, layers, mask), expected, rtol=1e-4, atol=1e-4)
    # masked positions are excluded from the statistics but still normalised (they are huge here)
    assert np.abs(expected[mask]).max() < 10 and np.abs(expected[~mask]).max() > 10


def test_layer_norm_single_layer_statistics(data):
    layers, mask = data
    mix = ScalarMix(3, layer_norm=True, initial_weights=[-9e10, -9e10, 0.0])
    out = torch_mix(mix, layers, mask)
    real = out[mask]
    np.testing.assert_allclose(real.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(real.var(), 1.0, rtol=1e-5)


def test_layer_norm_float_mask_and_constant_layer():
    layer = np.full((2, 3, 4), 5.0, dtype=np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32)
    mix = ScalarMix(1, layer_norm=True)
    out = torch_mix(mix, [layer], mask)
    assert np.isfinite(out).all() and np.abs(out).max() == 0.0  # zero variance: eps keeps it finite


def test_trainable_and_frozen(data):
    layers, mask = data
    mix = ScalarMix(3, layer_norm=True)
    assert mix.scalar_parameters.requires_grad and mix.gamma.requires_grad
    mix([torch.from_numpy(h) for h in layers], torch.from_numpy(mask)).sum().backward()
    assert mix.scalar_parameters.grad is not None and mix.gamma.grad is not None
    assert mix.scalar_parameters.grad.abs().max() > 0
    frozen = ScalarMix(3, initial_weights=[0.0, 1.0, 0.0], trainable=False)
    assert not frozen.scalar_parameters.requires_grad and not frozen.gamma.requires_grad
    assert sum(p.requires_grad for p in frozen.parameters()) == 0


def test_gradients_match_numpy(data):
    """d(sum of output)/d(gamma) = sum(mix / gamma); d/dw_j = gamma * s_j * (S_j - sum_k s_k S_k)."""
    layers, _ = data
    w = [0.2, -0.4, 0.9]
    mix = ScalarMix(3, initial_weights=w)
    mix([torch.from_numpy(h) for h in layers]).sum().backward()
    s = softmax(w)
    sums = np.array([h.astype(np.float64).sum() for h in layers])
    np.testing.assert_allclose(mix.gamma.grad.item(), (s * sums).sum(), rtol=1e-4)
    np.testing.assert_allclose(mix.scalar_parameters.grad.numpy(), s * (sums - (s * sums).sum()), rtol=1e-3, atol=1e-2)


def test_errors(data):
    layers, mask = data
    tensors = [torch.from_numpy(h) for h in layers]
    with pytest.raises(ValueError, match="3 layers"):
        ScalarMix(3)(tensors[:2])
    with pytest.raises(ValueError):
        ScalarMix(2)(tensors)
    with pytest.raises(ValueError, match="mask"):
        ScalarMix(3, layer_norm=True)(tensors)
    with pytest.raises(ValueError):
        ScalarMix(3, initial_weights=[0.0, 1.0])


def test_mix_of_bilm_layers(allennlp_bilm):
    """End to end on real biLM outputs with their mask."""
    from elmo_bench.elmo import batch_to_ids

    with torch.no_grad():
        layers, mask = allennlp_bilm(batch_to_ids([["The", "cat", "sat", "."], ["Hi"]]))
    arrays, mask_np = [h.numpy() for h in layers], mask.numpy()
    w = [0.5, -0.2, 0.1]
    mix = ScalarMix(3, layer_norm=True, initial_weights=w)
    np.testing.assert_allclose(torch_mix(mix, arrays, mask_np), numpy_mix(arrays, w, 1.0, mask_np), rtol=1e-4, atol=1e-4)
