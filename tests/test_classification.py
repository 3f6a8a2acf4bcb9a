"""SST-5 and AG News: the readers on the real files (counts, label distributions, quirks), accuracy against
scikit-learn, bad input, the classifier head's masking, and one-epoch runs of both strategies on slices."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from elmo_bench.errors import ConfigError, DataError, DataFormatError
from elmo_bench.data.agnews import clean_news_text, read_news_csv
from elmo_bench.data.sst import read_sst_trees
from elmo_bench.data.tokenize import tokenize
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.tasks import classification
from elmo_bench.tasks.base import Example
from elmo_bench.tasks.classification import (
    ClassificationTask,
    ClassificationTaskConfig,
    ClassifierHeadConfig,
    ClassifierModel,
    accuracy,
)

from runs import FAST, cell_predictions, make_config, offline_overrides

SST_LABELS = {"0", "1", "2", "3", "4"}
NEWS_LABELS = {"1", "2", "3", "4"}
NEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
SST_CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]
# MANIFEST.md (the known SST-5 split): root labels per file.
SST_COUNTS = {
    "train.txt": {"0": 1092, "1": 2218, "2": 1624, "3": 2322, "4": 1288},
    "dev.txt": {"0": 139, "1": 289, "2": 229, "3": 279, "4": 165},
    "test.txt": {"0": 279, "1": 633, "2": 389, "3": 510, "4": 399},
}
NEWS_COUNTS = {
    "test.csv": {"1": 1900, "2": 1900, "3": 1900, "4": 1900},
    "train_first2000.csv": {"1": 477, "2": 338, "3": 408, "4": 777},
    "train_sample20k.csv": {"1": 5000, "2": 5000, "3": 5000, "4": 5000},
}


def agnews_config(**changes) -> ClassificationTaskConfig:
    fields = dict(name="agnews", dataset="ag_news", format="news_csv", classes=NEWS_CLASSES, first_label=1,
                  pool="sample20k", train_files={"sample20k": "ag_news/train_sample20k.csv",
                                                 "first2000": "ag_news/train_first2000.csv"},
                  test_file="ag_news/test.csv", max_tokens=100, hub_id="fancyzhx/ag_news")
    return ClassificationTaskConfig(**(fields | changes))


def sst_config(**changes) -> ClassificationTaskConfig:
    fields = dict(name="sst5", dataset="sst5", format="sst_trees", classes=SST_CLASSES, pool="train",
                  train_files={"train": "sst5/train.txt"}, dev_file="sst5/dev.txt", test_file="sst5/test.txt")
    return ClassificationTaskConfig(**(fields | changes))


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- SST-5 reader on the real files ---------------------------------------------------------------

@pytest.fixture(scope="module")
def sst(shared_dir):
    return {name: read_sst_trees(shared_dir / "data" / "sst5" / name, SST_LABELS) for name in SST_COUNTS}


def test_sst_counts_and_root_labels_match_the_manifest(sst):
    for name, expected in SST_COUNTS.items():
        assert dict(Counter(s.label for s in sst[name])) == expected, name
    # MANIFEST says 163,560 leaves: a count of `(label \S+)` groups, which misses the 3 leaves holding a
    # no-break space ("2\xa01\/2"); a leaf is whatever stands between "(label " and ")".
    assert sum(len(s.tokens) for s in sst["train.txt"]) == 163_560 + 3


def test_sst_leaves_are_the_words_of_the_leaf_nodes_unescaped(sst, shared_dir):
    # Independently: every "(digit word)" group is a leaf node; undo the escapes by a plain table.
    escapes = {"-LRB-": "(", "-RRB-": ")", "``": '"', "''": '"'}
    for name, sentences in sst.items():
        lines = (shared_dir / "data" / "sst5" / name).read_text(encoding="utf-8").splitlines()
        for sentence, line in zip(sentences, lines):
            words = re.findall(r"\(\d ([^()]+)\)", line)
            assert sentence.tokens == tuple(escapes.get(w, w.replace("\\/", "/").replace("\\*", "*")) for w in words)
            assert sentence.label == line[1]


def test_sst_quirks_escapes_restored_and_a_no_break_space_kept_inside_a_word(sst):
    tokens = {t for sentences in sst.values() for s in sentences for t in s.tokens}
    assert {"(", ")", '"', "1/2", "***"} <= tokens
    assert not {t for t in tokens if t in ("-LRB-", "-RRB-", "``", "''") or "\\" in t}
    line_4342 = sst["train.txt"][4341]
    assert line_4342.line == 4342 and "8\xa01/2" in line_4342.tokens
    assert sst["train.txt"][0].tokens[:4] == ("The", "Rock", "is", "destined")


def test_sst_task_uses_class_names_and_file_lines_as_ids(shared_dir):
    splits = ClassificationTask(sst_config()).load_splits(str(shared_dir / "data"), use_hub=False)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (8544, 1101, 2210)
    assert splits.train[0].id == "train-1" and splits.train[0].label == "positive"
    assert splits.details["label_counts"]["dev"] == dict(zip(SST_CLASSES, SST_COUNTS["dev.txt"].values()))
    assert splits.details["truncated"] == {"train": 0, "dev": 0, "test": 0}


# --- AG News reader on the real files -------------------------------------------------------------

@pytest.fixture(scope="module")
def news(shared_dir):
    return {name: read_news_csv(shared_dir / "data" / "ag_news" / name, NEWS_LABELS) for name in NEWS_COUNTS}


def test_news_counts_per_class(news):
    for name, expected in NEWS_COUNTS.items():
        assert dict(sorted(Counter(r.label for r in news[name]).items())) == expected, name


def test_news_both_csv_layouts_give_the_same_text_for_the_shared_rows(news):
    # MANIFEST: 298 rows of the 20k sample (pandas layout) are verbatim rows of first2000 (fully quoted).
    first = {(r.label, r.text) for r in news["train_first2000.csv"]}
    assert sum((r.label, r.text) in first for r in news["train_sample20k.csv"]) == 298
    assert news["train_sample20k.csv"][0].line == 2  # the header line is skipped


def test_news_cleaning_leaves_no_markup(news):
    texts = [r.text for rows in news.values() for r in rows]
    assert not [t for t in texts if re.search(r"\\|#\d+;|&[a-z]+;|</?(b|p|a|font|br)\b", t, re.IGNORECASE)]
    test = news["test.csv"]
    assert "A second team of rocketeers competing for the $10 million Ansari X Prize" in test[1].text
    assert "they are 'disappointed'" in test[0].text
    assert "America's top diplomat" in news["train_sample20k.csv"][2].text


@pytest.mark.parametrize("raw, clean", [
    ("America #39;s top", "America's top"),
    ("the  #36;10 million", "the $10 million"),
    ("convention  #151; California", "convention \u2014 California"),
    ("Don #146;t", "Don\u2019t"),
    ("AT #38;T and R&D", "AT&T and R&D"),
    ("a second\\team, \\$15", "a second team, $15"),
    ("Inc. &lt;TXN.N&gt; rose", "Inc. <TXN.N> rose"),
    ("&lt;b&gt;Bold&lt;/b&gt; &lt;A HREF=\"http://x.com/q?a=b\"&gt;link&lt;/A&gt;&lt;br /&gt;end", "Bold link end"),
    (" \\ #160; ", ""),
])
def test_clean_news_text(raw, clean):
    assert clean_news_text(raw) == clean


def test_agnews_dev_is_carved_from_the_pool_with_a_seed(shared_dir):
    root = str(shared_dir / "data")
    splits = ClassificationTask(agnews_config()).load_splits(root, use_hub=False)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (19_000, 1_000, 7_600)
    train_ids, dev_ids = {e.id for e in splits.train}, {e.id for e in splits.dev}
    assert not train_ids & dev_ids and len(train_ids | dev_ids) == 20_000
    assert splits.details["pool"] == "sample20k" and splits.details["pool_file"] == "ag_news/train_sample20k.csv"
    assert splits.details["dev_carve"] == {"size": 1000, "seed": 0, "pool_size": 20_000}
    # The file is sorted by class; the carve must not be: every class is in dev, in a shuffled order.
    assert min(splits.details["label_counts"]["dev"].values()) > 200
    assert len({e.label for e in splits.train[:20]}) > 1


def test_dev_carve_depends_on_the_seed_only(tmp_path):
    write(tmp_path / "ag_news" / "train_first2000.csv", [f"{1 + i % 4},Title {i},Text" for i in range(40)])
    write(tmp_path / "ag_news" / "test.csv", ["1,a,b"])

    def dev_ids(**changes):
        config = agnews_config(pool="first2000", dev_size=0.25, **changes)
        return [e.id for e in ClassificationTask(config).load_splits(str(tmp_path), use_hub=False).dev]

    assert len(dev_ids()) == 10 and dev_ids() == dev_ids()
    assert set(dev_ids(dev_seed=1)) != set(dev_ids())


def test_agnews_texts_are_truncated_and_counted(shared_dir):
    root = shared_dir / "data"
    splits = ClassificationTask(agnews_config(pool="first2000", dev_size=100, max_tokens=40)).load_splits(
        str(root), use_hub=False)
    rows = read_news_csv(root / "ag_news" / "test.csv", NEWS_LABELS)
    long = sum(len(tokenize(r.text)) > 40 for r in rows)
    assert 0 < long == splits.details["truncated"]["test"]
    assert max(len(e.texts[0]) for e in splits.test) == 40
    assert (len(splits.train), len(splits.dev), splits.details["pool"]) == (1900, 100, "first2000")
    by_id = {e.id: e for e in splits.test}
    assert by_id["test-2"].texts[0] == tokenize(rows[1].text)[:40]


# --- accuracy ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gold, predicted, expected", [
    (["a", "b", "c", "d"], ["a", "b", "c", "d"], 1.0),
    (["a", "b", "c", "d"], ["a", "x", "c", "x"], 0.5),
    (["World"], ["Sports"], 0.0),
    (["a", "a", "b"], ["a", "b", "b"], 2 / 3),
])
def test_accuracy_hand_computed(gold, predicted, expected):
    assert accuracy(gold, predicted) == pytest.approx(expected)


def test_accuracy_per_class_scores_and_confusion_match_sklearn():
    generator = torch.Generator().manual_seed(0)
    task = ClassificationTask(sst_config())
    gold = [task.classes[i] for i in torch.randint(0, 5, (500,), generator=generator).tolist()]
    predicted = [task.classes[i] for i in torch.randint(0, 4, (500,), generator=generator).tolist()]  # never class 4
    scores = task.score(gold, predicted)
    assert scores["accuracy"] == pytest.approx(accuracy_score(gold, predicted))
    assert scores["macro_f1"] == pytest.approx(f1_score(gold, predicted, labels=task.classes, average="macro",
                                                        zero_division=0))
    never = task.classes[4]
    assert (scores[f"precision_{never}"], scores[f"recall_{never}"], scores[f"f1_{never}"]) == (0.0, 0.0, 0.0)
    first = task.classes[0]
    assert scores[f"recall_{first}"] == pytest.approx(
        sum(g == p == first for g, p in zip(gold, predicted)) / gold.count(first))
    matrix = scores["confusion"]["matrix"]
    assert scores["confusion"]["labels"] == task.classes and sum(map(sum, matrix)) == 500
    assert [row[4] for row in matrix] == [0] * 5 and sum(matrix[i][i] for i in range(5)) == round(
        500 * scores["accuracy"])


def test_accuracy_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError):
        accuracy(["a"], [])
    with pytest.raises(ValueError):
        accuracy([], [])


# --- bad input ----------------------------------------------------------------------------------------

GOOD_TREE = "(3 (2 It) (4 (3 works) (2 .)))"


@pytest.mark.parametrize("line, message", [
    ("(3 (2 It) (4 (3 works) (2 .))", "unbalanced brackets: 1 '(' never closed"),
    ("(3 (2 It) (4 (3 works) (2 .))))", "text after the end of the tree"),
    ("(5 (2 It) (4 (3 works) (2 .)))", "label '5' is not one of 0, 1, 2, 3, 4"),
    ("(3 (2 It) (x (3 works) (2 .)))", "label 'x'"),
    ("(3 (2 It) (4 (3 works) (2)))", "an empty node"),
    ("(3 (2 It is) (2 .))", "a leaf node holds more than one word"),
    ("(3 (2 It) word)", "both a word and subtrees"),
    ("((2 It) (2 .))", "where its label should be"),
    ("3 (2 It)", "text outside the tree"),
])
def test_malformed_sst_tree_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "trees.txt", [GOOD_TREE, line])
    with pytest.raises(DataFormatError, match=re.escape(message)) as error:
        read_sst_trees(path, SST_LABELS)
    assert (error.value.path, error.value.line) == (path, 2)
    assert f"{path}:2:" in str(error.value)


def test_sst_blank_lines_are_not_trees(tmp_path):
    path = write(tmp_path / "trees.txt", [GOOD_TREE, "", GOOD_TREE])
    assert [s.line for s in read_sst_trees(path, SST_LABELS)] == [1, 3]


NEWS_ROW = '"3","Title","Description."'


@pytest.mark.parametrize("line, message", [
    ('"3","Title only"', "expected 3 columns (class, title, description), found 2"),
    ('"3","Title","Description","extra"', "found 4"),
    ('"5","Title","Description"', "class '5' is not one of 1, 2, 3, 4"),
    ('"0","Title","Description"', "class '0'"),
    ('"World","Title","Description"', "class 'World'"),
    ('"3","","  "', "empty text"),
    ('"3"," \\ ","&lt;br&gt;"', "empty text"),
    ('"3","Title "x" y","Description"', "not valid CSV"),
])
def test_bad_news_row_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "news.csv", [NEWS_ROW, NEWS_ROW, line])
    with pytest.raises(DataFormatError, match=re.escape(message)) as error:
        read_news_csv(path, NEWS_LABELS)
    assert (error.value.path, error.value.line) == (path, 3)


def test_news_header_only_skipped_on_the_first_line(tmp_path):
    header = "class_index,title,description"
    assert [r.line for r in read_news_csv(write(tmp_path / "a.csv", [header, "3,T,D"]), NEWS_LABELS)] == [2]
    with pytest.raises(DataFormatError, match="class 'class_index'"):
        read_news_csv(write(tmp_path / "b.csv", ["3,T,D", header]), NEWS_LABELS)


def test_missing_files_without_hub_name_the_paths(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "ag_news" / "test.csv"))):
        ClassificationTask(agnews_config()).load_splits(str(tmp_path), use_hub=False)


def test_hub_pool_needs_the_hub(tmp_path):
    with pytest.raises(ConfigError, match="data.use_hub"):
        ClassificationTask(agnews_config(pool="hub")).load_splits(str(tmp_path), use_hub=False)


def test_hub_rows_are_cleaned_labelled_and_carved(tmp_path, monkeypatch):
    train = [{"text": f"Title {i} #39;s\\news", "label": i % 4} for i in range(40)]
    hub = {"train": train, "test": [{"text": "Stocks &lt;b&gt;up&lt;/b&gt;", "label": 2}]}
    monkeypatch.setattr(classification, "load_hub_dataset", lambda hub_id, tried, config=None: hub)
    splits = ClassificationTask(agnews_config(dev_size=10)).load_splits(str(tmp_path), use_hub=True)
    assert splits.source == "hub:fancyzhx/ag_news"
    assert splits.details["pool"] == "hub" and splits.details["requested_pool"] == "sample20k"
    assert (len(splits.train), len(splits.dev)) == (30, 10)
    assert splits.test == [Example("test-1", (("Stocks", "up"),), "Business")]
    first = next(e for e in splits.train + splits.dev if e.id == "hub-1")
    assert first.texts[0] == ("Title", "0", "'s", "news") and first.label == "World"
    hub["test"] = [{"text": "x", "label": 4}]
    with pytest.raises(DataFormatError, match=re.escape("hub:fancyzhx/ag_news/test:1: label 4")):
        ClassificationTask(agnews_config(dev_size=10)).load_splits(str(tmp_path), use_hub=True)


def test_dev_carve_must_leave_both_parts(tmp_path):
    path = write(tmp_path / "ag_news" / "train_first2000.csv", ["1,a,b", "2,c,d"])
    path.with_name("test.csv").write_text("1,a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="task.dev_size=2"):
        ClassificationTask(agnews_config(pool="first2000", dev_size=2)).load_splits(str(tmp_path), use_hub=False)


@pytest.mark.parametrize("override, key", [
    ("task.pool=everything", "task.pool"),
    ("task.dev_size=1.5", "task.dev_size"),
    ("task.dev_size=0", "task.dev_size"),
    ("task.max_tokens=0", "task.max_tokens"),
    ("task.format=xml", "task.format"),
    ("head.pooling=sum", "head.pooling"),
    ("head.feedforward_dim=-1", "head.feedforward_dim"),
])
def test_bad_config_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        make_config(["task=agnews", override])


# --- the classifier head ----------------------------------------------------------------------------

class RandomEmbedder(nn.Module):
    """A fixed random vector per token: stands in for ELMo so the head alone is tested."""

    output_dim = 6

    def forward(self, texts):
        width = max(len(t) for t in texts)
        reps = torch.zeros(len(texts), width, self.output_dim)
        for row, text in enumerate(texts):
            for col, token in enumerate(text):
                generator = torch.Generator().manual_seed(sum(map(ord, token)))
                reps[row, col] = torch.randn(self.output_dim, generator=generator)
        mask = torch.arange(width)[None, :] < torch.tensor([len(t) for t in texts])[:, None]
        return reps, mask


@pytest.mark.parametrize("pooling", ["max", "mean", "attention"])
@pytest.mark.parametrize("lstm_layers", [0, 2])
def test_classifier_ignores_padding_and_predicts_class_names(pooling, lstm_layers):
    torch.manual_seed(0)
    head = ClassifierHeadConfig(name="classifier", lstm_layers=lstm_layers, hidden_dim=4, pooling=pooling,
                                feedforward_dim=5)
    model = ClassifierModel(RandomEmbedder(), SST_CLASSES, head).eval()
    short = Example("a", (("good",),), "positive")
    long = Example("b", (("a", "long", "and", "dull", "film"),), "negative")
    with torch.no_grad():
        alone, batched = model._logits([short]), model._logits([short, long])
        torch.testing.assert_close(batched[0], alone[0])
        assert set(model.predict([short, long])) <= set(SST_CLASSES)
    loss = model.train().loss([short, long])
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None for p in model.parameters() if p.requires_grad)


# --- one-epoch runs on slices of the real files -------------------------------------------------------

def slice_sst(shared: Path, root: Path) -> None:
    for name, count in (("train.txt", 60), ("dev.txt", 25), ("test.txt", 25)):
        lines = (shared / "data" / "sst5" / name).read_text(encoding="utf-8").splitlines()[:count]
        write(root / "sst5" / name, lines)


def slice_news(shared: Path, root: Path) -> None:
    folder = shared / "data" / "ag_news"
    sample = (folder / "train_sample20k.csv").read_text(encoding="utf-8").splitlines()
    write(root / "ag_news" / "train_sample20k.csv", [sample[0], *sample[1::250]])  # header + 80 rows, all classes
    write(root / "ag_news" / "test.csv", (folder / "test.csv").read_text(encoding="utf-8").splitlines()[:30])


@pytest.fixture(scope="module")
def slice_root(tmp_path_factory, shared_dir) -> Path:
    root = tmp_path_factory.mktemp("data")
    slice_sst(shared_dir, root)
    slice_news(shared_dir, root)
    return root


@pytest.fixture
def overrides(slice_root, tmp_path, monkeypatch):
    return [*offline_overrides(slice_root, tmp_path, monkeypatch), *FAST,
            "trainer.max_epochs=1", "trainer.min_steps=0", "head.feedforward_dim=8"]



def check_recomputed_accuracy(config, result: dict, sizes: dict[str, int], classes: list[str]) -> None:
    for split, size in sizes.items():
        rows = cell_predictions(cell_dir(config), split)
        assert len(rows) == size and {r["gold"] for r in rows} | {r["pred"] for r in rows} <= set(classes)
        expected = 100 * accuracy_score([r["gold"] for r in rows], [r["pred"] for r in rows])
        assert result[split] == pytest.approx(expected, abs=1e-3)
        assert result["metrics"][split]["accuracy"] == result[split]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["feature_ensemble", "finetune"])
def test_sst5_one_epoch_run(overrides, strategy):
    config = make_config([*overrides, "task=sst5", f"strategy={strategy}", "data.train_size=40",
                          "head.pooling=attention"])
    result = run(config)
    assert (result["task"], result["strategy"], result["metric"]) == ("sst5", strategy, "accuracy")
    assert (result["train_size"], result["train_pool"], result["epochs"]) == (40, 60, 1)
    assert result["data_details"]["pool"] == "train" and result["data_details"]["max_tokens"] is None
    check_recomputed_accuracy(config, result, {"dev": 25, "test": 25}, SST_CLASSES)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["feature_ensemble", "finetune"])
def test_agnews_one_epoch_run_records_pool_carve_and_truncation(overrides, strategy):
    config = make_config([*overrides, "task=agnews", f"strategy={strategy}", "data.train_size=40",
                          "task.dev_size=20", "task.max_tokens=30"])
    result = run(config)
    details = result["data_details"]
    assert (result["task"], result["dataset"], result["train_pool"]) == ("agnews", "ag_news", 60)
    assert details["pool"] == "sample20k" and details["dev_carve"] == {"size": 20, "seed": 0, "pool_size": 80}
    assert details["max_tokens"] == 30 and details["truncated"]["test"] > 0
    assert sum(details["label_counts"]["test"].values()) == 30
    check_recomputed_accuracy(config, result, {"dev": 20, "test": 30}, NEWS_CLASSES)
