"""SQuAD 1.1: the reader on the real dev file, the official v1.1 EM/F1 rules, bad input, the BiDAF head, and
one-epoch runs of both strategies on a slice of the real file."""
from __future__ import annotations

import json
import logging
import re
import string
import zlib
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from elmo_bench.errors import ConfigError, DataError, DataFormatError
from elmo_bench.data.squad import OFF_TOKEN_BOUNDARIES, Answer, TokenizedContext, articles_from_rows, read_squad
from elmo_bench.data.tokenize import tokenize, tokenize_with_offsets
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.training import batches, evaluation_batches
from elmo_bench.tasks.base import Example
from elmo_bench.tasks.span_qa import (BidafHeadConfig, BidafModel, ContextSpans, OfflineSplitConfig,
                                      OfficialSplitConfig, SpanQATask, SpanQATaskConfig, TrilinearSimilarity,
                                      best_spans, deal_articles)
from elmo_bench.metrics.squad import exact_match, normalize_answer, squad_scores, token_f1

from runs import cell_predictions, make_config, offline_overrides

DEV_FILE = "squad/dev-v1.1.json"


def make_task(**overrides) -> SpanQATask:
    fields = {"name": "squad", "dataset": "squad1.1", "dev_file": DEV_FILE, "train_file": "squad/train-v1.1.json"}
    return SpanQATask(SpanQATaskConfig(**(fields | overrides)))


def write_squad(root: Path, articles: list, name: str = DEV_FILE) -> Path:
    """A SQuAD JSON file from [(title, [(context, [(id, question, [(answer_start, text), ...]), ...]), ...]), ...]."""
    data = [{"title": title, "paragraphs": [
        {"context": context, "qas": [
            {"id": qid, "question": question, "answers": [{"answer_start": s, "text": t} for s, t in answers]}
            for qid, question, answers in qas]}
        for context, qas in paragraphs]}
        for title, paragraphs in articles]
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


def one_question_article(title: str, qid: str) -> tuple:
    context = f"{title} was founded in 1900 by Ada Lovelace."
    return title, [(context, [(qid, f"Who founded {title}?", [(context.index("Ada"), "Ada Lovelace")])])]


