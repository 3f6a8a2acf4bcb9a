"""The biLM shipped in models/cpu-small: the default model, offline, and what its model card says."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from elmo_bench.cli import setup
from elmo_bench.config import PROJECT_ROOT, typed
from elmo_bench.elmo import BiLM, batch_to_ids, load_bilm, read_options
from elmo_bench.cell.runner import run

from runs import conll_slice, make_config, offline_overrides

MODEL = PROJECT_ROOT / "models" / "cpu-small"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((MODEL / "model_card.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bilm():
    return load_bilm(MODEL / "options.json", MODEL / "weights.hdf5").eval()


def test_the_default_config_runs_the_shipped_model():
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        model = typed(compose("config", [])).model
    assert (model.name, model.random_weights) == ("cpu-small", False)
    assert Path(model.options_file) == MODEL / "options.json"
    assert Path(model.weight_file) == MODEL / "weights.hdf5"


def test_the_shipped_files_are_what_the_card_says(card, bilm):
    assert card["architecture"] == json.loads((MODEL / "options.json").read_text(encoding="utf-8"))
    assert sum(p.numel() for p in bilm.parameters()) == card["parameters"]
    assert (MODEL / "weights.hdf5").stat().st_size < 20 * 2**20
    # The biLM learned something: held-out perplexity well under the unigram baseline's.
    assert card["heldout_perplexity"]["mean"] < 0.5 * card["unigram_perplexity"]


WORD_GROUPS = [["Monday", "Tuesday", "Friday"], ["London", "Paris", "Berlin"], ["apple", "table"], ["ran", "walked"]]


def neighbours_in_group(bilm: BiLM, layer: int) -> int:
    """How many words' nearest neighbour (cosine, at `layer`, each word alone) is from their own group."""
    words = [w for group in WORD_GROUPS for w in group]
    group_of = {w: i for i, group in enumerate(WORD_GROUPS) for w in group}
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(bilm(batch_to_ids([[w] for w in words]))[0][layer][:, 0], dim=-1)
    similarity = (vectors @ vectors.t()).fill_diagonal_(-2)
    return sum(group_of[words[int(similarity[i].argmax())]] == group_of[w] for i, w in enumerate(words))


def test_pretraining_put_similar_words_together(bilm):
    assert neighbours_in_group(bilm, layer=1) == 10
    torch.manual_seed(0)
    untrained = BiLM(read_options(MODEL / "options.json")).eval()
    assert neighbours_in_group(untrained, layer=1) == 2


def test_a_feature_ensemble_cell_runs_offline_on_the_default_model(shared_dir, tmp_path, monkeypatch):
    root = conll_slice(shared_dir, tmp_path / "data", train=60, dev=30, test=30)
    overrides = [*offline_overrides(root, tmp_path, monkeypatch), "model=cpu-small", "task=ner",
                 "strategy=feature_ensemble", "trainer.max_epochs=1", "trainer.min_steps=0", "head.hidden_dim=16",
                 "inputs.word_dim=8"]
    result = run(make_config(overrides))
    assert result["model"] == "cpu-small" and result["status"] == "complete"
    assert len(result["scalar_mix"]["weights"]) == 3  # token layer + 2 biLSTM layers
