"""Numerical parity of the biLM.

* against the upstream TensorFlow reference outputs shipped with allennlp / bilm-tf (ground truth),
* against the derived layer-by-layer npz (for localising a mismatch; also the stateless mode),
* against an independent float64 NumPy implementation (tests/numpy_elmo.py) with random weights, for
  the options the fixtures do not cover: tanh, n_highway 0/1, no clipping, 1/3 layers, clipping that
  fires, state carry-over with changing batch sizes.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

import numpy_elmo
from conftest import TOKEN_COUNTS, load_derived
from elmo_bench.elmo import BiLM, batch_to_ids, load_weights
from elmo_bench.elmo.options import parse_options

ATOL, RTOL = 1e-6, 1e-5  # the upstream tests' tolerance


def assert_upstream_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, what
    error = np.abs(actual - expected).max() if expected.size else 0.0
    assert np.allclose(actual, expected, atol=ATOL, rtol=RTOL), f"{what}: max abs error {error:.3g}"


def read_hdf5(path) -> dict:
    weights = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, obj: weights.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return weights


# ---------------------------------------------------------------------------------------------
# Char encoder vs elmo_token_embeddings.hdf5


@pytest.fixture(scope="module")
def token_embeddings(allennlp_model):
    vocab_file = allennlp_model.directory / "vocab_test.txt"
    words = vocab_file.read_text(encoding="utf-8").split("\n")
    with h5py.File(allennlp_model.directory / "elmo_token_embeddings.hdf5", "r") as handle:
        expected = handle["embedding"][()]
    return words, expected


def test_vocab_fixture_shape(token_embeddings):
    words, expected = token_embeddings
    assert len(words) == 458 and expected.shape == (458, 16)
    assert "<S>" in words and "</S>" in words and "<UNK>" in words


def test_char_encoder_one_long_sentence(allennlp_bilm, token_embeddings):
    words, expected = token_embeddings
    with torch.no_grad():
        layers, mask = allennlp_bilm(batch_to_ids([words]))
    assert mask.shape == (1, 458) and mask.all()
    layer0 = layers[0][0].numpy()
    assert_upstream_close(layer0[:, :16], expected, "layer 0 vs elmo_token_embeddings")
    assert np.array_equal(layer0[:, 16:], layer0[:, :16])  # [tok; tok]


@pytest.mark.parametrize("chunk", [50, 7])
def test_char_encoder_arrangement_independent(allennlp_bilm, token_embeddings, chunk):
    words, expected = token_embeddings
    sentences = [words[i : i + chunk] for i in range(0, len(words), chunk)]
    with torch.no_grad():
        layers, mask = allennlp_bilm(batch_to_ids(sentences))
    rows = layers[0][mask].numpy()  # real positions, in reading order
    assert rows.shape == (458, 32)
    assert_upstream_close(rows[:, :16], expected, f"layer 0, sentences of {chunk}")
    with torch.no_grad():
        single = allennlp_bilm(batch_to_ids([words]))[0][0][0].numpy()
    np.testing.assert_allclose(rows, single, atol=1e-6, rtol=0)


def test_inserted_boundaries_equal_literal_tokens(allennlp_bilm, token_embeddings):
    words, expected = token_embeddings
    bos, eos = expected[words.index("<S>")], expected[words.index("</S>")]
    sentences = [words[i : i + 50] for i in range(0, len(words), 50)]  # last one has 8 tokens
    with torch.no_grad():
        layers, mask = allennlp_bilm.forward_with_boundaries(batch_to_ids(sentences))
    layer0 = layers[0].numpy()
    for row, sentence in enumerate(sentences):
        n = len(sentence)
        assert mask[row].sum().item() == n + 2
        assert_upstream_close(layer0[row, 0, :16], bos, f"row {row} <S>")
        assert_upstream_close(layer0[row, n + 1, :16], eos, f"row {row} </S>")
        assert np.abs(layer0[row, n + 2 :]).max(initial=0.0) == 0.0


# ---------------------------------------------------------------------------------------------
# Full biLM vs lm_embeddings_{k}.hdf5 (stateful, as upstream produced them)


def test_fixture_token_counts(any_model):
    expected = any_model.expected_top_layer()
    sentences = any_model.sentences()
    for k in range(3):
        assert [len(s) for s in sentences[k]] == TOKEN_COUNTS[k]
        assert [e.shape for e in expected[k]] == [(n, 32) for n in TOKEN_COUNTS[k]]


def test_stateful_parity_top_layer(any_model, load_fixture_bilm):
    bilm = load_fixture_bilm(any_model, stateful=True)
    expected = any_model.expected_top_layer()
    for i in range(10):
        batch = any_model.batch(i)
        with torch.no_grad():
            layers, mask = bilm(batch_to_ids(batch))
        assert layers[2].shape == (3, max(map(len, batch)), 32)
        assert mask.sum(dim=1).tolist() == [TOKEN_COUNTS[k][i] for k in range(3)]
        for k in range(3):
            n = TOKEN_COUNTS[k][i]
            assert mask[k, :n].all() and not mask[k, n:].any()
            assert_upstream_close(layers[2][k, :n].numpy(), expected[k][i], f"{any_model.name} batch {i} row {k}")
            assert np.abs(layers[2][k, n:].numpy()).max(initial=0.0) == 0.0


def test_stateful_parity_all_layers_vs_derived(any_model, load_fixture_bilm):
    derived = load_derived(any_model)
    bilm = load_fixture_bilm(any_model, stateful=True)
    for i in range(10):
        with torch.no_grad():
            layers, mask = bilm.forward_with_boundaries(batch_to_ids(any_model.batch(i)))
        assert np.array_equal(mask.numpy(), derived[f"batch{i}_mask"])
        for name, actual in zip(["layer0", "layer1_stateful", "layer2_stateful"], layers):
            np.testing.assert_allclose(
                actual.numpy(), derived[f"batch{i}_{name}"], atol=1e-5, rtol=0, err_msg=f"batch {i} {name}"
            )


def test_stateful_rows_are_independent(any_model, load_fixture_bilm):
    """Each list k run alone (batch of 1, in order) reproduces row k of the upstream batches."""
    expected = any_model.expected_top_layer()
    sentences = any_model.sentences()
    for k in range(3):
        bilm = load_fixture_bilm(any_model, stateful=True)
        for i in range(10):
            with torch.no_grad():
                top = bilm(batch_to_ids([sentences[k][i]]))[0][2][0].numpy()
            assert_upstream_close(top, expected[k][i], f"list {k} sentence {i} alone")


def test_stateful_smaller_batch_keeps_other_rows(allennlp_model, load_fixture_bilm):
    """A call with fewer rows leaves the missing rows' states untouched (ELMO_FORMAT.md §5).

    Batches 0, 1 as upstream; then rows 0-1 only with batch 2; afterwards row 2 lags one sentence
    behind: [s0[i], s1[i], s2[i-1]] for i = 3..9. Every row must still match upstream.
    """
    bilm = load_fixture_bilm(allennlp_model, stateful=True)
    expected = allennlp_model.expected_top_layer()
    s = allennlp_model.sentences()
    calls = [[(0, 0), (1, 0), (2, 0)], [(0, 1), (1, 1), (2, 1)], [(0, 2), (1, 2)]]
    calls += [[(0, i), (1, i), (2, i - 1)] for i in range(3, 10)]
    for call in calls:
        with torch.no_grad():
            top = bilm(batch_to_ids([s[k][i] for k, i in call]))[0][2].numpy()
        for row, (k, i) in enumerate(call):
            assert_upstream_close(top[row, : TOKEN_COUNTS[k][i]], expected[k][i], f"row {row}: list {k} sentence {i}")


def test_stateful_empty_row_keeps_its_state(allennlp_model, load_fixture_bilm):
    """An empty sentence has length 0 (as in bilm-tf): its row's state passes through untouched."""
    bilm = load_fixture_bilm(allennlp_model, stateful=True)
    expected = allennlp_model.expected_top_layer()
    s = allennlp_model.sentences()
    calls = [[(0, 0), (1, 0), (2, 0)], [(0, 1), None, (2, 1)], [(0, 2), (1, 1), (2, 2)]]
    for call in calls:
        with torch.no_grad():
            layers, mask = bilm(batch_to_ids([s[c[0]][c[1]] if c else [] for c in call]))
        for row, c in enumerate(call):
            if c is None:
                assert not mask[row].any() and not layers[2][row].any()
            else:
                k, i = c
                assert_upstream_close(layers[2][row, : TOKEN_COUNTS[k][i]].numpy(), expected[k][i], f"row {row}: list {k} sentence {i}")


