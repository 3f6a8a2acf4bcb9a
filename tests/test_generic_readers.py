"""The generic file readers on small files written here, awkward cases included: CoNLL-U comments, multiword
ranges and empty nodes; CSV quoting, TSV quotes, JSON lines; labelled lines in latin-1; errors naming file,
line and config key. Expected values are written out by hand from the files, not taken from the code."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from elmo_bench.data.carve import carve_dev
from elmo_bench.data.conllu import read_conllu
from elmo_bench.errors import DataError, DataFormatError
from elmo_bench.data.labelled import label_prefix, labelled_rows, read_labelled_lines
from elmo_bench.data.naming import dataset_name, stock_dataset
from elmo_bench.data.tables import read_table, rows_by_split


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def conllu_line(*fields: str) -> str:
    return "\t".join(fields)


# Two German sentences in UD style: a multiword token (zum = zu dem), an empty node (1.1), comments.
CONLLU = "\n".join([
    "# newdoc id = demo",
    "# sent_id = 1",
    "# text = Er ging zum Markt.",
    conllu_line("1", "Er", "er", "PRON", "PPER", "_", "2", "nsubj", "_", "_"),
    conllu_line("2", "ging", "gehen", "VERB", "VVFIN", "_", "0", "root", "_", "_"),
    conllu_line("3-4", "zum", "_", "_", "_", "_", "_", "_", "_", "_"),
    conllu_line("3", "zu", "zu", "ADP", "APPR", "_", "5", "case", "_", "_"),
    conllu_line("4", "dem", "der", "DET", "ART", "_", "5", "det", "_", "_"),
    conllu_line("5", "Markt", "Markt", "NOUN", "NN", "_", "2", "obl", "_", "SpaceAfter=No"),
    conllu_line("6", ".", ".", "PUNCT", "$.", "_", "2", "punct", "_", "_"),
    "",
    "# sent_id = 2",
    conllu_line("1", "Sie", "sie", "PRON", "PPER", "_", "0", "root", "_", "_"),
    conllu_line("1.1", "ging", "gehen", "VERB", "_", "_", "_", "_", "0:root", "_"),
    conllu_line("2", "auch", "auch", "ADV", "ADV", "_", "1", "advmod", "_", "_"),
    conllu_line("3", ".", ".", "PUNCT", "$.", "_", "1", "punct", "_", "_"),
    "",
]) + "\n"


def test_conllu_words_not_ranges_nor_empty_nodes(tmp_path):
    sentences = read_conllu(write(tmp_path / "de.conllu", CONLLU))
    assert [s.tokens for s in sentences] == [("Er", "ging", "zu", "dem", "Markt", "."), ("Sie", "auch", ".")]
    assert [s.labels for s in sentences] == [("PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT"), ("PRON", "ADV", "PUNCT")]
    assert [s.line for s in sentences] == [4, 13]


def test_conllu_xpos(tmp_path):
    sentences = read_conllu(write(tmp_path / "de.conllu", CONLLU), tag_field="xpos")
    assert sentences[0].labels == ("PPER", "VVFIN", "APPR", "ART", "NN", "$.")


@pytest.mark.parametrize("change, line, message", [
    # a comment that lost its '#': one field, not ten
    (lambda text: text.replace("# sent_id = 2", "sent_id = 2"), 12, "expected 10 tab-separated CoNLL-U fields,"
                                                                    " found 1"),
    # fields separated by spaces
    (lambda text: text.replace(conllu_line("2", "auch"), "2 auch"), 15, "found 9"),
    # a missing blank line: the next sentence's words would silently join this one
    (lambda text: text.replace("\n\n# sent_id = 2", "\n# sent_id = 2"), 12, "word ID 1 out of order: expected 7"),
    (lambda text: text.replace("3-4\tzum", "3–4\tzum"), 6, "ID '3–4' is not a word number"),
])
def test_conllu_errors_name_the_line(tmp_path, change, line, message):
    path = write(tmp_path / "bad.conllu", change(CONLLU))
    with pytest.raises(DataFormatError, match=re.escape(f"bad.conllu:{line}: ") + ".*" + re.escape(message)):
        read_conllu(path)


def test_conllu_missing_xpos_names_the_key(tmp_path):
    path = write(tmp_path / "en.conllu", conllu_line("1", "Hi", "hi", "INTJ", "_", "_", "0", "root", "_", "_") + "\n")
    with pytest.raises(DataFormatError, match=r"en\.conllu:1: no XPOS tag .*task\.tag_field=xpos"):
        read_conllu(path, tag_field="xpos")
    with pytest.raises(DataError, match="no sentences"):
        read_conllu(write(tmp_path / "empty.conllu", "# only a comment\n\n"))


# --- tables ------------------------------------------------------------------------------------------------

def test_csv_quoting_and_columns_by_name_or_index(tmp_path):
    path = write(tmp_path / "a.csv", 'label,text\npos,"Good, really ""good"""\nneg,"two\nlines"\nneg,plain\n')
    table = read_table(path, "csv")
    rows = labelled_rows(table, "text", "label")
    assert [(r.line, r.text, r.label) for r in rows] == [
        (2, 'Good, really "good"', "pos"), (3, "two\nlines", "neg"), (5, "plain", "neg")]
    assert [r.text for r in labelled_rows(table, "1", "0")] == [r.text for r in rows]
    headless = read_table(write(tmp_path / "b.csv", "pos,fine\n"), "csv", header=False)
    assert labelled_rows(headless, "1", "0")[0].text == "fine"


