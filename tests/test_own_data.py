"""A user's own data in each task family, through the generic configs (conf/task/{tagging,classification,
pair_regression,span_qa}.yaml) on small files written here: awkward cases, data-set names, the dev carve,
hub data sets by id (datasets.load_dataset replaced: no network), extra test sets, and errors naming the
file, line and key. The end-to-end runs check result.json against metrics recomputed from predictions."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import datasets
import pytest
from scipy import stats

from elmo_bench.config import PROJECT_ROOT
from elmo_bench.errors import ConfigError, DataError, DataFormatError
from elmo_bench.data.hub import HubRef, parse_hub_ref
from elmo_bench.cell.layout import read_predictions
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.tasks import make_task
from elmo_bench.tasks.tagging import TaggingTaskConfig

from runs import FAST, make_config, offline_overrides
from test_generic_readers import CONLLU, write

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import recompute_metrics  # noqa: E402


def load(overrides: list[str], root: Path, use_hub: bool = False):
    return make_task(make_config(overrides).task).load(str(root), use_hub)


# --- tagging -----------------------------------------------------------------------------------------------

def test_conllu_treebank_for_pos(tmp_path):
    write(tmp_path / "ud/train.conllu", CONLLU * 5)
    write(tmp_path / "ud/test.conllu", CONLLU)
    config = make_config(["task=tagging", "task.format=conllu", "task.train_file=ud/train.conllu",
                          "task.test_file=ud/test.conllu", "task.dev_size=2"])
    assert (config.task.name, config.task.dataset, config.task.metric) == ("ud", "ud", None)  # read from the tags
    task = make_task(config.task)
    splits = task.load(str(tmp_path), use_hub=False)
    assert (task.scheme, task.metric) == ("none", "accuracy")  # UPOS tags carry no B-/I- prefixes
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (8, 2, 2)
    assert splits.details["dev_carve"] == {"size": 2, "seed": 0, "pool_size": 10}
    assert splits.test[0].texts[0] == ("Er", "ging", "zu", "dem", "Markt", ".")


def test_two_column_iob2_with_tab_only_separator_lines(tmp_path):
    text = "@user\tO\nParis\tB-LOC\nrocks\tO\n\t\nNew\tB-LOC\nYork\tI-LOC\n\t\n"
    for split in ("train", "dev", "test"):
        write(tmp_path / f"wnut/{split}.txt", text)
    splits = load(["task=ner", "task.train_file=wnut/train.txt", "task.dev_file=wnut/dev.txt",
                   "task.test_file=wnut/test.txt", "task.label_column=1", "task.scheme=iob2"], tmp_path)
    assert [e.label for e in splits.train] == [("O", "B-LOC", "O"), ("B-LOC", "I-LOC")]
    config = make_config(["task=ner", "task.train_file=wnut/train.txt"])
    assert (config.task.name, config.task.dataset) == ("ner", "wnut")  # not conll2003: the files are not


# --- classification ----------------------------------------------------------------------------------------

TREC_TRAIN = "".join(f"{label} {question}\n" for label, question in [
    ("DESC:manner", "How did serfdom develop in Russia ?"), ("HUM:ind", "Who was Pelé ?"),
    ("LOC:city", "What is the capital of Perú ?"), ("HUM:gr", "What team won in 1990 ?"),
    ("DESC:def", "What is a caldera ?"), ("LOC:other", "Where is the Nile ?")] * 3)
TREC_TEST = "HUM:ind Who wrote Hamlet ?\nLOC:city Which city is São Paulo's capital ?\n"
TREC = ["task=classification", "task.format=lines", "task.encoding=latin-1", "task.train_file=trec/train_5500.label",
        "task.test_file=trec/TREC_10.label"]


@pytest.fixture
def trec_root(tmp_path) -> Path:
    write(tmp_path / "trec/train_5500.label", TREC_TRAIN, encoding="latin-1")
    write(tmp_path / "trec/TREC_10.label", TREC_TEST, encoding="latin-1")
    return tmp_path


def test_question_classification_lines_in_latin1_coarse_and_fine(trec_root):
    coarse = load([*TREC, "task.label_parts=1", "task.dev_size=3"], trec_root)
    assert [e.label for e in coarse.test] == ["HUM", "LOC"] and coarse.test[0].id == "test-1"
    assert set(coarse.details["label_counts"]["train"]) == {"DESC", "HUM", "LOC"}
    assert (len(coarse.train), len(coarse.dev)) == (15, 3)
    assert coarse.test[1].texts[0][:4] == ("Which", "city", "is", "São")
    fine = load(TREC, trec_root)
    assert set(fine.details["label_counts"]["train"]) == {"DESC:manner", "HUM:ind", "LOC:city", "HUM:gr",
                                                          "DESC:def", "LOC:other"}


def test_a_test_label_unseen_in_training_names_file_and_line(trec_root):
    write(trec_root / "trec/TREC_10.label", "HUM:ind Who ?\nNUM:date When ?\n", encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"TREC_10\.label:2: label 'NUM:date' is not one of the classes"):
        load(TREC, trec_root)


def test_a_training_file_of_one_label_is_refused(trec_root):
    write(trec_root / "trec/train_5500.label", "HUM:ind Who ?\nHUM:ind Who else ?\n")
    with pytest.raises(DataError, match=r"train_5500\.label: one label only \('HUM'\)"):
        load([*TREC, "task.label_parts=1"], trec_root)


def test_wrong_encoding_names_file_line_and_key(trec_root):
    with pytest.raises(DataFormatError, match=r"train_5500\.label:2: not valid utf-8.*task\.encoding"):
        load([*TREC, "task.encoding=utf-8"], trec_root)


def test_csv_with_named_columns_numeric_labels_and_given_classes(tmp_path):
    rows = '1,"Stocks fall, again",3\n2,Cup final tonight,2\n'
    write(tmp_path / "news/train.csv", "id,headline,topic\n" + rows * 5)
    write(tmp_path / "news/test.csv", "id,headline,topic\n9,Rain in Spain,1\n")
    splits = load(["task=classification", "task.train_file=news/train.csv", "task.test_file=news/test.csv",
                   "task.text_column=headline", "task.label_column=topic", "task.classes=[World,Sports,Business]",
                   "task.first_label=1"], tmp_path)
    assert [e.label for e in splits.test] == ["World"] and splits.test[0].id == "test-2"
    assert {e.label for e in splits.train + splits.dev} == {"Business", "Sports"}
    with pytest.raises(DataFormatError, match=r"train\.csv:1: no column 'text' \(task\.text_column\)"):
        load(["task=classification", "task.train_file=news/train.csv", "task.test_file=news/test.csv"], tmp_path)


def test_jsonl_with_fields(tmp_path):
    rows = [{"review": "great", "stars": "pos"}, {"review": "awful", "stars": "neg"}] * 5
    write(tmp_path / "rev/train.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    write(tmp_path / "rev/test.jsonl", json.dumps({"review": "meh", "stars": "neg"}) + "\n")
    splits = load(["task=classification", "task.format=jsonl", "task.train_file=rev/train.jsonl",
                   "task.test_file=rev/test.jsonl", "task.text_column=review", "task.label_column=stars"], tmp_path)
    assert splits.test[0].label == "neg" and splits.details["label_counts"]["test"] == {"neg": 1, "pos": 0}


# --- sentence pairs ----------------------------------------------------------------------------------------

SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\tSemEval_set\n"
SICK = ["task=pair_regression", "task.format=tsv", "task.train_file=sick/SICK.txt", "task.split_column=SemEval_set",
        "task.split_values.train=TRAIN", "task.split_values.dev=TRIAL", "task.split_values.test=TEST",
        "task.sentence1_column=sentence_A", "task.sentence2_column=sentence_B",
        "task.score_column=relatedness_score", "task.min_score=1", "task.max_score=5"]


def sick_rows(count: int, start: int = 1) -> str:
    sets = ["TRAIN", "TRAIN", "TRIAL", "TEST"]
    return "".join(f"{i}\tA dog runs {i}\tA dog is running\t{1 + (i % 5) * 0.9:.1f}\tNEUTRAL\t{sets[i % 4]}\n"
                   for i in range(start, start + count))


def test_relatedness_tsv_with_a_split_column_and_a_1_to_5_scale(tmp_path):
    write(tmp_path / "sick/SICK.txt", SICK_HEADER + sick_rows(40))
    config = make_config(SICK)
    assert config.task.dataset == "SICK" and config.task.name == "SICK"
    splits = make_task(config.task).load(str(tmp_path), use_hub=False)
    assert splits.details["pairs"] == {"train": 20, "dev": 10, "test": 10}
    assert splits.train[0].texts == (("A", "dog", "runs", "1"), ("A", "dog", "is", "running"))
    assert splits.train[0].label == pytest.approx(1.9)  # row 1: 1 + 1 * 0.9
    assert make_task(config.task).score_range == (1.0, 5.0)  # the head predicts within the configured range


SCORE = r"SICK\.txt:42: score \(task\.score_column=relatedness_score\) "


@pytest.mark.parametrize("row, message", [
    ("99\tA\tB\t5.4\tNEUTRAL\tTRAIN\n", SCORE + r"5\.4 is outside \[1, 5\]"),
    ("99\tA\tB\tn/a\tNEUTRAL\tTRAIN\n", SCORE + r"'n/a' is not a number"),
    ("99\tA\tB\t3\tNEUTRAL\tVALID\n", r"SICK\.txt:42: split 'VALID' \(task\.split_column\)"),
    ("99\tA\tB\t3\tNEUTRAL\n", r"SICK\.txt:42: expected 6 TSV columns"),
])
def test_bad_pair_rows_name_file_line_and_key(tmp_path, row, message):
    write(tmp_path / "sick/SICK.txt", SICK_HEADER + sick_rows(40) + row)
    with pytest.raises(DataFormatError, match=message):
        load(SICK, tmp_path)


def test_pairs_from_separate_csv_files_with_dev_carved(tmp_path):
    rows = [f'"A cat, {i}",A cat sits,{i % 5}\n' for i in range(20)]
    write(tmp_path / "p/train.csv", "s1,s2,sim\n" + "".join(rows))
    write(tmp_path / "p/test.csv", "s1,s2,sim\n" + "".join(rows[:4]))
    splits = load(["task=pair_regression", "task.train_file=p/train.csv", "task.test_file=p/test.csv",
                   "task.sentence1_column=s1", "task.sentence2_column=s2", "task.score_column=sim"], tmp_path)
    assert (len(splits.train), len(splits.dev)) == (18, 2) and splits.details["dev_carve"]["seed"] == 0
    with pytest.raises(DataFormatError, match=r"train\.csv:1: no column 'sentence1' \(task\.sentence1_column\)"):
        load(["task=pair_regression", "task.train_file=p/train.csv", "task.test_file=p/test.csv"], tmp_path)


# --- span QA -----------------------------------------------------------------------------------------------

def squad_file(path: Path, title: str, paragraphs: int, questions: int = 2) -> Path:
    """One "article" of `paragraphs` contexts, each with `questions` questions about a founder."""
    def paragraph(p: int) -> dict:
        context = f"The {title} clinic number {p} was founded in 19{p:02d} by Doctor Ada Lovelace{p}."
        start = context.index("Doctor")
        return {"context": context, "qas": [
            {"id": f"{title}-{p}-{q}", "question": f"Who founded clinic {p}?",
             "answers": [{"answer_start": start, "text": f"Doctor Ada Lovelace{p}"}]} for q in range(questions)]}

    data = {"version": "1.1", "data": [{"title": title, "paragraphs": [paragraph(p) for p in range(paragraphs)]}]}
    return write(path, json.dumps(data))


def test_one_article_files_with_dev_carved_by_paragraph(tmp_path):
    squad_file(tmp_path / "med/train.json", "med", paragraphs=10)
    squad_file(tmp_path / "med/test.json", "medtest", paragraphs=2)
    splits = load(["task=span_qa", "task.train_file=med/train.json", "task.test_file=med/test.json",
                   "task.dev_size=3"], tmp_path)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (14, 6, 4)
    contexts = {split: {e.meta.context for e in getattr(splits, split)} for split in ("train", "dev")}
    assert len(contexts["dev"]) == 3 and not contexts["train"] & contexts["dev"]  # questions of a context together
    record = splits.details["articles"]
    assert record["dev_carve"] == {"size": 3, "seed": 0, "pool_size": 10, "unit": "paragraph"}
    assert record["counts"] == {"train": 1, "dev": 1, "test": 1}


def test_stock_squad_split_with_a_test_file_from_another_domain(tmp_path):
    articles = [json.loads(squad_file(tmp_path / f"x{i}.json", f"a{i}", 1).read_text())["data"][0] for i in range(3)]
    data = {"version": "1.1", "data": articles}
    write(tmp_path / "squad/dev-v1.1.json", json.dumps(data))
    squad_file(tmp_path / "bio/test.json", "bio", paragraphs=2)
    splits = load(["task=squad", "task.test_file=bio/test.json", "task.offline_split.train_articles=2",
                   "task.offline_split.dev_articles=1"], tmp_path)
    assert {e.id.split("-")[0] for e in splits.test} == {"bio"}
    assert splits.details["articles"]["counts"] == {"train": 2, "dev": 1, "unused": 0, "test": 1}
    assert "test is task.test_file" in splits.details["articles"]["dealt"]


# --- config errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, key", [
    ([*TREC, "task.encoding=klingon"], "task.encoding"),
    ([*TREC, "task.line_pattern='(?P<text>.+)'"], "task.line_pattern"),
    ([*TREC, "task.line_pattern='(?P<label>'"], "task.line_pattern"),
    ([*TREC, "task.label_parts=0"], "task.label_parts"),
    (["task=classification", "task.train_file=a.csv"], "task.test_file"),
    (["task=classification", "task.format=sst_trees", "task.train_file=a", "task.test_file=b"], "task.classes"),
    ([*SICK, "task.dev_file=x.tsv"], "task.split_column"),
    (["task=span_qa", "task.train_file=a.json"], "task.test_file"),
    (["task=tagging", "task.train_file=a", "task.test_file=b", "task.tag_field=feats"], "task.tag_field"),
    ([*TREC, "+task.extra_test.web=hub:a@b@c"], "task.extra_test.web"),
])
def test_bad_config_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        make_config(overrides)


def test_an_extra_test_name_must_be_a_plain_file_name():
    # Hydra's own grammar already refuses such keys on the command line; a config built in code is checked too.
    with pytest.raises(ConfigError, match=re.escape("'task.extra_test.../up'")):
        TaggingTaskConfig(name="t", dataset="t", metric="accuracy", scheme="none", train_file="a", test_file="b",
                          extra_test={"../up": "x.txt"})


def test_a_generic_task_without_data_asks_for_its_training_file():
    with pytest.raises(ConfigError, match=re.escape("config key 'task.train_file': not set, and no task.hub_id")):
        make_config(["task=classification"])


# --- hub data sets by id -----------------------------------------------------------------------------------

def glue_sst2() -> datasets.DatasetDict:
    """A few rows in the shape of GLUE's sst2: ClassLabel names, and a test split without labels (-1)."""
    features = datasets.Features({"sentence": datasets.Value("string"), "idx": datasets.Value("int32"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})

    def split(labels: list[int]) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"sentence": [f"a {'good' if y else 'bad'} film {i}"
                                                        for i, y in enumerate(labels)],
                                           "idx": list(range(len(labels))), "label": labels}, features=features)

    return datasets.DatasetDict({"train": split([0, 1] * 10), "validation": split([1, 0, 1]),
                                 "test": split([-1, -1])})


