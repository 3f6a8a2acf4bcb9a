"""Behaviour of the biLM that the upstream fixtures do not pin down: stateless invariances, edge cases
(long tokens, empty sentences, very long sentences, non-ASCII text, bad input), trainable/frozen
parts, gradients and the token-type cache."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from elmo_bench.elmo import batch_to_ids

P = 16  # fixture projection dim: the forward half of a layer is [:P], the backward half [P:]


def assert_close(actual, expected, atol, rtol):
    # numpy's check: torch.testing.assert_close costs ~1.5 s of lazy imports on first use
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), atol=atol, rtol=rtol)


def run(bilm, sentences, boundaries=False):
    with torch.no_grad():
        if boundaries:
            return bilm.forward_with_boundaries(batch_to_ids(sentences))
        return bilm(batch_to_ids(sentences))


def assert_rows_equal(layers_a, row_a, layers_b, row_b, n, atol=1e-5):
    for index, (a, b) in enumerate(zip(layers_a, layers_b)):
        np.testing.assert_allclose(a[row_a, :n].numpy(), b[row_b, :n].numpy(), atol=atol, rtol=0, err_msg=f"layer {index}")


@pytest.fixture(scope="module")
def fixture_sentences(allennlp_model):
    return allennlp_model.sentences()


# ---------------------------------------------------------------------------------------------
# Stateless mode: a sentence's vectors do not depend on its batch


def test_stateless_sentence_independent_of_batch(allennlp_bilm, fixture_sentences):
    target = fixture_sentences[1][9]  # 5 tokens
    longer = [fixture_sentences[0][0], fixture_sentences[2][0]]  # 50 and 53 tokens
    n = len(target)
    alone, mask = run(allennlp_bilm, [target])
    assert mask.shape == (1, n) and mask.all()
    for order in itertools.permutations([target, *longer]):
        layers, mask = run(allennlp_bilm, list(order))
        row = [i for i, s in enumerate(order) if s is target][0]
        assert mask[row].sum().item() == n
        assert_rows_equal(alone, 0, layers, row, n)
        for layer in layers:
            assert not layer[row, n:].any()  # padding positions stay zero
    # and called again after unrelated batches
    run(allennlp_bilm, longer)
    run(allennlp_bilm, [fixture_sentences[1][3]] * 4)
    again, _ = run(allennlp_bilm, [target])
    assert_rows_equal(alone, 0, again, 0, n)


def test_train_mode_has_no_dropout(allennlp_bilm, fixture_sentences):
    batch = [fixture_sentences[0][3], fixture_sentences[1][9]]
    evaluated, _ = run(allennlp_bilm.eval(), batch)
    trained, _ = run(allennlp_bilm.train(), batch)
    for a, b in zip(evaluated, trained):
        assert_close(a, b, atol=1e-6, rtol=0)


def test_float64_model_agrees(allennlp_model, load_fixture_bilm, fixture_sentences):
    batch = [fixture_sentences[0][3], fixture_sentences[1][9]]
    single, _ = run(load_fixture_bilm(allennlp_model), batch)
    for frozen in (False, True):
        bilm = load_fixture_bilm(allennlp_model).double()
        if frozen:
            bilm.set_trainable(char_encoder=False, lstm_layers=False)
        double, _ = run(bilm, batch)
        for a, b in zip(single, double):
            assert b.dtype == torch.float64
            assert_close(a.double(), b, atol=1e-5, rtol=0)


def test_float64_after_cache_warmed(allennlp_model, load_fixture_bilm, fixture_sentences):
    batch = [fixture_sentences[0][3], fixture_sentences[1][9]]
    bilm = load_fixture_bilm(allennlp_model)
    bilm.set_trainable(char_encoder=False, lstm_layers=False)
    single, _ = run(bilm, batch)  # caches every token type of the batch, in float32
    double, _ = run(bilm.double(), batch)
    for a, b in zip(single, double):
        assert b.dtype == torch.float64
        assert_close(a.double(), b, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------
# Edge cases


def test_long_token_equals_its_48_byte_prefix(allennlp_bilm):
    long_word = "Pneumonoultramicroscopicsilicovolcanoconiosis-like-words"  # 56 bytes
    assert len(long_word.encode()) > 48
    full, _ = run(allennlp_bilm, [["A", long_word, "."], ["A", long_word[:48], "."]])
    for layer in full:
        assert_close(layer[0], layer[1], atol=0, rtol=0)
    cut, _ = run(allennlp_bilm, [["A", long_word[:47], "."]])
    assert (full[0][0, 1] - cut[0][0, 1]).abs().max() > 1e-3  # one byte less does matter


def test_empty_sentence_in_batch(allennlp_bilm, fixture_sentences):
    a, b = fixture_sentences[0][3], fixture_sentences[2][9]
    reference, _ = run(allennlp_bilm, [a, b])
    layers, mask = run(allennlp_bilm, [a, [], b])
    assert mask.shape == (3, max(len(a), len(b)))
    assert not mask[1].any()
    assert mask[0].sum().item() == len(a) and mask[2].sum().item() == len(b)
    for layer in layers:
        assert not layer[1].any()
    assert_rows_equal(reference, 0, layers, 0, len(a), atol=1e-6)
    assert_rows_equal(reference, 1, layers, 2, len(b), atol=1e-6)
    with_b, mask_b = run(allennlp_bilm, [a, [], b], boundaries=True)
    assert not mask_b[1].any() and mask_b[0].sum().item() == len(a) + 2
    for layer in with_b:
        assert not layer[1].any()


def test_batch_of_empty_sentences_unfrozen(allennlp_bilm):
    layers, mask = run(allennlp_bilm, [[], []])
    assert mask.shape == (2, 0) and [tuple(x.shape) for x in layers] == [(2, 0, 32)] * 3


def test_batch_of_empty_sentences_frozen(allennlp_bilm):
    allennlp_bilm.set_trainable(char_encoder=False, lstm_layers=False)
    layers, mask = run(allennlp_bilm, [[], []])
    assert mask.shape == (2, 0) and [tuple(x.shape) for x in layers] == [(2, 0, 32)] * 3
    run(allennlp_bilm, [["warm", "cache"]])
    layers, mask = run(allennlp_bilm, [[]])
    assert mask.shape == (1, 0)


def test_batch_of_zero_sentences(allennlp_bilm):
    layers, mask = run(allennlp_bilm, [])
    assert mask.shape == (0, 0) and [tuple(x.shape) for x in layers] == [(0, 0, 32)] * 3


def test_600_token_sentence_direction_dependencies(allennlp_bilm, fixture_sentences):
    """Forward half at position t sees <S> and tokens 0..t; backward half sees tokens t..n-1 and </S>."""
    stream = [token for column in fixture_sentences for sentence in column for token in sentence]
    sentence = stream[:600]
    layers, mask = run(allennlp_bilm, [sentence])
    assert mask.shape == (1, 600) and mask.all()
    assert all(torch.isfinite(layer).all() for layer in layers)
    prefix, _ = run(allennlp_bilm, [sentence[:10]])
    half, _ = run(allennlp_bilm, [sentence[:300]])
    suffix, _ = run(allennlp_bilm, [sentence[-10:]])
    for index in (1, 2):
        full = layers[index][0]
        # forward halves depend only on the past
        assert_close(full[:10, :P], prefix[index][0, :, :P], atol=1e-5, rtol=0)
        assert_close(full[:300, :P], half[index][0, :, :P], atol=1e-5, rtol=0)
        # backward halves depend only on the future
        assert_close(full[-10:, P:], suffix[index][0, :, P:], atol=1e-5, rtol=0)
        # ... and the other halves really see the rest of the sentence
        assert (full[:10, P:] - prefix[index][0, :, P:]).abs().max() > 1e-2
        assert (full[-10:, :P] - suffix[index][0, :, :P]).abs().max() > 1e-2
    # layer 0 is context independent
    chunks, chunk_mask = run(allennlp_bilm, [sentence[i : i + 50] for i in range(0, 600, 50)])
    assert_close(layers[0][0], chunks[0][chunk_mask], atol=1e-6, rtol=0)


NON_ASCII = [
    "Привет", "привет", "мир", "日本語", "日本", "😀", "👍🏽", "👍",
    "\u00e9", "e\u0301", "na\u00efve", "nai\u0308ve", "\ufb01", "fi", "\u200b", "\u2126", "\u03a9",
]


def test_non_ascii_tokens(allennlp_bilm):
    assert len(set(NON_ASCII)) == len(NON_ASCII)
    layers, mask = run(allennlp_bilm, [NON_ASCII, NON_ASCII[::-1][:5]])
    assert mask[0].all() and mask[1].sum().item() == 5
    assert all(torch.isfinite(layer).all() for layer in layers)
    layer0 = layers[0][0, :, :P]
    distance = (layer0[:, None] - layer0[None]).abs().amax(-1)
    off_diagonal = distance[~torch.eye(len(NON_ASCII), dtype=torch.bool)]
    assert off_diagonal.min() > 1e-4, "two different strings got the same token vector"


@pytest.mark.parametrize("shape", [(2, 3, 49), (2, 3, 51), (3, 50), (1, 2, 3, 50), (50,)])
def test_wrong_char_ids_shape_raises(allennlp_bilm, shape):
    with pytest.raises(ValueError, match="char_ids"):
        allennlp_bilm(torch.ones(shape, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# Trainable / frozen parts and gradients


def lstm_param_layers(bilm) -> dict[str, int]:
    return {f"lstm.layers.{i}.{name}": i for i, layer in enumerate(bilm.lstm.layers) for name, _ in layer.named_parameters()}


@pytest.mark.parametrize(
    "char_encoder, lstm_layers, expected_layers",
    [(False, [1], {1}), (False, [0], {0}), (True, False, set()), (True, True, {0, 1}), (False, False, set())],
)
def test_set_trainable_and_gradients(allennlp_bilm, fixture_sentences, char_encoder, lstm_layers, expected_layers):
    bilm = allennlp_bilm
    bilm.set_trainable(char_encoder=char_encoder, lstm_layers=lstm_layers)
    lstm_names = lstm_param_layers(bilm)
    expected = set()
    for name, _ in bilm.named_parameters():
        if name in lstm_names:
            if lstm_names[name] in expected_layers:
                expected.add(name)
        elif char_encoder:
            expected.add(name)
    trainable = {name for name, p in bilm.named_parameters() if p.requires_grad}
    assert trainable == expected
    if not expected:
        return
    layers, _ = bilm(batch_to_ids([fixture_sentences[0][3], fixture_sentences[1][9], ["the", "the", "the"]]))
    sum(layer.sum() for layer in layers).backward()
    with_grad = {name for name, p in bilm.named_parameters() if p.grad is not None}
    assert with_grad == expected
    for name, p in bilm.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name


def test_frozen_lstm_layer_passes_gradient_to_lower_layer(allennlp_bilm, fixture_sentences):
    """Only layer 0 trains but the loss is on the top layer: gradient flows through frozen layer 1."""
    allennlp_bilm.set_trainable(char_encoder=False, lstm_layers=[0])
    layers, _ = allennlp_bilm(batch_to_ids([fixture_sentences[1][9]]))
    layers[2][..., :P].sum().backward()
    assert allennlp_bilm.lstm.layers[0].weight_hh.grad.abs().max() > 0
    assert allennlp_bilm.lstm.layers[1].weight_hh.grad is None


# ---------------------------------------------------------------------------------------------
# Token-type cache


def test_cache_gives_same_outputs_as_uncached(allennlp_model, load_fixture_bilm, fixture_sentences):
    # tokens that differ only far into the word (a cache keyed on a prefix would mix them up)
    near = ["a" * 46 + "b", "a" * 46 + "c", "international", "internationally", "a" * 46 + "bz"]
    batch_a = [fixture_sentences[0][0], fixture_sentences[1][1], ["the", "the", ",", "the", near[0], near[2]]]
    batch_b = [fixture_sentences[0][1], fixture_sentences[0][0][:7], near]  # shares tokens with batch_a
    uncached = load_fixture_bilm(allennlp_model)  # every parameter trainable: no cross-call cache
    cached = load_fixture_bilm(allennlp_model)
    cached.set_trainable(char_encoder=False, lstm_layers=False)
    for batch in (batch_a, batch_b, batch_a):
        expected, _ = run(uncached, batch)
        actual, _ = run(cached, batch)
        for a, e in zip(actual, expected):
            assert_close(a, e, atol=1e-6, rtol=0)


def test_cache_cleared_when_weights_are_loaded(allennlp_model, bilmtf_model, load_fixture_bilm):
    from elmo_bench.elmo import load_weights

    batch = [["The", "cat", "sat", "."]]
    bilm = load_fixture_bilm(allennlp_model)
    bilm.set_trainable(char_encoder=False, lstm_layers=False)
    run(bilm, batch)  # fills the cache with the allennlp model's vectors
    load_weights(bilm, bilmtf_model.weights)
    expected, _ = run(load_fixture_bilm(bilmtf_model), batch)
    actual, _ = run(bilm, batch)
    assert_close(actual[0], expected[0], atol=1e-6, rtol=0)


def test_cache_cleared_by_load_state_dict(allennlp_model, bilmtf_model, load_fixture_bilm):
    batch = [["The", "cat", "sat", "."]]
    bilm = load_fixture_bilm(allennlp_model)
    bilm.set_trainable(char_encoder=False, lstm_layers=False)
    run(bilm, batch)
    other = load_fixture_bilm(bilmtf_model)
    bilm.load_state_dict(other.state_dict())
    expected, _ = run(other, batch)
    actual, _ = run(bilm, batch)
    assert_close(actual[0], expected[0], atol=1e-6, rtol=0)


def test_cache_gradient_through_duplicate_tokens(allennlp_bilm):
    """token_encoder (unique types + gather) vs the plain char encoder: same values, same gradients."""
    bilm = allennlp_bilm
    bilm.set_trainable(char_encoder=True, lstm_layers=False)
    ids = batch_to_ids([["the", "cat", "the", "<S>", "the", "cat", ".", "</S>", "x"]])[0]
    weights = torch.randn(ids.shape[0], P, generator=torch.Generator().manual_seed(0))
    params = list(bilm.char_encoder.parameters())

    def value_and_grads(encode):
        out = encode(ids)
        grads = torch.autograd.grad((out * weights).sum(), params)
        return out.detach(), grads

    cached_out, cached_grads = value_and_grads(bilm.token_encoder)
    plain_out, plain_grads = value_and_grads(bilm.char_encoder)
    assert_close(cached_out, plain_out, atol=1e-6, rtol=0)
    for g_cached, g_plain in zip(cached_grads, plain_grads):
        assert_close(g_cached, g_plain, atol=1e-5, rtol=1e-5)
    assert plain_grads[0].abs().max() > 0


def test_stateful_states_are_detached(allennlp_model, load_fixture_bilm, fixture_sentences):
    """Training with stateful=True: each call backpropagates on its own; no gradient crosses calls."""
    bilm = load_fixture_bilm(allennlp_model, stateful=True)
    bilm.train()
    for i in range(3):
        layers, _ = bilm(batch_to_ids([fixture_sentences[0][i], fixture_sentences[1][i]]))
        layers[2].sum().backward()  # would fail ("backward through the graph a second time") otherwise