def test_a_headerless_tsv_may_have_rows_of_several_widths(tmp_path):
    """The original STS Benchmark files add two optional source columns to some rows."""
    path = write(tmp_path / "sts.tsv", "main\tMSRvid\t2012\t1\t5.0\tA man.\tA man!\n"
                                       "main\tnews\t2015\t2\t1.4\tA cat.\tA dog.\tsrc-a\tsrc-b\n"
                                       "main\tnews\t2015\t3\t1.4\n")
    table = read_table(path, "tsv", header=False)
    score, second = table.column("4", "task.score_column"), table.column("6", "task.sentence2_column")
    assert [score(row) for row in table.rows] == ["5.0", "1.4", "1.4"]
    assert [second(row) for row in table.rows[:2]] == ["A man!", "A dog."]
    with pytest.raises(DataFormatError, match=r"sts\.tsv:3: no column 6 \(task\.sentence2_column\): the row has 5"):
        second(table.rows[2])


def test_tsv_keeps_quotes_as_text_and_jsonl_fields(tmp_path):
    tsv = read_table(write(tmp_path / "a.tsv", 'text\tlabel\nHe said "hi\tgreeting\n'), "tsv")
    assert labelled_rows(tsv, "text", "label")[0].text == 'He said "hi'
    jsonl = read_table(write(tmp_path / "a.jsonl", '{"text": "caf\\u00e9", "label": 3}\n\n{"text": "b", "label": 1}\n'),
                       "jsonl")
    rows = labelled_rows(jsonl, "text", "label")
    assert [(r.line, r.text, r.label) for r in rows] == [(1, "café", "3"), (3, "b", "1")]


@pytest.mark.parametrize("name, text, fmt, column, pattern", [
    ("a.csv", "label,text\npos,x\n", "csv", "sentence",
     r"a\.csv:1: no column 'sentence' \(task\.text_column\): the header has label, text"),
    ("b.csv", "pos,x\n", "csv", "text", r"b\.csv:1: no column 'text' \(task\.text_column\): the file has no header"),
    ("c.jsonl", '{"text": "x", "label": 1}\n{"label": 2}\n', "jsonl", "text",
     r"c\.jsonl:2: no field 'text' \(task\.text_column\)"),
    ("d.tsv", "text\tlabel\nx\t1\ny\n", "tsv", "text",
     r"d\.tsv:3: expected 2 TSV columns \(as in the header\), found 1"),
    ("e.jsonl", '{"text": "x", "label": 1}\n{"text": "y", label: 2}\n', "jsonl", "text", r"e\.jsonl:2: not valid JSON"),
    ("f.jsonl", '["x", 1]\n', "jsonl", "text", r"f\.jsonl:1: expected a JSON object, got list"),
])
def test_table_errors_name_file_line_and_key(tmp_path, name, text, fmt, column, pattern):
    with pytest.raises(DataFormatError, match=pattern):
        labelled_rows(read_table(write(tmp_path / name, text), fmt, header=name != "b.csv"), column, "label")