def test_glue_config_by_id_with_validation_as_test(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args: calls.append(args) or glue_sst2())
    overrides = ["task=classification", "task.hub_id=nyu-mll/glue", "task.hub_config=sst2",
                 "task.text_column=sentence", "task.hub_splits.test=validation", "task.hub_splits.dev=null"]
    config = make_config(overrides)
    assert (config.task.name, config.task.dataset) == ("sst2", "sst2")
    splits = make_task(config.task).load(str(tmp_path), use_hub=True)
    assert calls == [("nyu-mll/glue", "sst2")] and splits.source == "hub:nyu-mll/glue:sst2"
    assert [e.label for e in splits.test] == ["positive", "negative", "positive"]
    assert (len(splits.train), len(splits.dev)) == (18, 2) and splits.details["dev_carve"]["pool_size"] == 20
    with pytest.raises(DataFormatError, match=r"hub:nyu-mll/glue:sst2/test:1: label -1 .*task\.hub_splits"):
        load(overrides[:-2], tmp_path, use_hub=True)
    with pytest.raises(ConfigError, match="data.use_hub"):
        load(overrides, tmp_path, use_hub=False)


def test_offline_hub_error_names_the_id(tmp_path, monkeypatch):
    def offline(*args):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"Hugging Face dataset 'nyu-mll/glue' \(config 'stsb'\) could not be loaded"):
        load(["task=pair_regression", "task.hub_id=nyu-mll/glue", "task.hub_config=stsb"], tmp_path, use_hub=True)