# --- the real dev file ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_dev(shared_dir) -> dict:
    return json.loads((shared_dir / "data" / DEV_FILE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dev_splits(shared_dir):
    return make_task().load_splits(str(shared_dir / "data"), use_hub=False)


def test_real_dev_file_counts(shared_dir, raw_dev):
    articles = read_squad(shared_dir / "data" / DEV_FILE)
    assert len(articles) == 48  # MANIFEST.md: 48 articles, 2,067 paragraphs, 10,570 questions
    assert sum(len(a.paragraphs) for a in articles) == 2067
    assert sum(len(p.questions) for a in articles for p in a.paragraphs) == 10570
    raw_answers = sum(len(qa["answers"]) for a in raw_dev["data"] for p in a["paragraphs"] for qa in p["qas"])
    assert sum(len(q.answers) for a in articles for p in a.paragraphs for q in p.questions) == raw_answers


def test_article_split_of_the_real_file_never_shares_an_article(dev_splits, raw_dev):
    record = dev_splits.details["articles"]
    assert record["seed"] == 0 and record["counts"] == {"train": 32, "dev": 8, "test": 8, "unused": 0}
    titles = record["titles"]
    assert not set(titles["train"]) & set(titles["dev"]) | set(titles["train"]) & set(titles["test"])
    assert not set(titles["dev"]) & set(titles["test"])
    assert sorted(titles["train"] + titles["dev"] + titles["test"]) == sorted(a["title"] for a in raw_dev["data"])
    # Each question belongs to the split of its article (ids checked against the raw JSON).
    article_of = {qa["id"]: a["title"] for a in raw_dev["data"] for p in a["paragraphs"] for qa in p["qas"]}
    for split in ("train", "dev", "test"):
        assert {article_of[e.id] for e in getattr(dev_splits, split)} <= set(titles[split])


def test_real_file_alignment_rate_and_counts(dev_splits):
    details = dev_splits.details
    total = {key: sum(details[s][key] for s in ("train", "dev", "test"))
             for key in ("questions", "answers", "aligned", "not_on_token_boundaries", "offset_outside_context",
                         "text_mismatch", "contexts_truncated", "paragraphs")}
    assert total["questions"] == 10570 and total["paragraphs"] == 2067
    assert total["aligned"] + total["not_on_token_boundaries"] == total["answers"]
    assert total["offset_outside_context"] == total["text_mismatch"] == 0  # the official file is consistent
    assert 0.99 < total["aligned"] / total["answers"] < 1
    # Evaluation keeps every question with all its gold texts; training skips only what it counts.
    assert len(dev_splits.dev) == details["dev"]["questions"] and len(dev_splits.test) == details["test"]["questions"]
    train = details["train"]
    assert len(dev_splits.train) == train["questions"] - train["skipped_no_aligned_answer"] - train[
        "skipped_answer_beyond_truncation"]
    assert train["skipped_no_aligned_answer"] > 0


def test_real_file_truncation_is_counted(dev_splits, raw_dev):
    longer = sum(len(tokenize_with_offsets(p["context"])) > 400 for a in raw_dev["data"] for p in a["paragraphs"])
    assert longer == 16  # measured once from the file; the reader must count every one of them
    assert sum(dev_splits.details[s]["contexts_truncated"] for s in ("train", "dev", "test")) == longer
    assert dev_splits.details["max_context_tokens"] == 400
    assert max(len(e.texts[1]) for s in (dev_splits.train, dev_splits.dev, dev_splits.test) for e in s) == 400


def test_training_targets_read_the_answer_and_evaluation_keeps_every_gold(dev_splits, raw_dev):
    golds = {qa["id"]: [a["text"] for a in qa["answers"]] for a in raw_dev["data"] for p in a["paragraphs"]
             for qa in p["qas"]}
    for example in dev_splits.train:
        first, last = example.meta.answer
        assert example.meta.text(first, last) in {g.strip() for g in golds[example.id]}
    for example in dev_splits.dev + dev_splits.test:
        assert example.meta.answer is None and list(example.label) == golds[example.id]


def test_evaluation_batches_hold_the_questions_on_one_context_together(dev_splits):
    # The live encoder reads a text once a batch in evaluation: grouped by context, the dev part's 1,398
    # questions on 288 contexts cost 333 context reads; in length order the same batches would cost 822.
    task, questions = make_task(), dev_splits.dev
    def reads(batches):
        return sum(len({questions[i].texts[1] for i in batch}) for batch in batches)
    grouped = evaluation_batches(task, questions, 4000)
    assert sorted(i for batch in grouped for i in batch) == list(range(len(questions)))
    assert (len(questions), len({q.texts[1] for q in questions})) == (1398, 288)
    assert reads(grouped) == 333 and reads(batches(task, questions, 4000, None)) == 822


def test_hyphenated_word_cannot_hold_a_shorter_answer():
    context = 'the "golden anniversary" with various gold-themed initiatives'
    offsets = [(s, e) for _, s, e in tokenize_with_offsets(context)]
    tokenized = TokenizedContext(context, offsets)
    assert tokenized.token_span(Answer(context.index("gold-"), "gold")).problem == OFF_TOKEN_BOUNDARIES
    assert tokenized.token_span(Answer(context.index("gold-"), "gold-themed initiatives")).span == (7, 8)
    # A space selected around the answer is trimmed before aligning.
    assert tokenized.token_span(Answer(context.index("various") - 1, " various ")).span == (6, 6)


def test_deal_articles_is_seeded_disjoint_and_keeps_file_order():
    articles = list(range(20))
    parts = deal_articles(articles, {"train": 10, "dev": 5, "test": 3}, seed=0, source="x")
    assert sorted(sum(parts.values(), [])) == articles
    assert [len(parts[k]) for k in ("train", "dev", "test", "unused")] == [10, 5, 3, 2]
    assert all(part == sorted(part) for part in parts.values())
    assert deal_articles(articles, {"train": 10, "dev": 5, "test": 3}, seed=0, source="x") == parts
    assert deal_articles(articles, {"train": 10, "dev": 5, "test": 3}, seed=1, source="x") != parts
    with pytest.raises(DataError, match="asks for 21 articles"):
        deal_articles(articles, {"train": 10, "dev": 10, "test": 1}, seed=0, source="x")


# --- the metric: the official v1.1 rules on hand-made cases --------------------------------------------------


@pytest.mark.parametrize("prediction, gold", [
    ("Denver Broncos!", "denver broncos"),  # punctuation and case
    ("Levis Stadium", "Levi's Stadium"),  # punctuation inside a word is removed, not split on
    ("the Broncos", "Broncos"),  # articles
    ("a Broncos", "An Broncos"),
    ("  Denver \t Broncos\n", "Denver Broncos"),  # whitespace
    ("The (Denver) Broncos.", "denver broncos"),
])
def test_exact_match_after_normalisation(prediction, gold):
    assert exact_match(prediction, gold) == 1.0


@pytest.mark.parametrize("prediction, gold", [
    ("theater", "ater"),  # "the" is removed as a whole word only
    ("24–10", "24-10"),  # the en dash is not in string.punctuation; the hyphen is
    ("Denver", "Denver Broncos"),
])
def test_no_exact_match(prediction, gold):
    assert exact_match(prediction, gold) == 0.0


def test_normalize_answer_by_hand():
    assert normalize_answer("The  Quick, brown FOX -- an animal!") == "quick brown fox animal"
    assert normalize_answer("anthem of the thebans") == "anthem of thebans"


def test_f1_counts_repeated_tokens_as_a_multiset():
    # pred [new, york, new, york], gold [new, york, city]: shared = min counts = 1 + 1 = 2;
    # precision 2/4, recall 2/3, F1 = 2 * (1/2) * (2/3) / (1/2 + 2/3) = 4/7.
    assert token_f1("New York, New York", "New York City") == pytest.approx(4 / 7)
    # pred [cat, cat, cat] vs gold [cat, dog]: shared 1, P 1/3, R 1/2, F1 = 2/5.
    assert token_f1("the cat cat cat", "a cat dog") == pytest.approx(2 / 5)
    assert token_f1("Denver Broncos", "the Denver Broncos.") == 1.0
    assert token_f1("Panthers", "Carolina") == 0.0


def test_each_question_takes_its_best_gold_and_unanswered_or_empty_predictions_score_0():
    golds = [["Panthers", "Carolina Panthers", "the Carolina Panthers"],  # EM 1 (3rd gold), F1 1
             ["Carolina Panthers"],  # "Carolina": EM 0, F1 = 2 * 1 * 1/2 / (3/2) = 2/3
             ["Santa Clara"],  # unanswered: 0 and 0
             ["Santa Clara"],  # empty prediction: 0 and 0
             ["the"]]  # gold that normalises to "": "" matches exactly, but F1 has no shared token -> 0
    predictions = ["Carolina Panthers", "Carolina", None, "", ""]
    scores = squad_scores(golds, predictions)
    assert scores["exact_match"] == pytest.approx((1 + 0 + 0 + 0 + 1) / 5)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 0 + 0 + 0) / 5)