def test_rows_by_split_and_an_unknown_split_value(tmp_path):
    table = read_table(write(tmp_path / "s.tsv", "s\tset\na\tTRAIN\nb\tTEST\nc\tTRAIN\nd\tTRIAL\n"), "tsv")
    column = table.column("set", "task.split_column")
    grouped = rows_by_split(table, column, {"train": "TRAIN", "dev": "TRIAL", "test": "TEST"}, "task.split_column")
    assert {split: [r.line for r in rows] for split, rows in grouped.items()} == {"train": [2, 4], "dev": [5],
                                                                                  "test": [3]}
    with pytest.raises(DataFormatError, match=r"s\.tsv:5: split 'TRIAL' \(task\.split_column\) is not one of"):
        rows_by_split(table, column, {"train": "TRAIN", "dev": None, "test": "TEST"}, "task.split_column")


# --- labelled lines ----------------------------------------------------------------------------------------

TREC_LINES = "DESC:manner How did serfdom develop in and then leave Russia ?\nHUM:ind Who was Pelé ?\n\n"
PATTERN = r"^(?P<label>\S+)\s+(?P<text>.+)$"


def test_labelled_lines_in_latin1(tmp_path):
    path = write(tmp_path / "trec.label", TREC_LINES, encoding="latin-1")
    rows = read_labelled_lines(path, PATTERN, "latin-1")
    assert [(r.line, r.label, r.text) for r in rows] == [
        (1, "DESC:manner", "How did serfdom develop in and then leave Russia ?"), (2, "HUM:ind", "Who was Pelé ?")]
    with pytest.raises(DataFormatError, match=r"trec\.label:2: not valid utf-8 .*set task\.encoding"):
        read_labelled_lines(path, PATTERN)


def test_a_line_the_pattern_does_not_match_is_an_error(tmp_path):
    path = write(tmp_path / "t.label", "DESC:manner How ?\nno-text-here\n")
    with pytest.raises(DataFormatError, match=r"t\.label:2: the line does not match task\.line_pattern"):
        read_labelled_lines(path, PATTERN)


@pytest.mark.parametrize("parts, expected", [(None, "ENTY:animal"), (1, "ENTY"), (2, "ENTY:animal"),
                                             (5, "ENTY:animal")])
def test_label_prefix(parts, expected):
    assert label_prefix("ENTY:animal", ":", parts) == expected


# --- dev carve and names -----------------------------------------------------------------------------------

def test_carve_is_seeded_disjoint_and_complete():
    pool = list(range(50))
    train, dev, record = carve_dev(pool, 0.2, seed=3, what="t")
    assert record == {"size": 10, "seed": 3, "pool_size": 50} and len(dev) == 10
    assert sorted(train + dev) == pool and carve_dev(pool, 0.2, 3, "t")[1] == dev != carve_dev(pool, 0.2, 4, "t")[1]
    with pytest.raises(DataError, match="task.dev_size=50 leaves no dev or no training examples"):
        carve_dev(pool, 50, 0, "t")


@pytest.mark.parametrize("sources, name", [
    (("data/tweets/train.txt",), "tweets"), (("trec/train_5500.label",), "train_5500"),
    ((None, "sst2", "nyu-mll/glue"), "sst2"), ((None, None, "stanfordnlp/imdb"), "imdb"), (("TEST.tsv",), "TEST"),
])
def test_dataset_name(sources, name):
    assert dataset_name(*sources) == name


def test_stock_name_only_for_the_stock_file():
    assert stock_dataset("conll2003", "conll2003/eng.train", "conll2003/eng.train") == "conll2003"
    assert stock_dataset("conll2003", "wnut/train.conll", "conll2003/eng.train") == "wnut"
    assert stock_dataset("sst5", None, None) == "sst5"