def test_stateful_larger_batch_new_rows_start_from_zero(allennlp_model, load_fixture_bilm):
    derived = load_derived(allennlp_model)
    bilm = load_fixture_bilm(allennlp_model, stateful=True)
    expected = allennlp_model.expected_top_layer()
    s = allennlp_model.sentences()
    with torch.no_grad():
        bilm(batch_to_ids([s[0][0]]))  # one row only
        layers, _ = bilm.forward_with_boundaries(batch_to_ids(allennlp_model.batch(1)))
    top = layers[2].numpy()
    n0 = TOKEN_COUNTS[0][1]
    assert_upstream_close(top[0, 1 : n0 + 1], expected[0][1], "row 0 carried its state")
    # rows 1, 2 were never seen: zero initial state = the stateless reference
    np.testing.assert_allclose(top[1:], derived["batch1_layer2_stateless"][1:], atol=1e-5, rtol=0)


def test_reset_states_brings_back_batch0(any_model, load_fixture_bilm):
    bilm = load_fixture_bilm(any_model, stateful=True)
    expected = any_model.expected_top_layer()
    with torch.no_grad():
        for i in range(3):
            bilm(batch_to_ids(any_model.batch(i)))
        bilm.reset_states()
        top = bilm(batch_to_ids(any_model.batch(0)))[0][2].numpy()
    for k in range(3):
        assert_upstream_close(top[k, : TOKEN_COUNTS[k][0]], expected[k][0], f"after reset, row {k}")


