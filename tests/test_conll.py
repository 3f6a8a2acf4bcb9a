import itertools
import os
from collections import Counter
from pathlib import Path

import pytest

from elmo_bench.data.conll import TaggedSentence, iob1_to_iob2, read_column_file
from elmo_bench.errors import DataError, DataFormatError

DATA = Path(os.environ.get("ELMO_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CONLL = DATA / "conll2003"
needs_conll = pytest.mark.skipif(not (CONLL / "eng.train").is_file(), reason=f"CoNLL-2003 not found in {CONLL}")

NER_TYPES = {"PER", "LOC", "ORG", "MISC"}
# Tjong Kim Sang & De Meulder (2003), Table 2: entities per type in each English file.
PUBLISHED_ENTITIES = {
    "eng.train": {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600},
    "eng.testa": {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842},
    "eng.testb": {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617},
}
# The 36 Penn Treebank word tags and the punctuation tags CoNLL-2003 uses (`"` for both quotes, no `#`).
PENN_WORD_TAGS = set(
    "CC CD DT EX FW IN JJ JJR JJS LS MD NN NNS NNP NNPS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH "
    "VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB".split()
)
CONLL_PUNCTUATION_TAGS = {'"', "''", "$", "(", ")", ",", ".", ":"}


@pytest.fixture(scope="module")
def ner():
    return {name: read_column_file(CONLL / name, token_column=0, label_column=3) for name in PUBLISHED_ENTITIES}


def _raw_ner_columns(path: Path) -> list[list[str]]:
    """The NER column of each sentence, straight from the text: no reader, no conversion."""
    blocks = path.read_text(encoding="ascii").split("\n\n")
    sentences = []
    for block in blocks:
        rows = [line.split() for line in block.splitlines() if line and not line.startswith("-DOCSTART-")]
        if rows:
            sentences.append([row[3] for row in rows])
    return sentences


def _count_iob1_chunks(tags: list[str]) -> int:
    """Chunks = runs of one non-O type, plus one more for each B- that splits a run (touching chunks)."""
    chunks = 0
    for chunk_type, run in itertools.groupby(tags, key=lambda tag: tag[2:]):
        if chunk_type:
            run = list(run)
            chunks += 1 + sum(tag.startswith("B-") for tag in run[1:])
    return chunks


# --- the real CoNLL-2003 files ---------------------------------------------------------------------------------


@needs_conll
@pytest.mark.parametrize(
    "name, sentences, tokens",
    [("eng.train", 14041, 203621), ("eng.testa", 3250, 51362), ("eng.testb", 3453, 46435)],
)
def test_sentence_and_token_counts(ner, name, sentences, tokens):
    assert len(ner[name]) == sentences
    assert sum(len(sentence.tokens) for sentence in ner[name]) == tokens
    assert all(len(sentence.tokens) == len(sentence.labels) > 0 for sentence in ner[name])


@needs_conll
@pytest.mark.parametrize("name", list(PUBLISHED_ENTITIES))
def test_ner_labels_are_iob2_over_four_types(ner, name):
    labels = {label for sentence in ner[name] for label in sentence.labels}
    assert labels == {"O"} | {f"{prefix}-{kind}" for prefix in "BI" for kind in NER_TYPES}
    for sentence in ner[name]:
        for previous, label in zip(("O",) + sentence.labels, sentence.labels):
            if label.startswith("I-"):
                assert previous[2:] == label[2:], (sentence.line, sentence.labels)


@needs_conll
@pytest.mark.parametrize("name", list(PUBLISHED_ENTITIES))
def test_entity_counts_match_raw_iob1_chunks_and_the_paper(ner, name):
    entities = Counter(label[2:] for sentence in ner[name] for label in sentence.labels if label.startswith("B-"))
    raw_chunks = sum(_count_iob1_chunks(tags) for tags in _raw_ner_columns(CONLL / name))
    assert sum(entities.values()) == raw_chunks
    assert dict(entities) == PUBLISHED_ENTITIES[name]


@needs_conll
def test_first_sentence_and_its_line(ner):
    assert ner["eng.train"][0] == TaggedSentence(
        tokens=("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."),
        labels=("B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"),
        line=3,  # line 1 is -DOCSTART-, line 2 is blank
    )


@needs_conll
def test_testb_separators_with_x_chunk_column_are_skipped():
    # testb writes `-DOCSTART- -X- -X- O`; neither the marker nor its -X- tags may leak into sentences.
    chunks = read_column_file(CONLL / "eng.testb", label_column=2)
    assert not any("-DOCSTART-" in sentence.tokens for sentence in chunks)
    assert all(label == "O" or label[:2] in ("B-", "I-") for sentence in chunks for label in sentence.labels)


@needs_conll
def test_pos_column_gives_penn_tags():
    pos = read_column_file(CONLL / "eng.train", label_column=1, scheme="none")
    tags = Counter(label for sentence in pos for label in sentence.labels)
    # One quirk: four tokens carry the combined tag NN|SYM.
    assert set(tags) == PENN_WORD_TAGS | CONLL_PUNCTUATION_TAGS | {"NN|SYM"}
    assert len(tags) == 45
    assert tags["NN|SYM"] == 4
    assert tags["-X-"] == 0  # the separators' POS


# --- hand-made files -------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str | bytes, name: str = "tiny.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


TWO_SENTENCES = (
    "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n"
)


def test_two_sentences_with_lines(tmp_path):
    sentences = read_column_file(_write(tmp_path, TWO_SENTENCES))
    assert sentences == [
        TaggedSentence(("EU", "rejects"), ("B-ORG", "O"), line=3),
        TaggedSentence(("Peter", "Blackburn"), ("B-PER", "I-PER"), line=6),
    ]


def test_crlf_and_missing_final_newline_and_extra_blank_lines(tmp_path):
    text = "\n\n\n" + TWO_SENTENCES.replace("\n\nPeter", "\n\n\n\nPeter").rstrip("\n")
    expected = read_column_file(_write(tmp_path, text, "lf.txt"))
    crlf = read_column_file(_write(tmp_path, text.replace("\n", "\r\n") + "\r\n\r\n", "crlf.txt"))
    assert crlf == expected
    assert [sentence.tokens for sentence in crlf] == [("EU", "rejects"), ("Peter", "Blackburn")]
    assert [sentence.line for sentence in crlf] == [6, 11]


def test_byte_order_mark_is_ignored(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbf" + TWO_SENTENCES.encode())
    assert len(read_column_file(path)) == 2


@pytest.mark.parametrize(
    "separator",
    ["-DOCSTART- -X- O O", "-DOCSTART- -X- -X- O", "-DOCSTART-\tX\tO\tO"],
)
def test_docstart_variants(tmp_path, separator):
    text = TWO_SENTENCES.replace("-DOCSTART- -X- O O", separator)
    text += f"\n{separator}\n\nBonn NNP I-NP I-LOC\n"
    sentences = read_column_file(_write(tmp_path, text))
    assert [sentence.tokens for sentence in sentences] == [("EU", "rejects"), ("Peter", "Blackburn"), ("Bonn",)]


def test_docstart_without_blank_line_still_ends_sentence(tmp_path):
    text = "a x O\n-DOCSTART- -X- O\nb x O\n"
    assert [s.tokens for s in read_column_file(_write(tmp_path, text))] == [("a",), ("b",)]


def test_docstart_none_keeps_marker_as_token(tmp_path):
    sentences = read_column_file(_write(tmp_path, "-DOCSTART- O\n\nParis I-LOC\n"), docstart=None)
    assert [s.tokens for s in sentences] == [("-DOCSTART-",), ("Paris",)]


def test_wrong_column_count_names_file_line_and_counts(tmp_path):
    path = _write(tmp_path, "EU NNP I-NP I-ORG\nrejects VBZ O\n")
    with pytest.raises(DataFormatError) as caught:
        read_column_file(path)
    assert f"{path}:2:" in str(caught.value)
    assert "expected 4 columns" in str(caught.value) and "found 3" in str(caught.value)
    assert caught.value.line == 2


@pytest.mark.parametrize("keyword, index", [("label_column", 4), ("token_column", -5), ("label_column", 7)])
def test_column_out_of_range_names_file_line_and_index(tmp_path, keyword, index):
    path = _write(tmp_path, "\nEU NNP I-NP I-ORG\n")
    with pytest.raises(DataFormatError) as caught:
        read_column_file(path, **{keyword: index})
    assert f"{path}:2:" in str(caught.value)
    assert f"{keyword}={index}" in str(caught.value)


def test_non_utf8_byte_names_file_and_line(tmp_path):
    path = _write(tmp_path, b"EU I-ORG\n\nK\xf6ln I-LOC\n")
    with pytest.raises(DataFormatError) as caught:
        read_column_file(path)
    assert f"{path}:3:" in str(caught.value)


@pytest.mark.parametrize("text", ["", "\n\n", "\r\n", "-DOCSTART- -X- O O\n\n"])
def test_file_without_sentences(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match="no sentences") as caught:
        read_column_file(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_column_file(tmp_path / "absent.txt")


def test_bad_label_for_scheme_names_line(tmp_path):
    path = _write(tmp_path, "EU NNP\nrejects VBZ\n")
    with pytest.raises(DataFormatError, match="'NNP' is not a iob1 tag") as caught:
        read_column_file(path)
    assert caught.value.line == 1
    assert read_column_file(path, scheme="none")[0].labels == ("NNP", "VBZ")


def test_schemes_other_than_iob1_keep_labels(tmp_path):
    path = _write(tmp_path, "a I-PER\nb I-LOC\nc O\nd S-ORG\n")
    with pytest.raises(DataFormatError, match="'S-ORG'"):
        read_column_file(path, scheme="iob2")
    assert read_column_file(path, scheme="bioes")[0].labels == ("I-PER", "I-LOC", "O", "S-ORG")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        read_column_file(path, scheme="bilou")


# --- iob1_to_iob2 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iob1, iob2",
    [
        ([], []),
        (["I-PER"], ["B-PER"]),
        (["O", "I-PER", "I-PER", "O"], ["O", "B-PER", "I-PER", "O"]),
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),  # touching same-type chunks
        (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),  # type change opens a chunk
        (["B-MISC", "O"], ["B-MISC", "O"]),  # B- after O (2 cases in eng.train) stays B-
        (["I-B-X", "I-B-X"], ["B-B-X", "I-B-X"]),  # the type is everything after the first hyphen
    ],
)
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2


@pytest.mark.parametrize("label", ["PER", "E-PER", "B-", "i-PER", ""])
def test_iob1_to_iob2_rejects_non_iob_labels(label):
    with pytest.raises(ValueError, match=repr(label)):
        iob1_to_iob2(["O", label])