# --- bad input -----------------------------------------------------------------------------------------------


def test_malformed_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{"version": "1.1",\n "data": [\n  {"title": "x",,}\n]}', encoding="utf-8")
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:3: not valid JSON")):
        read_squad(path)


@pytest.mark.parametrize("mangle, message", [
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("answers"),
     "data[0].paragraphs[0].qas[0] (id q1): missing key 'answers'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="12"),
     "data[0].paragraphs[0].qas[0] (id q1).answers[0].answer_start: expected int, got str"),
    (lambda d: d["data"][0]["paragraphs"][0].pop("context"), "data[0].paragraphs[0]: missing key 'context'"),
    (lambda d: d["data"][0]["paragraphs"][0].update(context="  "), "data[0].paragraphs[0]: the context is empty"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers=[]), "data[0].paragraphs[0].qas[0] (id q1): no answers"),
    (lambda d: d.update(data={}), "the top level.data: expected list, got dict"),
])
def test_missing_or_mistyped_keys_name_the_file_and_json_path(tmp_path, mangle, message):
    path = write_squad(tmp_path, [one_question_article("Acme", "q1")])
    raw = json.loads(path.read_text())
    mangle(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: {message}")):
        read_squad(path)


def test_unalignable_answers_are_counted_and_skipped_only_for_training(tmp_path, caplog):
    context = "Ada Lovelace wrote the first program in 1843."
    problems = [
        ("bad-offset", "When?", [(400, "1843")]),  # outside the context
        ("bad-text", "Who?", [(0, "Charles Babbage")]),  # the context does not read the text there
        ("inside-word", "What?", [(context.index("gram"), "gram")]),  # inside a token
        ("empty-question", " ?! "[:1], [(0, "Ada")]),  # a question with no tokens
        ("fine", "Who wrote it?", [(400, "Ada"), (0, "Ada Lovelace ")]),  # one bad and one good answer
    ]
    articles = [(title, [(context, [(f"{title}-{qid}", q, a) for qid, q, a in problems])]) for title in "ABC"]
    write_squad(tmp_path, articles)
    task = make_task(offline_split=OfflineSplitConfig(1, 1, 1, seed=0))
    with caplog.at_level(logging.WARNING):
        splits = task.load_splits(str(tmp_path), use_hub=False)
    train, dev = (splits.details["articles"]["titles"][split][0] for split in ("train", "dev"))
    assert f"question {train}-bad-offset: answer_start 400" in caplog.text and "outside its context" in caplog.text
    assert f"question {train}-empty-question" in caplog.text
    for split in ("train", "dev", "test"):
        details = splits.details[split]
        assert (details["offset_outside_context"], details["text_mismatch"], details["not_on_token_boundaries"],
                details["aligned"], details["answers"]) == (2, 1, 1, 1, 5)
        assert details["skipped_empty_question"] == 1 and details["alignment_rate"] == pytest.approx(1 / 5)
    assert [e.id for e in splits.train] == [f"{train}-fine"]
    assert splits.train[0].meta.answer == (0, 1)
    assert splits.details["train"]["skipped_no_aligned_answer"] == 3
    assert [e.id for e in splits.dev] == [f"{dev}-{q}" for q in ("bad-offset", "bad-text", "inside-word", "fine")]
    assert splits.dev[1].label == ("Charles Babbage",)  # evaluation keeps the gold texts, aligned or not


def test_long_contexts_are_cut_and_answers_past_the_cut_counted(tmp_path):
    context = " ".join(f"w{i}" for i in range(50)) + " Ada"
    qas = [("late", "Who?", [(context.index("Ada"), "Ada")]), ("early", "Which?", [(0, "w0")])]
    write_squad(tmp_path, [(part, [(context, [(f"{part}-{q}", t, a) for q, t, a in qas])])
                           for part in ("a", "b", "c")])
    splits = make_task(offline_split=OfflineSplitConfig(1, 1, 1, seed=0),
                       max_context_tokens=20).load_splits(str(tmp_path), use_hub=False)
    for split in ("train", "dev", "test"):
        assert splits.details[split]["contexts_truncated"] == 1
        assert splits.details[split]["answers_beyond_truncation"] == 1
    assert splits.details["train"]["skipped_answer_beyond_truncation"] == 1
    assert [len(e.texts[1]) for e in splits.train] == [20] and len(splits.dev) == 2


def test_missing_file_or_too_few_articles(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / DEV_FILE))):
        make_task().load_splits(str(tmp_path), use_hub=False)
    write_squad(tmp_path, [one_question_article("A", "a"), one_question_article("B", "b")])
    with pytest.raises(DataError, match="asks for 3 articles"):
        make_task(offline_split=OfflineSplitConfig(1, 1, 1)).load_splits(str(tmp_path), use_hub=False)