# ---------------------------------------------------------------------------------------------
# Stateless mode


def test_stateless_parity(any_model, load_fixture_bilm):
    derived = load_derived(any_model)
    bilm = load_fixture_bilm(any_model)  # stateless is the default
    assert not bilm.stateful
    expected = any_model.expected_top_layer()
    for i in range(10):
        ids = batch_to_ids(any_model.batch(i))
        with torch.no_grad():
            layers, _ = bilm.forward_with_boundaries(ids)
            top = bilm(ids)[0][2].numpy()
        for name, actual in zip(["layer0", "layer1_stateless", "layer2_stateless"], layers):
            np.testing.assert_allclose(
                actual.numpy(), derived[f"batch{i}_{name}"], atol=1e-5, rtol=0, err_msg=f"batch {i} {name}"
            )
        for k in range(3):
            n = TOKEN_COUNTS[k][i]
            if i == 0:
                assert_upstream_close(top[k, :n], expected[k][0], f"stateless batch 0 row {k}")
            else:
                gap = np.abs(top[k, :n] - expected[k][i]).max()
                assert gap > 0.1, f"batch {i} row {k} matches the stateful reference: state was carried"


# ---------------------------------------------------------------------------------------------
# The NumPy reference itself reproduces upstream (so agreeing with it means something)


