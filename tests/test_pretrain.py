"""Pretraining: corpus quirks, vocabulary, the LM losses, resume, and the allennlp-format export."""
from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from elmo_bench.config import ConfigError
from elmo_bench.elmo import batch_to_ids, load_bilm
from elmo_bench.pretrain.config import PretrainConfig, ShapeConfig
from elmo_bench.pretrain.corpus import book_text, decode, sentences
from elmo_bench.pretrain.language_model import BiLanguageModel
from elmo_bench.pretrain.train import Pretrainer, unigram_perplexity
from elmo_bench.pretrain.vocabulary import BOS, EOS, UNK, LMVocabulary
from elmo_bench.elmo.bilm import BiLM

TINY = ShapeConfig(char_embedding_dim=4, filters=[[1, 4], [2, 8], [3, 8]], n_highway=1, lstm_dim=16,
                   projection_dim=8, n_layers=2)


def test_corpus_quirks(tmp_path):
    (tmp_path / "bom_crlf.txt").write_bytes("\ufeffFirst line .\r\nSecond line\r\n".encode("utf-8"))
    (tmp_path / "latin.txt").write_bytes("C\xe6sar spoke .\n".encode("latin-1"))
    (tmp_path / "book.txt").write_text(
        "Title: X\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nIt was dark .\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nLicence text\n", encoding="utf-8")
    (tmp_path / "wiki.txt").write_text(" = Title = \n a 3 @-@ year <unk> deal @,@ ok \n", encoding="utf-8")
    texts = list(sentences([tmp_path], max_tokens=3))
    assert texts == [
        ("First", "line", "."), ("Second", "line"),                     # bom_crlf.txt: BOM and CR gone
        ("It", "was", "dark"), (".",),                                  # book.txt: only the book, windows of 3
        ("Cæsar", "spoke", "."),                                        # latin.txt
        ("=", "Title", "="), ("a", "3", "-"), ("year", "deal", ","), ("ok",),  # wiki.txt marks undone
    ]
    assert decode(tmp_path / "latin.txt") == "Cæsar spoke .\n"
    assert book_text("no markers here") == "no markers here"


def test_vocabulary_order_and_encoding():
    vocab = LMVocabulary.build(Counter({"the": 5, "cat": 3, "a": 3, "rare": 1}), max_size=5, min_count=2)
    assert vocab.words == ["</S>", "<S>", "<UNK>", "the", "a"]  # by count, ties alphabetical, capped
    assert vocab.encode([["the", "dog"], []]).tolist() == [[BOS, 3, UNK, EOS], [BOS, EOS, -1, -1]]


def test_unigram_perplexity_by_hand():
    vocab = LMVocabulary(["</S>", "<S>", "<UNK>", "x"])
    # counts + 1: </S> 1+1, <S> 1+1, <UNK> 0+1, x 2+1 -> total 8
    ppl = unigram_perplexity(Counter({"x": 2}), vocab, train_sentences=1, heldout=[("x",)])
    # targets: forward x, </S>; backward <S>, x
    expected = math.exp(-(2 * math.log(3 / 8) + math.log(2 / 8) + math.log(2 / 8)) / 4)
    assert ppl == pytest.approx(expected)


def test_language_model_targets_and_full_softmax():
    torch.manual_seed(0)
    lm = BiLanguageModel(BiLM(TINY.to_options()), vocab_size=6, num_samples=None).eval()
    texts = [("a", "b", "c"), ("d",)]
    targets = torch.tensor([[BOS, 3, 4, 5, EOS], [BOS, 5, EOS, -1, -1]])
    hidden, gold = lm.hidden_and_targets(texts, targets)
    # forward: 3 + 1 predictions (tokens then </S>) and backward the same count
    assert gold.tolist() == [3, 4, 5, EOS, 5, EOS] + [BOS, 3, 4, 5, BOS, 5]
    assert hidden.shape == (12, TINY.projection_dim)
    nll, count = lm.direction_nll(texts, targets)
    logits = lm.logits(hidden)
    expected = torch.nn.functional.cross_entropy(logits, gold, reduction="none")
    assert count == 6
    assert torch.allclose(nll, torch.stack([expected[:6].sum(), expected[6:].sum()]))