def test_official_protocol_trains_on_the_train_file_and_halves_the_dev_file(tmp_path):
    write_squad(tmp_path, [one_question_article(f"dev{i}", f"d{i}") for i in range(4)])
    write_squad(tmp_path, [one_question_article(f"train{i}", f"t{i}") for i in range(3)], "squad/train-v1.1.json")
    task = make_task(protocol="official", official_split=OfficialSplitConfig(dev_articles=2, seed=0))
    splits = task.load_splits(str(tmp_path), use_hub=False)
    assert [e.id for e in splits.train] == ["t0", "t1", "t2"]
    assert len(splits.dev) == len(splits.test) == 2
    assert {e.id for e in splits.dev + splits.test} == {"d0", "d1", "d2", "d3"}
    assert splits.details["articles"]["counts"] == {"dev": 2, "test": 2, "unused": 0, "train": 3}


def test_hub_rows_are_regrouped_into_articles_and_paragraphs(tmp_path, monkeypatch):
    def rows(prefix: str, titles: list[str]) -> list[dict]:
        context = "Ada Lovelace wrote the first program."
        return [{"id": f"{prefix}{t}{n}", "title": t, "context": context, "question": "Who?",
                 "answers": {"text": ["Ada Lovelace", "Ada"], "answer_start": [0, 0]}} for t in titles for n in (1, 2)]

    hub = {"train": rows("t", ["X", "Y"]), "validation": rows("v", ["A", "B", "C", "D"])}
    monkeypatch.setattr("elmo_bench.tasks.span_qa.load_hub_dataset", lambda hub_id, tried, config=None: hub)
    articles = articles_from_rows(hub["validation"], "hub")
    assert [a.title for a in articles] == ["A", "B", "C", "D"]
    assert [len(p.questions) for a in articles for p in a.paragraphs] == [2, 2, 2, 2]
    assert articles[0].paragraphs[0].questions[0].answers == (Answer(0, "Ada Lovelace"), Answer(0, "Ada"))
    task = make_task(protocol="official", hub_id="rajpurkar/squad", official_split=OfficialSplitConfig(2, 0))
    splits = task.load_splits(str(tmp_path), use_hub=True)
    assert splits.source == "hub:rajpurkar/squad" and len(splits.train) == 4 and len(splits.dev) == 4