@pytest.mark.parametrize("text, reference", [
    ("hub:stanfordnlp/imdb", HubRef("stanfordnlp/imdb", None, "test")),
    ("hub:nyu-mll/glue:sst2@validation", HubRef("nyu-mll/glue", "sst2", "validation")),
    ("hub:tweet_eval@train", HubRef("tweet_eval", None, "train")),
])
def test_hub_references(text, reference):
    assert parse_hub_ref(text, "k") == reference and str(reference).startswith("hub:")


def test_extra_test_from_the_hub(trec_root, monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *args: datasets.DatasetDict({
        "test": datasets.Dataset.from_dict({"text": ["Who is she ?"], "label": ["HUM:ind"]})}))
    splits = load([*TREC, "task.max_tokens=2", "+task.extra_test.web=hub:someone/questions"], trec_root)
    assert splits.extra_test["web"].source == "hub:someone/questions@test"
    # cut to task.max_tokens like the task's own splits
    assert [(e.id, e.texts, e.label) for e in splits.extra_test["web"].examples] == [
        ("extra_web-1", (("Who", "is"),), "HUM:ind")]
    with pytest.raises(DataError, match=r"task\.extra_test\.web: .* has no split 'dev'"):
        load([*TREC, "+task.extra_test.web=hub:someone/questions@dev"], trec_root)


