"""Pretraining: corpus quirks, vocabulary, the LM losses, resume, and the allennlp-format export."""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict

import numpy as np
import pytest
import torch

from elmo_bench.config import Precision
from elmo_bench.errors import ConfigError
from elmo_bench.elmo import batch_to_ids, load_bilm
from elmo_bench.pretrain.batches import StreamBatches
from elmo_bench.pretrain.config import LRDecay, PretrainConfig, ShapeConfig
from elmo_bench.pretrain.corpus import book_text, decode, sentences
from elmo_bench.pretrain.language_model import BiLanguageModel
from elmo_bench.pretrain.train import Pretrainer, choose_precision, learning_rate, unigram_perplexity
from elmo_bench.pretrain.vocabulary import BOS, EOS, UNK, LMVocabulary
from elmo_bench.elmo.bilm import BiLM

from runs import OpensAMarker

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


def test_stream_windows_run_forward_and_backward_through_the_concatenated_lines():
    vocab = LMVocabulary(["</S>", "<S>", "<UNK>", "a", "b"])
    batches = StreamBatches([("a", "b"), ("c",)], vocab, batch_tokens=4, steps=2, seed=0)
    assert batches.type_words == ["</S>", "<S>", "<UNK>", "a", "b", "c"]  # "c" is a type outside the softmax
    order = np.random.default_rng(0).permutation(2).tolist()
    lines = {0: [BOS, 3, 4, EOS], 1: [BOS, 5, EOS]}
    stream = [t for i in order for t in lines[i]]  # 7 tokens -> 2 rows of 3, the last token dropped
    assert batches.windows(0, 0).tolist() == [[stream[0:3], stream[3:6]],
                                              [stream[2::-1], stream[5:2:-1]]]
    assert batches.count(0) == 1  # a window needs T inputs and the next token as its last target
    assert batches.softmax_id.tolist() == [0, 1, 2, 3, 4, UNK]
    ids = batches.char_ids(np.array([[1, 5, 0]]))
    assert torch.equal(ids, batch_to_ids([["<S>", "c", "</S>"]]))


def test_carried_state_makes_two_windows_equal_one_long_one():
    torch.manual_seed(0)
    lm = BiLanguageModel(BiLM(TINY.to_options()), vocab_size=6, num_samples=None).eval()
    words = [["a", "b", "c", "d", "a", "c"], ["d", "c", "b", "a", "a", "b"]]
    ids = batch_to_ids(words)  # (2, 6, 50)
    char_ids = torch.stack([ids, ids.flip(1)])  # forward rows and the same rows read backwards
    targets = torch.randint(0, 6, (2, 2, 6))
    with torch.no_grad():
        whole, _ = lm.stream_loss(char_ids, targets, None)
        first, carried = lm.stream_loss(char_ids[:, :, :3], targets[:, :, :3], None)
        second, _ = lm.stream_loss(char_ids[:, :, 3:], targets[:, :, 3:], carried)
        restarted, _ = lm.stream_loss(char_ids[:, :, 3:], targets[:, :, 3:], None)
    assert ((first + second) / 2).item() == pytest.approx(whole.item(), abs=1e-6)
    assert abs(((first + restarted) / 2).item() - whole.item()) > 1e-4  # the carried state matters


def test_learning_rate_schedule():
    config = PretrainConfig(corpus=["x"], lr=1.0, warmup_steps=4, lr_decay=LRDecay.linear)
    # (update, share of the horizon's words seen) -> warm-up factor (update+1)/4 up to 1, times 1 - share
    cases = {(0, 0.0): 0.25, (1, 0.1): 0.5 * 0.9, (3, 0.2): 0.8, (10, 0.75): 0.25, (99, 1.0): 0.0, (99, 1.2): 0.0}
    assert [learning_rate(config, *case) for case in cases] == pytest.approx(list(cases.values()))
    constant = PretrainConfig(corpus=["x"], lr=0.5)
    assert {learning_rate(constant, step, step / 10) for step in range(10)} == {0.5}


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
    assert "one line at a time, Adam lr 0.005 (warm-up 0 steps, decay none)" in (export / "model_card.md").read_text()
    # The exported pair reads back through the public loader into the same network.
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    trained = BiLM(TINY.to_options())
    trained.load_state_dict({k[len("bilm."):]: v for k, v in checkpoint["model"].items() if k.startswith("bilm.")})
    reloaded = load_bilm(export / "options.json", export / "weights.hdf5")
    ids = batch_to_ids([["The", "cat", "sat"], ["on", "a", "mat", "today"]])
    with torch.no_grad():
        for a, b in zip(trained.eval()(ids)[0], reloaded(ids)[0]):
            assert torch.equal(a, b)