def test_sampled_softmax_sampler_is_a_distribution():
    lm = BiLanguageModel(BiLM(TINY.to_options()), vocab_size=1000, num_samples=50)
    assert lm.sampling_probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert bool((lm.sampling_probs[:-1] >= lm.sampling_probs[1:]).all())  # frequent words likelier
    lm.train()
    loss = lm.loss([("a", "b")], torch.tensor([[BOS, 10, 20, EOS]]))
    assert torch.isfinite(loss) and loss.item() > 0


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory, shared_dir):
    """The first 300 sentences of the real 1B Word held-out shard."""
    lines = (shared_dir / "data/corpus/lm1b_heldout/1b_benchmark.dev.tokens").read_text(encoding="utf-8")
    root = tmp_path_factory.mktemp("corpus")
    (root / "news.txt").write_text("\n".join(lines.splitlines()[:300]) + "\n", encoding="utf-8")
    return root


def tiny_config(tmp_path, corpus_root, **overrides) -> PretrainConfig:
    values = dict(name="tiny", corpus=["news.txt"], data_root=str(corpus_root), output_dir=str(tmp_path / "run"),
                  shape=TINY, vocab_size=300, min_count=2, num_samples=100, heldout_sentences=30,
                  batch_tokens=800, lr=5e-3, max_epochs=3, checkpoint_seconds=1e9)
    values.update(overrides)
    return PretrainConfig(**values)


def test_pretrain_learns_and_exports_a_loadable_model(tmp_path, corpus_root):
    card = Pretrainer(tiny_config(tmp_path, corpus_root)).run()
    export = tmp_path / "run" / "export"
    assert {p.name for p in export.iterdir()} >= {"options.json", "weights.hdf5", "vocab.txt", "model_card.json",
                                                   "model_card.md"}
    assert card["training"]["epochs_completed"] == 3 and len(card["history"]) == 3
    perplexities = [epoch["mean"] for epoch in card["history"]]
    assert perplexities == sorted(perplexities, reverse=True)  # held-out perplexity falls every epoch
    assert perplexities[-1] < 0.6 * perplexities[0]
    assert json.loads((export / "options.json").read_text())["lstm"]["dim"] == 16
    # The exported pair reads back through the public loader into the same network.
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    trained = BiLM(TINY.to_options())
    trained.load_state_dict({k[len("bilm."):]: v for k, v in checkpoint["model"].items() if k.startswith("bilm.")})
    reloaded = load_bilm(export / "options.json", export / "weights.hdf5")
    ids = batch_to_ids([["The", "cat", "sat"], ["on", "a", "mat", "today"]])
    with torch.no_grad():
        for a, b in zip(trained.eval()(ids)[0], reloaded(ids)[0]):
            assert torch.equal(a, b)


def test_interrupted_pretraining_resumes_to_the_same_weights(tmp_path, corpus_root):
    straight = Pretrainer(tiny_config(tmp_path / "a", corpus_root, max_epochs=2))
    straight.run()
    Pretrainer(tiny_config(tmp_path / "b", corpus_root, max_epochs=1)).run()  # stops after epoch 1
    resumed = Pretrainer(tiny_config(tmp_path / "b", corpus_root, max_epochs=2))
    assert resumed.state.epoch == 1
    resumed.run()
    for (name, a), b in zip(straight.lm.state_dict().items(), resumed.lm.state_dict().values()):
        assert torch.equal(a, b), name


def test_pretrain_config_checks():
    with pytest.raises(ConfigError, match="corpus"):
        PretrainConfig(corpus=[])
    with pytest.raises(ConfigError, match="lr"):
        PretrainConfig(corpus=["x"], lr=0)