def test_an_extra_test_set_sampled_down_by_its_key(trec_root):
    lines = [f"HUM:ind question {i} ?" for i in range(10)]
    write(trec_root / "web/questions.txt", "\n".join(lines) + "\n", encoding="latin-1")
    extra = ["+task.extra_test.web=web/questions.txt", "+task.extra_test_max_examples.web=4"]
    first = load([*TREC, *extra, "task.extra_test_seed=3"], trec_root).extra_test["web"]
    again = load([*TREC, *extra, "task.extra_test_seed=3"], trec_root).extra_test["web"]
    other = load([*TREC, *extra, "task.extra_test_seed=4"], trec_root).extra_test["web"]
    ids = [e.id for e in first.examples]
    assert len(ids) == 4 and ids == sorted(ids, key=lambda i: int(i.split("-")[1]))  # kept in file order
    assert ids == [e.id for e in again.examples] and ids != [e.id for e in other.examples]
    assert {e.texts[0][1] for e in first.examples} == {str(int(i.split("-")[1]) - 1) for i in ids}  # ids count lines from 1
    assert (first.details["examples"], first.details["examples_read"], first.details["as_read"]["examples"]) == (4, 10, 10)
    assert (first.details["max_examples"], first.details["sample_seed"]) == (4, 3)
    everything = load([*TREC, "+task.extra_test.web=web/questions.txt", "+task.extra_test_max_examples.web=10"],
                      trec_root).extra_test["web"]
    assert len(everything.examples) == 10 and "examples_read" not in everything.details
    with pytest.raises(ConfigError, match=re.escape("'task.extra_test_max_examples.tweets'")):
        make_config([*TREC, *extra, "+task.extra_test_max_examples.tweets=2"])


