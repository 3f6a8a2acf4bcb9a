"""SQuAD v1.1: the official JSON (or the hub's flat rows) as articles, and answers mapped onto tokens.

    {"version": "1.1", "data": [{"title": ..., "paragraphs": [{"context": ...,
        "qas": [{"id": ..., "question": ..., "answers": [{"answer_start": 177, "text": "Denver Broncos"}, ...]}]}]}]}

An answer is a character offset into its paragraph's context plus its text. `TokenizedContext.token_span`
turns it into the first and last context token it covers, or says why it cannot: the offset lies outside
the context, the context there does not read the answer text, or the (whitespace-trimmed) text starts or
ends inside a token (e.g. "gold" in "gold-themed", which the tokenizer keeps as one token).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import DataFormatError
from .errors import check_no_control, existing_file

# Why an answer could not be placed on tokens (keys of the counts recorded in result.json).
OUTSIDE_CONTEXT = "offset_outside_context"
TEXT_MISMATCH = "text_mismatch"
OFF_TOKEN_BOUNDARIES = "not_on_token_boundaries"
ALIGNMENT_PROBLEMS = (OUTSIDE_CONTEXT, TEXT_MISMATCH, OFF_TOKEN_BOUNDARIES)


@dataclass(frozen=True)
class Answer:
    start: int  # character offset of the answer in the context
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class Paragraph:
    context: str
    questions: tuple[Question, ...]
    where: str  # JSON path of the paragraph, for messages: data[3].paragraphs[2]


@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True)
class Alignment:
    span: Optional[tuple[int, int]]  # first and last token (inclusive), or None
    problem: Optional[str] = None  # one of ALIGNMENT_PROBLEMS when span is None


def read_squad(path: str | Path, encoding: str = "utf-8") -> list[Article]:
    """The file's articles; malformed JSON or a missing/mistyped key is a DataFormatError naming the file."""
    path = existing_file(path)
    try:
        raw = json.loads(path.read_bytes().decode(encoding).removeprefix("\ufeff"))  # editors on Windows add a BOM
    except UnicodeDecodeError as error:
        raise DataFormatError(path, None, f"not valid {encoding} ({error.reason} at byte {error.start}); set"
                                          " task.encoding to the file's encoding") from None
    except json.JSONDecodeError as error:
        raise DataFormatError(path, error.lineno, f"not valid JSON ({error.msg}, column {error.colno})") from None
    return articles_from_json(raw, path)


def articles_from_json(raw: Any, source: str | Path) -> list[Article]:
    articles = [
        Article(
            _field(article, "title", str, f"data[{a}]", source),
            tuple(_paragraph(paragraph, f"data[{a}].paragraphs[{p}]", source)
                  for p, paragraph in enumerate(_field(article, "paragraphs", list, f"data[{a}]", source))),
        )
        for a, article in enumerate(_field(raw, "data", list, "the top level", source))
    ]
    if not articles:
        raise DataFormatError(source, None, "'data' holds no articles")
    check_unique_questions(articles, source)
    return articles


def check_unique_questions(articles: Sequence[Article], source) -> None:
    """Question ids key the predictions and the official scorer's answers: one id twice in a file loses one."""
    first: dict[str, str] = {}
    for article in articles:
        for paragraph in article.paragraphs:
            for question in paragraph.questions:
                if question.id in first:
                    raise DataFormatError(source, None, f"{paragraph.where}: question id {question.id!r} occurs"
                                                        f" again (first in {first[question.id]}); ids must be unique")
                first[question.id] = paragraph.where


def _paragraph(raw: Any, where: str, source) -> Paragraph:
    context = _field(raw, "context", str, where, source)
    if not context.strip():
        raise DataFormatError(source, None, f"{where}: the context is empty")
    questions = []
    for q, qa in enumerate(_field(raw, "qas", list, where, source)):
        qa_where = f"{where}.qas[{q}]"
        qid = _field(qa, "id", str, qa_where, source)
        qa_where += f" (id {qid})"
        answers = tuple(
            Answer(_field(answer, "answer_start", int, f"{qa_where}.answers[{n}]", source),
                   _field(answer, "text", str, f"{qa_where}.answers[{n}]", source))
            for n, answer in enumerate(_field(qa, "answers", list, qa_where, source))
        )
        if not answers:  # v2.0's unanswerable questions have none; v1.1 has no such questions
            raise DataFormatError(source, None, f"{qa_where}: no answers (SQuAD v1.1 questions have at least one)")
        questions.append(Question(qid, _field(qa, "question", str, qa_where, source), answers))
    return Paragraph(context, tuple(questions), where)


def _field(node: Any, key: str, kind: type, where: str, source) -> Any:
    if not isinstance(node, Mapping):
        raise DataFormatError(source, None, f"{where}: expected an object, got {type(node).__name__}")
    if key not in node:
        raise DataFormatError(source, None, f"{where}: missing key '{key}'")
    value = node[key]
    # bool is an int to Python, but never a valid offset
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataFormatError(source, None, f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    if kind is str:  # JSON may escape one (\u0000), which no line check sees
        check_no_control(source, None, value, f" in {where}.{key}")
    return value


def articles_from_rows(rows: Iterable[Mapping], source: str) -> list[Article]:
    """The hub's flat rows (id, title, context, question, answers {text: [...], answer_start: [...]}) regrouped
    into articles and paragraphs, in order of first appearance, then checked like the JSON file."""
    articles: dict[str, dict[str, list]] = {}
    for row in rows:
        answers = row["answers"]
        qa = {"id": row["id"], "question": row["question"],
              "answers": [{"answer_start": s, "text": t} for s, t in zip(answers["answer_start"], answers["text"])]}
        articles.setdefault(row["title"], {}).setdefault(row["context"], []).append(qa)
    raw = {"data": [{"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
                    for title, paragraphs in articles.items()]}
    return articles_from_json(raw, source)


class TokenizedContext:
    """A context with its tokens' character offsets, able to place answers on those tokens."""

    def __init__(self, context: str, offsets: Sequence[tuple[int, int]]):
        self.context = context
        self.first_at = {start: i for i, (start, _) in enumerate(offsets)}  # token starting at a character
        self.last_at = {end: i for i, (_, end) in enumerate(offsets)}  # token ending just before a character

    def token_span(self, answer: Answer) -> Alignment:
        """The answer's first and last token, or why there are none."""
        end = answer.start + len(answer.text)
        if answer.start < 0 or end > len(self.context):
            return Alignment(None, OUTSIDE_CONTEXT)
        if self.context[answer.start:end] != answer.text:
            return Alignment(None, TEXT_MISMATCH)
        # Annotators sometimes selected a space before or after the answer; the tokens never hold it.
        start = answer.start + len(answer.text) - len(answer.text.lstrip())
        end -= len(answer.text) - len(answer.text.rstrip())
        first, last = self.first_at.get(start), self.last_at.get(end)
        if first is None or last is None or last < first:
            return Alignment(None, OFF_TOKEN_BOUNDARIES)
        return Alignment((first, last))
