"""A small PTB-like word tokenizer that keeps character offsets (needed to map QA spans back to text).

ELMo's biLM was trained on tokenized news text (1B Word Benchmark): words and punctuation split,
clitics such as n't and 's separate. This regex reproduces that closely enough for raw-text tasks.
"""
from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
    \w+(?=n't\b|'(?:s|re|ve|ll|d|m)\b)   # "do" of "don't", "it" of "it's": the clitic comes next
    | n't\b | '(?:s|re|ve|ll|d|m)\b    # clitics
    | \d+(?:[.,:/]\d+)+       # numbers and times: 3.5, 1,000, 12:30, 1/2
    | \w+(?:[-.']\w+)*        # words, hyphenated words, abbreviations with inner dots
    | \.\.\.                  # ellipsis
    | \S                      # any other single non-space character
    """,
    re.VERBOSE | re.IGNORECASE,
)


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) with text[start:end] == token."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def tokenize(text: str) -> tuple[str, ...]:
    return tuple(m.group() for m in _TOKEN.finditer(text))