def test_missing_extra_test_file_names_the_key(trec_root):
    with pytest.raises(DataError, match=r"task\.extra_test\.tweets: data file not found: .*tweets\.label"):
        load([*TREC, "+task.extra_test.tweets=trec/tweets.label"], trec_root)


# --- end to end: one run per family, with an extra test set ------------------------------------------------

def run_with_extra_test(overrides: list[str], root: Path, tmp_path: Path, monkeypatch, extra: str) -> tuple:
    # BiDAF's head has no lstm_layers key
    fast = [o for o in FAST if not o.startswith("head.lstm_layers") or "task=span_qa" not in overrides]
    config = make_config([*offline_overrides(root, tmp_path, monkeypatch), *fast, "trainer.max_epochs=1",
                          *overrides, f"+task.extra_test.ood={extra}"])
    result = run(config)
    folder = cell_dir(config)
    entry = result["extra_test"]["ood"]
    assert entry["predictions"] == "predictions/extra_ood.jsonl.gz" and entry["source"] == str(root / extra)
    assert entry["score"] == entry["metrics"][result["metric"]]
    assert recompute_metrics.main([str(folder)]) == 0
    return result, read_predictions(folder, entry["predictions"])


@pytest.mark.slow
def test_run_classification_with_an_extra_test(trec_root, tmp_path, monkeypatch):
    write(trec_root / "web/questions.txt", "HUM:ind who is she\nLOC:city where is it\nDESC:def what is it\n",
          encoding="latin-1")
    result, rows = run_with_extra_test([*TREC, "task.label_parts=1"], trec_root, tmp_path, monkeypatch,
                                       "web/questions.txt")
    assert (result["task"], result["dataset"]) == ("train_5500", "train_5500")
    assert [r["gold"] for r in rows] == ["HUM", "LOC", "DESC"]
    expected = 100 * sum(r["gold"] == r["pred"] for r in rows) / 3
    assert result["extra_test"]["ood"]["score"] == pytest.approx(expected, abs=1e-3)


