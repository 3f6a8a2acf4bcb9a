"""CoNLL-U treebanks (Universal Dependencies) for tagging: ten tab-separated fields per line.

    # sent_id = 2                      <- comments: skipped
    1     Er      er     PRON  PPER  ...
    2-3   zum     _      _     _     ...   <- a multiword token (an ID range): skipped; its words follow
    2     zu      zu     ADP   APPR  ...
    3     dem     der    DET   ART   ...
    3.1   ging    gehen  VERB  _     ...   <- an empty node (enhanced dependencies): not a word; skipped
                                           <- a blank line ends the sentence

Fields: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC. The tagged units are the syntactic words, as
UD's own POS scores count them. Their IDs must run 1, 2, 3 ... in each sentence, so a line misread as a
word (a comment that lost its '#', a line of another format) is an error naming its line, never a token.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from .conll import TaggedSentence
from ..errors import DataError, DataFormatError
from .errors import read_text_lines

FIELDS = 10
TAG_FIELDS = {"upos": 3, "xpos": 4}  # task.tag_field -> field index
_WORD_ID = re.compile(r"[1-9]\d*")
_SKIPPED_ID = re.compile(r"[1-9]\d*-[1-9]\d*|\d+\.[1-9]\d*")  # a multiword range, or an empty node


def read_conllu(path: str | Path, tag_field: str = "upos", encoding: str = "utf-8") -> list[TaggedSentence]:
    """The file's sentences: each word's FORM and its UPOS or XPOS tag."""
    if tag_field not in TAG_FIELDS:
        raise ValueError(f"unknown CoNLL-U tag field {tag_field!r}; expected one of {', '.join(TAG_FIELDS)}")
    sentences = []
    for block in _sentence_blocks(path, read_text_lines(path, encoding)):
        tokens = tuple(fields[1] for _, fields in block)
        tags = tuple(_tag(path, number, fields, tag_field) for number, fields in block)
        sentences.append(TaggedSentence(tokens, tags, line=block[0][0], token_lines=tuple(n for n, _ in block)))
    if not sentences:
        raise DataError(f"{path}: no sentences (empty, or only comments and blank lines)")
    return sentences


def _sentence_blocks(path, lines: list[str]) -> Iterator[list[tuple[int, list[str]]]]:
    """Each sentence's words as (line number, fields); ranges, empty nodes and comments left out."""
    block: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if block:
                yield block
            block = []
        elif not line.startswith("#"):
            fields = line.split("\t")
            if len(fields) != FIELDS:
                raise DataFormatError(path, number, f"expected {FIELDS} tab-separated CoNLL-U fields, found"
                                                    f" {len(fields)}")
            if _is_word(path, number, fields[0], expected=len(block) + 1):
                block.append((number, fields))
    if block:
        yield block


def _is_word(path, number: int, word_id: str, expected: int) -> bool:
    if _SKIPPED_ID.fullmatch(word_id):
        return False
    if not _WORD_ID.fullmatch(word_id):
        raise DataFormatError(path, number, f"ID {word_id!r} is not a word number, a range (3-4) or an empty node"
                                            " (8.1)")
    if int(word_id) != expected:
        raise DataFormatError(path, number, f"word ID {word_id} out of order: expected {expected} (IDs run 1, 2, 3"
                                            " ... within a sentence, and a blank line ends it)")
    return True


def _tag(path, number: int, fields: list[str], tag_field: str) -> str:
    tag = fields[TAG_FIELDS[tag_field]]
    if tag == "_":
        raise DataFormatError(path, number, f"no {tag_field.upper()} tag ('_') for {fields[1]!r} (task.tag_field="
                                            f"{tag_field}; the other tag field may be filled)")
    return tag