@pytest.mark.parametrize("override, key", [
    ("task.protocol=both", "task.protocol"),
    ("task.max_context_tokens=0", "task.max_context_tokens"),
    ("task.offline_split.dev_articles=0", "task.offline_split.dev_articles"),
    ("head.max_answer_tokens=0", "head.max_answer_tokens"),
])
def test_bad_config_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        make_config(["task=squad", override])


def test_squad_config_defaults():
    config = make_config(["task=squad"])
    assert (config.task.metric, config.task.protocol, config.task.max_context_tokens) == ("f1", "dev_split", 400)
    assert (config.head.hidden_dim, config.head.max_answer_tokens, config.head.dropout) == (100, 30, 0.2)


# --- the head ------------------------------------------------------------------------------------------------


class HashEmbedder(nn.Module):
    """A stand-in for the ELMo embedder: a trainable vector per hashed token; counts its calls."""

    output_dim = 6

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(997, self.output_dim)
        self.calls: list[int] = []

    def forward(self, texts):
        self.calls.append(len(texts))
        width = max(len(t) for t in texts)
        ids = torch.zeros(len(texts), width, dtype=torch.long)
        mask = torch.zeros(len(texts), width, dtype=torch.bool)
        for row, text in enumerate(texts):
            ids[row, : len(text)] = torch.tensor([zlib.crc32(token.encode()) % 997 for token in text])
            mask[row, : len(text)] = True
        return self.table(ids) * mask.unsqueeze(-1), mask


def qa_example(qid: str, question: str, context: str, answer: str) -> Example:
    tokens = tokenize_with_offsets(context)
    offsets = tuple((s, e) for _, s, e in tokens)
    start = context.index(answer)
    first = next(i for i, (s, _) in enumerate(offsets) if s == start)
    last = next(i for i, (_, e) in enumerate(offsets) if e == start + len(answer))
    return Example(qid, (tokenize(question), tuple(t for t, _, _ in tokens)), (answer,),
                   ContextSpans(context, offsets, (first, last)))


EXAMPLES = [
    qa_example("a", "Who wrote the first program?", "Ada Lovelace wrote the first program in 1843.", "Ada Lovelace"),
    qa_example("b", "When was it written?", "The program was written in 1843 , long before computers.", "1843"),
    qa_example("c", "What did Babbage design?", "Charles Babbage designed the Analytical Engine.",
               "the Analytical Engine"),
]


def small_head(**overrides) -> BidafHeadConfig:
    return BidafHeadConfig(**({"name": "bidaf", "hidden_dim": 5, "modeling_layers": 1, "dropout": 0.0} | overrides))


def test_one_embedder_call_per_batch_with_questions_and_contexts():
    torch.manual_seed(0)
    embedder = HashEmbedder()
    model = BidafModel(embedder, small_head())
    loss = model.loss(EXAMPLES)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())
    model.predict(EXAMPLES)
    assert embedder.calls == [6, 6]


def test_predictions_do_not_depend_on_the_batch_padding():
    torch.manual_seed(0)
    model = BidafModel(HashEmbedder(), small_head()).eval()
    with torch.no_grad():
        together = model._logits(EXAMPLES)
        for row, example in enumerate(EXAMPLES):
            alone = model._logits([example])
            width = len(example.texts[1])
            torch.testing.assert_close(alone[0][0], together[0][row, :width])
            torch.testing.assert_close(alone[1][0], together[1][row, :width])


def test_the_head_learns_to_point_at_the_answers():
    torch.manual_seed(0)
    model = BidafModel(HashEmbedder(), small_head(hidden_dim=8))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        optimizer.zero_grad()
        model.loss(EXAMPLES).backward()
        optimizer.step()
    assert model.eval().predict(EXAMPLES) == ["Ada Lovelace", "1843", "the Analytical Engine"]