@pytest.mark.slow
def test_run_conllu_tagging_with_an_extra_test(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write(root / "ud/train.conllu", CONLLU * 4)
    write(root / "ud/dev.conllu", CONLLU)
    write(root / "other/test.conllu", CONLLU)
    result, rows = run_with_extra_test(["task=tagging", "task.format=conllu", "task.train_file=ud/train.conllu",
                                        "task.dev_file=ud/dev.conllu", "task.test_file=ud/dev.conllu"],
                                       root, tmp_path, monkeypatch, "other/test.conllu")
    assert result["dataset"] == "ud" and rows[0]["gold"] == ["PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT"]


@pytest.mark.slow
def test_run_pairs_from_a_split_column_with_an_extra_test(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write(root / "sick/SICK.txt", SICK_HEADER + sick_rows(40))
    write(root / "other/pairs.tsv", SICK_HEADER + sick_rows(9, start=100))
    result, rows = run_with_extra_test(SICK, root, tmp_path, monkeypatch, "other/pairs.tsv")
    expected = 100 * stats.pearsonr([r["gold"] for r in rows], [r["pred"] for r in rows])[0]
    assert len(rows) == 9 and result["extra_test"]["ood"]["score"] == pytest.approx(expected, abs=1e-3)
    assert all(1 <= r["pred"] <= 5 for r in rows)


@pytest.mark.slow
def test_run_squad_format_files_with_an_extra_test(tmp_path, monkeypatch):
    root = tmp_path / "data"
    squad_file(root / "med/train.json", "med", paragraphs=6)
    squad_file(root / "med/test.json", "medtest", paragraphs=2)
    squad_file(root / "law/test.json", "law", paragraphs=2)
    result, rows = run_with_extra_test(["task=span_qa", "task.train_file=med/train.json",
                                        "task.test_file=med/test.json", "task.dev_size=2", "head.hidden_dim=8"],
                                       root, tmp_path, monkeypatch, "law/test.json")
    assert result["dataset"] == "med" and [r["id"] for r in rows] == ["law-0-0", "law-0-1", "law-1-0", "law-1-1"]
