"""Stanford Sentiment Treebank trees (the trainDevTestTrees_PTB format): one labelled, binarized tree per line.

    (3 (2 (2 The) (2 Rock)) (4 (3 (2 is) ...) (2 .)))

Every node is `(label children)`, and a leaf node is `(label word)`. For sentence classification the
sentence is the leaves (tokens, PTB-escaped) and its label is the root's.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError
from .errors import read_text_lines

# The PTB tokenizer's escapes, undone. Quotes become a plain `"`: that is how ELMo's training text
# (1B Word Benchmark) writes them, so the biLM knows `"` and has rarely seen `` or ''.
PTB_ESCAPES = {
    "-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
    "``": '"', "''": '"',
}
# Within words the PTB escapes `/` and `*` with a backslash: `1\/2`, `\*\*\*`.
_BACKSLASHED = re.compile(r"\\([/*])")
# Brackets, or a run of anything else up to an ASCII space or bracket. Only ASCII spaces separate
# words: one leaf of train.txt is "2\xa01\/2" (a no-break space inside the word).
_TREE_TOKEN = re.compile(r"[()]|[^ ()]+")


class TreeError(ValueError):
    """A line that is not one well-formed labelled tree."""


@dataclass(frozen=True)
class LabelledSentence:
    line: int  # 1-based line number in the file
    tokens: tuple[str, ...]
    label: str  # the root's label, as written


@dataclass
class _Node:
    label: str | None = None
    has_word: bool = False
    subtrees: int = 0


def unescape_ptb(word: str) -> str:
    return PTB_ESCAPES.get(word) or _BACKSLASHED.sub(r"\1", word)


def parse_tree(text: str, labels: Collection[str]) -> tuple[str, list[str]]:
    """(root label, unescaped leaves) of one tree; every node's label must be in `labels`."""
    stack: list[_Node] = []
    leaves: list[str] = []
    root_label = None
    for token in _TREE_TOKEN.findall(text):
        if root_label is not None:
            raise TreeError(f"text after the end of the tree: {token!r}")
        if token == "(":
            if stack:
                _add_subtree(stack[-1])
            stack.append(_Node())
        elif token == ")":
            if not stack:
                raise TreeError("unbalanced brackets: a ')' closes nothing")
            node = stack.pop()
            if node.label is None or not (node.has_word or node.subtrees):
                raise TreeError("an empty node: '(' must be followed by a label and a word or subtrees")
            if not stack:
                root_label = node.label
        elif not stack:
            raise TreeError(f"text outside the tree: {token!r}")
        elif stack[-1].label is None:
            if token not in labels:
                raise TreeError(f"label {token!r} is not one of {', '.join(sorted(labels))}")
            stack[-1].label = token
        else:
            _add_word(stack[-1])
            leaves.append(unescape_ptb(token))
    if stack:
        raise TreeError(f"unbalanced brackets: {len(stack)} '(' never closed")
    if root_label is None:
        raise TreeError("no tree on the line")
    return root_label, leaves


def _add_subtree(parent: _Node) -> None:
    if parent.label is None:
        raise TreeError("a node starts with '(' where its label should be")
    if parent.has_word:
        raise TreeError("a node holds both a word and subtrees")
    parent.subtrees += 1


def _add_word(node: _Node) -> None:
    if node.has_word:
        raise TreeError("a leaf node holds more than one word")
    if node.subtrees:
        raise TreeError("a node holds both a word and subtrees")
    node.has_word = True


def read_sst_trees(path: str | Path, labels: Collection[str], encoding: str = "utf-8") -> list[LabelledSentence]:
    """One sentence per tree line (blank lines are skipped); a malformed tree names its file and line."""
    sentences = []
    for number, line in enumerate(read_text_lines(path, encoding), start=1):
        if not line.strip():
            continue
        try:
            label, leaves = parse_tree(line, labels)
        except TreeError as error:
            raise DataFormatError(path, number, f"not an SST tree: {error}") from None
        sentences.append(LabelledSentence(number, tuple(leaves), label))
    return sentences