def test_truncated_bptt_pretraining_learns(tmp_path, corpus_root):
    card = Pretrainer(tiny_config(tmp_path, corpus_root, bptt_steps=10, warmup_steps=5,
                                  lr_decay=LRDecay.linear)).run()
    perplexities = [epoch["mean"] for epoch in card["history"]]
    assert perplexities == sorted(perplexities, reverse=True)
    assert perplexities[-1] < 0.6 * perplexities[0]
    assert card["training"]["sequences"] == "truncated BPTT, 10 steps"


@pytest.mark.parametrize("schedule", [{}, {"bptt_steps": 10, "warmup_steps": 5, "lr_decay": LRDecay.linear}],
                         ids=["lines", "bptt"])
def test_interrupted_pretraining_resumes_to_the_same_weights(tmp_path, corpus_root, schedule):
    straight = Pretrainer(tiny_config(tmp_path / "a", corpus_root, max_epochs=2, **schedule))
    straight.run()
    # Stopped by the time budget in the middle of epoch 1, with a BPTT state to carry on from.
    interrupted = Pretrainer(tiny_config(tmp_path / "b", corpus_root, max_epochs=2, max_train_seconds=1e-9,
                                         **schedule))
    interrupted.run()
    assert interrupted.state.epoch == 0 and interrupted.state.step == 1
    resumed = Pretrainer(tiny_config(tmp_path / "b", corpus_root, max_epochs=2, **schedule))
    assert resumed.state.step == 1
    resumed.run()
    for (name, a), b in zip(straight.lm.state_dict().items(), resumed.lm.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_planted_pickle_checkpoint_is_set_aside_unrun(tmp_path, corpus_root, caplog):
    (tmp_path / "run").mkdir()
    torch.save({"vocab": None, "state": OpensAMarker(tmp_path / "marker")}, tmp_path / "run" / "checkpoint.pt")
    fresh = Pretrainer(tiny_config(tmp_path, corpus_root))
    assert not (tmp_path / "marker").exists(), "the planted checkpoint's code ran"
    assert fresh.state.epoch == fresh.state.step == 0
    assert "checkpoint.pt holds a pickled object" in caplog.text
    assert len(list((tmp_path / "run").glob("checkpoint.pt.rejected-*"))) == 1


def test_pretrain_config_checks():
    with pytest.raises(ConfigError, match="corpus"):
        PretrainConfig(corpus=[])
    with pytest.raises(ConfigError, match="lr"):
        PretrainConfig(corpus=["x"], lr=0)
    with pytest.raises(ConfigError, match=r"config key 'name': names a folder, so it must be one name"):
        PretrainConfig(corpus=["x"], name="../elsewhere")


def test_stream_batches_count_words_not_boundaries():
    # 6 lines of 3 words -> a 30-token stream, 2 rows of 15 = 3 whole lines each; windows of T=4 read
    # positions 0..11 of a row (3 windows; the 4th would need position 16): 2 whole lines and "<S> w",
    # so 6 + 1 = 7 words per row, 14 in all, whatever the order of the lines.
    vocab = LMVocabulary(["</S>", "<S>", "<UNK>", "a", "b"])
    batches = StreamBatches([("a", "b", "c")] * 6, vocab, batch_tokens=8, steps=4, seed=3)
    lm = BiLanguageModel(BiLM(TINY.to_options()), vocab_size=len(vocab), num_samples=None)
    assert batches.count(0) == 3
    assert sum(batches.loss(lm, 0, step)[1] for step in range(3)) == 14 == batches.words(0)


def test_dropout_acts_only_while_training():
    torch.manual_seed(0)
    lm = BiLanguageModel(BiLM(TINY.to_options()), vocab_size=6, num_samples=None, dropout=0.5)
    plain = BiLanguageModel(BiLM(TINY.to_options()), vocab_size=6, num_samples=None)
    plain.load_state_dict(lm.state_dict())
    texts, targets = [("a", "b", "c")], torch.tensor([[BOS, 3, 4, 5, EOS]])
    assert lm.bilm.lstm.dropout == 0.5 and plain.bilm.lstm.dropout == 0.0
    lm.eval(), plain.eval()
    assert torch.equal(lm.loss(texts, targets), plain.loss(texts, targets))
    lm.train(), plain.train()
    assert torch.equal(plain.loss(texts, targets), plain.loss(texts, targets))  # no dropout: deterministic
    assert not torch.equal(lm.loss(texts, targets), lm.loss(texts, targets))
    # every LSTM layer's input is dropped: with the top-output dropout off, the layers still differ
    lm.dropout = 0.0
    layers, _ = lm.bilm(batch_to_ids(texts))
    assert not torch.equal(layers[1], lm.bilm(batch_to_ids(texts))[0][1])


def test_precision_null_is_bf16_on_cuda_and_fp32_on_cpu():
    config = PretrainConfig(corpus=["x"])
    assert choose_precision(config, torch.device("cuda")) == Precision.bf16
    assert choose_precision(config, torch.device("cpu")) == Precision.fp32
    with pytest.raises(ConfigError, match="precision"):
        choose_precision(PretrainConfig(corpus=["x"], precision=Precision.fp16), torch.device("cpu"))


def test_bf16_autocast_trains_the_stream_model(tmp_path, corpus_root):
    run = Pretrainer(tiny_config(tmp_path, corpus_root, bptt_steps=10, precision=Precision.bf16, max_tokens=2000))
    card = run.run()
    assert card["training"]["precision"] == "bf16" and 2000 <= card["training"]["tokens_seen"] < 2800
    assert math.isfinite(card["heldout_perplexity"]["mean"])


def test_token_budget_ends_the_run_where_the_decay_reaches_zero(tmp_path, corpus_root):
    run = Pretrainer(tiny_config(tmp_path, corpus_root, bptt_steps=10, lr_decay=LRDecay.linear, max_tokens=3000,
                                 eval_every_tokens=1000))
    seen = []  # (words seen before the update, its rate)
    step = run.optimizer.step
    run.optimizer.step = lambda: (seen.append((run.state.tokens_seen, run.optimizer.param_groups[0]["lr"])),
                                  step())
    card = run.run()
    assert card["training"]["decay_horizon_tokens"] == 3000 and card["training"]["epochs_completed"] == 0
    assert [lr for _, lr in seen] == pytest.approx([5e-3 * (1 - words / 3000) for words, _ in seen])
    assert seen[-1][0] < 3000 <= run.state.tokens_seen
    # one held-out score per 1,000 words crossed, each after the update that crossed it
    assert [h["tokens_seen"] // 1000 for h in card["history"]] == [1, 2, 3]
    assert card["history"][-1]["tokens_seen"] == run.state.tokens_seen


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, corpus_root):
    """A crash (kill -9 after a checkpoint) loses only the steps since it; the rerun carries on with the
    same batches, the same dropout masks and samples, and ends with the weights of a run never stopped."""
    schedule = dict(max_epochs=2, bptt_steps=10, dropout=0.1, warmup_steps=3, lr_decay=LRDecay.linear,
                    eval_every_tokens=1500, checkpoint_seconds=0.0)
    straight = Pretrainer(tiny_config(tmp_path / "a", corpus_root, **schedule))
    straight.run()
    crashing = Pretrainer(tiny_config(tmp_path / "b", corpus_root, **schedule))
    calls, step = [], crashing.optimizer.step

    def dies_on_the_fifth_update():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        step()

    crashing.optimizer.step = dies_on_the_fifth_update
    with pytest.raises(KeyboardInterrupt):
        crashing.run()
    resumed = Pretrainer(tiny_config(tmp_path / "b", corpus_root, **schedule))
    assert (resumed.state.updates, resumed.state.step) == (4, 4)
    resumed.run()
    untimed = [[{k: v for k, v in h.items() if k != "train_seconds"} for h in run.state.history]
               for run in (straight, resumed)]
    # 11,792 words in 2 epochs: 7 multiples of 1,500 crossed, and the 2 epochs' ends (5,902 and 11,792 words)
    assert untimed[0] == untimed[1] and len(untimed[0]) == 9
    for (name, a), b in zip(straight.lm.state_dict().items(), resumed.lm.state_dict().values()):
        assert torch.equal(a, b), name


def test_same_corpus_settings_give_the_same_heldout_lines_and_vocabulary(tmp_path, corpus_root):
    """Perplexities compare across shapes only on the same held-out lines with the same vocabulary."""
    small = Pretrainer(tiny_config(tmp_path / "a", corpus_root, max_tokens=1)).run()
    other = Pretrainer(tiny_config(tmp_path / "b", corpus_root, max_tokens=1, bptt_steps=10, dropout=0.1,
                                   shape=ShapeConfig(**{**asdict(TINY), "lstm_dim": 24}))).run()
    reseeded = Pretrainer(tiny_config(tmp_path / "c", corpus_root, max_tokens=1, seed=1)).run()
    assert other["corpus"]["heldout_fingerprint"] == small["corpus"]["heldout_fingerprint"]
    assert other["vocabulary"]["fingerprint"] == small["vocabulary"]["fingerprint"]
    assert reseeded["corpus"]["heldout_fingerprint"] != small["corpus"]["heldout_fingerprint"]


def _param_count(filters, lstm_dim, proj, char_dim=16, n_chars=262):
    """ELMo's parameters by formula: char embedding, convolutions, highway, projection, 2 layers x 2 directions."""
    n_filters = sum(n for _, n in filters)
    cnn = n_chars * char_dim + sum(w * char_dim * n + n for w, n in filters)
    highway = n_filters * 2 * n_filters + 2 * n_filters
    lstm = 4 * (proj * 4 * lstm_dim * 2 + 4 * lstm_dim + lstm_dim * proj)
    return cnn + highway + n_filters * proj + proj + lstm


@pytest.mark.parametrize("shape, expected", [("cpu_small", 2_996_448), ("mid", None), ("elmo_small", 13_593_312)])
def test_shape_presets(shape, expected):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from elmo_bench.config import PROJECT_ROOT
    from elmo_bench.pretrain.config import register_pretrain_schema

    register_pretrain_schema()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf" / "pretrain"), version_base="1.3"):
        config = OmegaConf.to_object(compose("config", overrides=[f"shape={shape}"]))
    shape_config = config.shape
    count = sum(p.numel() for p in BiLM(shape_config.to_options()).parameters())
    assert count == _param_count(shape_config.filters, shape_config.lstm_dim, shape_config.projection_dim)
    if expected is not None:  # cpu-small's model card; the official small ELMo's 13.6M
        assert count == expected


def test_a_resume_names_the_settings_that_changed(tmp_path, corpus_root, caplog):
    Pretrainer(tiny_config(tmp_path, corpus_root, bptt_steps=10, max_train_seconds=1e-9)).run()
    Pretrainer(tiny_config(tmp_path, corpus_root, bptt_steps=10, max_train_seconds=1e-9, max_tokens=5000))
    assert "resumed with max_tokens changed from None to 5000" in caplog.text
    assert caplog.text.count("changed from") == 1


def test_a_checkpoint_exports_while_its_run_goes_on(tmp_path, corpus_root):
    import sys

    from elmo_bench.config import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    import export_checkpoint

    run = Pretrainer(tiny_config(tmp_path, corpus_root, bptt_steps=10, max_tokens=1500))
    run.run()
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    snapshot = export_checkpoint.export(tmp_path / "run" / "checkpoint.pt", tmp_path / "snap")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before  # only read
    assert snapshot["tokens_seen"] == run.state.tokens_seen and snapshot["latest_heldout"] == run.state.history[-1]
    reloaded = load_bilm(tmp_path / "snap" / "options.json", tmp_path / "snap" / "weights.hdf5")
    ids = batch_to_ids([["The", "cat", "sat"], ["on", "a", "mat", "today"]])
    with torch.no_grad():
        for a, b in zip(run.lm.bilm.cpu().eval()(ids)[0], reloaded(ids)[0]):
            assert torch.equal(a, b)