def test_numpy_reference_matches_upstream(any_model):
    options = json.loads(any_model.options.read_text(encoding="utf-8"))
    weights = numpy_elmo.as_float64(read_hdf5(any_model.weights))
    expected = any_model.expected_top_layer()
    states = [None] * 3
    for i in range(3):
        for k, sentence in enumerate(any_model.batch(i)):
            layers, states[k] = numpy_elmo.bilm_sentence(weights, options, sentence, states[k])
            np.testing.assert_allclose(layers[2][1:-1], expected[k][i], atol=5e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# Options the fixtures do not exercise: random weights vs the NumPy reference


def make_options(activation, n_highway, cell_clip, proj_clip, skip, n_layers, filters, E=3, D=12, P=5):
    lstm = {"dim": D, "projection_dim": P, "n_layers": n_layers, "use_skip_connections": skip}
    if cell_clip is not None:
        lstm["cell_clip"] = cell_clip
    if proj_clip is not None:
        lstm["proj_clip"] = proj_clip
    return {
        "char_cnn": {
            "embedding": {"dim": E},
            "filters": filters,
            "n_highway": n_highway,
            "n_characters": 262,
            "max_characters_per_token": 50,
            "activation": activation,
        },
        "lstm": lstm,
        "n_tokens_vocab": 100,  # a training leftover that must be ignored
    }


CONFIGS = {
    # tanh, no highway, no clipping (null / 0 / absent mean "no clipping")
    "tanh-hw0-noclip": make_options("tanh", 0, 0, None, True, 2, [[1, 4], [2, 5], [4, 6]]),
    "relu-hw1-noclip-noskip-3layers": make_options("relu", 1, None, 0, False, 3, [[1, 3], [3, 7]]),
    "tanh-hw1-clip-skip-3layers": make_options("tanh", 1, 0.6, 0.3, True, 3, [[2, 6], [5, 8]]),
    "relu-hw2-clip3-1layer": make_options("relu", 2, 3, 3, True, 1, [[1, 2], [2, 4], [3, 4]], P=10),
    "tanh-F-equals-P": make_options("tanh", 1, None, None, False, 2, [[1, 3], [2, 3]], P=6),
}
SENTENCES = [
    ["The", "cat", "sat", "on", "the", "mat", "."],
    ["Привет", "😀", "x" * 60, "", "naïve", "<S>", "e\u0301", "日本語"],
    [],
    ["a"],
    ["Second", "Second", "second"],
]


def build(options: dict, weights: dict, tmp_path, stateful=False) -> BiLM:
    """Write the random weights to an hdf5 file and load them the normal way."""
    path = tmp_path / "weights.hdf5"
    with h5py.File(path, "w") as handle:
        for name, value in weights.items():
            handle.create_dataset(name, data=value)
    bilm = BiLM(parse_options(options), stateful=stateful)
    load_weights(bilm, path)
    return bilm.eval()


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_random_model_matches_numpy_reference(config, tmp_path):
    options = CONFIGS[config]
    weights = numpy_elmo.random_weights(options, seed=sorted(CONFIGS).index(config))
    bilm = build(options, weights, tmp_path)
    reference = numpy_elmo.as_float64(weights)
    with torch.no_grad():
        with_b, mask_b = bilm.forward_with_boundaries(batch_to_ids(SENTENCES))
        without_b, mask = bilm(batch_to_ids(SENTENCES))
    n_layers = options["lstm"]["n_layers"] + 1
    assert len(with_b) == len(without_b) == n_layers
    width = 2 * options["lstm"]["projection_dim"]
    for row, sentence in enumerate(SENTENCES):
        expected, _ = numpy_elmo.bilm_sentence(reference, options, sentence)
        n = len(sentence)
        length = n + 2 if n else 0
        assert mask_b[row].tolist() == [t < length for t in range(mask_b.shape[1])]
        assert mask[row].tolist() == [t < n for t in range(mask.shape[1])]
        for layer in range(n_layers):
            actual = with_b[layer][row].double().numpy()
            assert actual.shape[-1] == width
            np.testing.assert_allclose(actual[:length], expected[layer], atol=1e-4, rtol=0, err_msg=f"{config} row {row} layer {layer}")
            assert not actual[length:].any()
            inner = without_b[layer][row].double().numpy()
            np.testing.assert_allclose(inner[:n], expected[layer][1:-1], atol=1e-4, rtol=0)
            assert not inner[n:].any()


def test_random_model_values_are_not_trivial():
    """The random models are in a regime where the tested options matter (guards the test above)."""
    options = CONFIGS["tanh-hw1-clip-skip-3layers"]
    weights = numpy_elmo.as_float64(numpy_elmo.random_weights(options, seed=sorted(CONFIGS).index("tanh-hw1-clip-skip-3layers")))
    clipped, _ = numpy_elmo.bilm_sentence(weights, options, SENTENCES[0])
    unclipped_options = json.loads(json.dumps(options))
    unclipped_options["lstm"].update(cell_clip=None, proj_clip=None)
    unclipped, _ = numpy_elmo.bilm_sentence(weights, unclipped_options, SENTENCES[0])
    assert np.abs(clipped[-1] - unclipped[-1]).max() > 0.1  # clipping fires
    relu_options = json.loads(json.dumps(options))
    relu_options["char_cnn"]["activation"] = "relu"
    relu, _ = numpy_elmo.bilm_sentence(weights, relu_options, SENTENCES[0])
    assert np.abs(clipped[0] - relu[0]).max() > 0.1  # tanh vs relu matters
    assert np.abs(clipped[-1]).max() > 0.3  # outputs are not vanishing


def test_random_model_stateful_changing_batch_sizes(tmp_path):
    """State carry-over per row with batches of 2, 3, 1, 3 rows vs the NumPy reference (§5)."""
    options = CONFIGS["tanh-hw1-clip-skip-3layers"]
    weights = numpy_elmo.random_weights(options, seed=11)
    bilm = build(options, weights, tmp_path, stateful=True)
    reference = numpy_elmo.as_float64(weights)
    pool = [s for s in SENTENCES if s]
    calls = [[pool[0], pool[1]], [pool[2], pool[3], pool[0]], [pool[1]], [pool[3], pool[2], pool[1]]]
    row_states: dict[int, object] = {}
    for number, call in enumerate(calls):
        with torch.no_grad():
            layers, _ = bilm.forward_with_boundaries(batch_to_ids(call))
        for row, sentence in enumerate(call):
            expected, row_states[row] = numpy_elmo.bilm_sentence(reference, options, sentence, row_states.get(row))
            for layer, values in enumerate(expected):
                actual = layers[layer][row, : len(sentence) + 2].double().numpy()
                np.testing.assert_allclose(actual, values, atol=1e-4, rtol=0, err_msg=f"call {number} row {row} layer {layer}")