def test_best_spans_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    start, end = torch.randn(4, 9, generator=generator), torch.randn(4, 9, generator=generator)
    mask = torch.arange(9)[None, :] < torch.tensor([9, 5, 1, 7])[:, None]
    for max_tokens in (1, 3, 30):
        expected = []
        for row in range(4):
            n = int(mask[row].sum())
            candidates = [(start[row, i] + end[row, j], (i, j))
                          for i in range(n) for j in range(i, min(n, i + max_tokens))]
            expected.append(max(candidates)[1])
        assert best_spans(start, end, mask, max_tokens) == expected


def test_trilinear_similarity_is_a_linear_map_of_the_concatenation():
    torch.manual_seed(0)
    similarity = TrilinearSimilarity(4)
    context, question = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    w = torch.cat([similarity.context_weight, similarity.question_weight, similarity.product_weight])
    expected = torch.empty(2, 3, 5)
    for b in range(2):
        for t in range(3):
            for j in range(5):
                c, q = context[b, t], question[b, j]
                expected[b, t, j] = w @ torch.cat([c, q, c * q]) + similarity.bias
    torch.testing.assert_close(similarity(context, question), expected)


# --- one epoch of each strategy on a slice of the real dev file ----------------------------------------------


def official_scores(rows: list[dict]) -> tuple[float, float]:
    """EM and F1 x100 over prediction rows, as the official evaluate-v1.1.py computes them."""

    def normalize(s):
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    def f1(prediction, truth):
        p, t = normalize(prediction).split(), normalize(truth).split()
        same = sum((Counter(p) & Counter(t)).values())
        return 0 if same == 0 else 2 * (same / len(p)) * (same / len(t)) / (same / len(p) + same / len(t))

    em = sum(max(normalize(r["pred"]) == normalize(g) for g in r["gold"]) for r in rows)
    f = sum(max(f1(r["pred"], g) for g in r["gold"]) for r in rows)
    return 100 * em / len(rows), 100 * f / len(rows)


@pytest.fixture(scope="module")
def squad_slice(tmp_path_factory, raw_dev) -> Path:
    """The first 4 paragraphs of the first 3 articles, as a valid SQuAD file."""
    root = tmp_path_factory.mktemp("squad_slice")
    sliced = dict(raw_dev, data=[dict(a, paragraphs=a["paragraphs"][:4]) for a in raw_dev["data"][:3]])
    (root / "squad").mkdir()
    (root / DEV_FILE).write_text(json.dumps(sliced), encoding="utf-8")
    return root


@pytest.mark.slow
def test_one_epoch_of_each_strategy(squad_slice, raw_dev, tmp_path, monkeypatch):
    common = [*offline_overrides(squad_slice, tmp_path, monkeypatch), "task=squad",
              "task.offline_split.train_articles=1", "task.offline_split.dev_articles=1",
              "task.offline_split.test_articles=1", "head.hidden_dim=8", "head.modeling_layers=1", "inputs.word_dim=8",
              "trainer.max_epochs=1", "trainer.min_steps=0", "data.train_size=12"]
    results = {}
    for strategy in ("feature_ensemble", "finetune"):
        config = make_config([*common, f"strategy={strategy}"])
        result = results[strategy] = run(config)
        assert (result["task"], result["metric"], result["train_size"], result["epochs"]) == ("squad", "f1", 12, 1)
        details = result["data_details"]
        assert details["protocol"] == "dev_split" and details["articles"]["counts"]["train"] == 1
        for split in ("dev", "test"):
            rows = cell_predictions(cell_dir(config), split)
            assert len(rows) == details[split]["questions"]
            assert all(set(r) == {"id", "gold", "pred", "article", "paragraph"} and isinstance(r["pred"], str)
                       for r in rows)
            assert {r["article"] for r in rows} == set(details["articles"]["titles"][split])
            assert all(re.fullmatch(r"data\[\d+\]\.paragraphs\[\d+\]", r["paragraph"]) for r in rows)
            em, f1 = official_scores(rows)
            assert result["metrics"][split]["exact_match"] == pytest.approx(em, abs=1e-3)
            assert result[split] == result["metrics"][split]["f1"] == pytest.approx(f1, abs=1e-3)
    assert results["feature_ensemble"]["train_subset_digest"] == results["finetune"]["train_subset_digest"]
    assert results["finetune"]["trainable_params"] > results["feature_ensemble"]["trainable_params"]
