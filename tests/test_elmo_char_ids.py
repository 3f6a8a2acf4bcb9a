"""Character ids (ELMO_FORMAT.md §3): exact upstream values, truncation, batching, boundaries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import load_derived
from elmo_bench.elmo import BiLM, batch_to_ids, read_options, token_to_char_ids
from elmo_bench.elmo.char_ids import BOS_IDS, EOS_IDS

# Values copied from allennlp's / bilm-tf's own unit tests (shifted ids).
UPSTREAM = {
    "<S>": [259, 257, 260] + [261] * 47,
    "</S>": [259, 258, 260] + [261] * 47,
    chr(256) + "t": [259, 197, 129, 117, 260] + [261] * 45,
    "Second": [259, 84, 102, 100, 112, 111, 101, 260] + [261] * 42,
    ".": [259, 47, 260] + [261] * 47,
    "": [259, 260] + [261] * 48,
}


@pytest.mark.parametrize("token", list(UPSTREAM), ids=repr)
def test_upstream_values(token):
    assert token_to_char_ids(token) == UPSTREAM[token]


def test_boundary_constants():
    assert list(BOS_IDS) == UPSTREAM["<S>"]
    assert list(EOS_IDS) == UPSTREAM["</S>"]


def test_ordinary_token_is_shifted_utf8_bytes():
    token = "naïve€"
    expected = [259] + [b + 1 for b in token.encode("utf-8")] + [260]
    assert token_to_char_ids(token) == expected + [261] * (50 - len(expected))


def test_long_ascii_token_keeps_first_48_bytes():
    token = "abcdefghij" * 6  # 60 bytes
    ids = token_to_char_ids(token)
    assert len(ids) == 50
    assert ids == [259] + [ord(ch) + 1 for ch in token[:48]] + [260]
    assert ids == token_to_char_ids(token[:48])
    assert ids != token_to_char_ids(token[:47])
    # exactly 48 bytes is the longest token that is not cut
    assert token_to_char_ids("x" * 48) == [259] + [121] * 48 + [260]
    assert token_to_char_ids("x" * 49) == token_to_char_ids("x" * 48)


def test_multibyte_character_cut_at_byte_48():
    # 'é' = C3 A9: 47 'a' + 'é' is 49 bytes; only the lead byte C3 survives.
    assert token_to_char_ids("a" * 47 + "é") == [259] + [98] * 47 + [0xC3 + 1, 260]
    # '日' = E6 97 A5: 'a' + 16 x '日' is 49 bytes; the last character keeps E6 97.
    ids = token_to_char_ids("a" + "日" * 16)
    assert ids == [259, 98] + [0xE6 + 1, 0x97 + 1, 0xA5 + 1] * 15 + [0xE6 + 1, 0x97 + 1, 260]
    # 16 x '日' is exactly 48 bytes, 17 x is cut to the same 48
    assert token_to_char_ids("日" * 17) == token_to_char_ids("日" * 16)
    # a 4-byte emoji cut after 2 bytes: 46 'a' + 😀 (F0 9F 98 80)
    assert token_to_char_ids("a" * 46 + "😀") == [259] + [98] * 46 + [0xF0 + 1, 0x9F + 1, 260]


def test_all_ids_in_range_and_length_50():
    for token in ["a", "<S>", "</S>", "", "x" * 100, "Привет", "😀" * 20, "<UNK>"]:
        ids = token_to_char_ids(token)
        assert len(ids) == 50
        assert all(1 <= i <= 261 for i in ids)


def test_literal_boundary_strings_inside_a_sentence():
    ids = batch_to_ids([["<S>", "x", "</S>", "<s>"]])
    assert ids[0, 0].tolist() == UPSTREAM["<S>"]
    assert ids[0, 2].tolist() == UPSTREAM["</S>"]
    # only the exact spellings are special
    assert ids[0, 3].tolist() == [259, ord("<") + 1, ord("s") + 1, ord(">") + 1, 260] + [261] * 45


def test_batch_to_ids_ragged_and_empty_sentence():
    batch = [["Second", ".", ""], [], ["Second"]]
    ids = batch_to_ids(batch)
    assert ids.shape == (3, 3, 50)
    assert ids.dtype == torch.long
    assert ids[0, 0].tolist() == UPSTREAM["Second"]
    assert ids[0, 1].tolist() == UPSTREAM["."]
    assert ids[0, 2].tolist() == UPSTREAM[""]  # the empty string is a real token, not padding
    assert ids[1].eq(0).all()  # empty sentence: all padding tokens
    assert ids[2, 0].tolist() == UPSTREAM["Second"]
    assert ids[2, 1:].eq(0).all()  # padding token = 50 zeros
    real = (ids > 0).any(-1)
    assert real.tolist() == [[True, True, True], [False, False, False], [True, False, False]]


def test_batch_to_ids_only_empty_sentences():
    assert batch_to_ids([[], []]).shape == (2, 0, 50)


def test_batch_to_ids_accepts_tuples_and_rejects_strings():
    assert batch_to_ids((("a", "b"),)).shape == (1, 2, 50)
    with pytest.raises(TypeError):
        batch_to_ids(["a", "b"])
    with pytest.raises(TypeError):
        batch_to_ids("a b")


def _with_boundaries(sentences: list[list[str]]) -> np.ndarray:
    """Rebuild bilm-tf style ids (B, T+2, 50) from the upstream BOS/EOS values, independently."""
    width = max(len(s) for s in sentences) + 2
    out = np.zeros((len(sentences), width, 50), dtype=np.int64)
    for row, sentence in enumerate(sentences):
        out[row, 0] = UPSTREAM["<S>"]
        for t, token in enumerate(sentence):
            raw = list(token.encode("utf-8")[:48])
            out[row, t + 1] = [259] + [b + 1 for b in raw] + [260] + [261] * (48 - len(raw))
        out[row, len(sentence) + 1] = UPSTREAM["</S>"]
    return out


def test_against_derived_char_ids(any_model):
    derived = load_derived(any_model)
    bilm = BiLM(read_options(any_model.options))
    for i in range(10):
        batch = any_model.batch(i)
        expected = derived[f"batch{i}_char_ids"]
        assert np.array_equal(_with_boundaries(batch), expected)
        ids = batch_to_ids(batch)
        assert ids.shape == (3, expected.shape[1] - 2, 50)
        with_boundaries, mask, lengths = bilm._add_boundaries(ids)
        assert np.array_equal(with_boundaries.numpy(), expected)
        assert np.array_equal(mask.numpy(), derived[f"batch{i}_mask"])
        assert lengths.tolist() == [len(s) + 2 for s in batch]
