"""Extractive question answering (SQuAD 1.1): a BiDAF head points at the answer span in the context.

    questions + contexts -> embedder, one call on 2B texts -> phrase BiLSTM (shared) -> Q (B, J, 2H), C (B, T, 2H)
    S_tj = w . [c_t; q_j; c_t * q_j]                      (B, T, J)  trilinear similarity
    c2q = softmax_j(S) Q ;  q2c = softmax_t(max_j S) C     (B, T, 2H), (B, 2H) repeated over T
    G = [C; c2q; C * c2q; C * q2c]                         (B, T, 8H)
    M = modelling BiLSTM(G)                                (B, T, 2H)
    start = w_s . [G; M] ;  m = softmax(start) M           (B, T), (B, 2H)
    E = end BiLSTM([G; M; m; M * m]) ;  end = w_e . [G; E] (B, T)
    answer = argmax over i <= j < i + max_answer_tokens of start_i + end_j

This is Seo et al.'s (2017) BiDAF as allennlp implements it, without the highway layers over the input
(the input is ELMo's mixed vectors and the run's word embeddings, not BiDAF's char-CNN + GloVe).

Which questions train and which evaluate (task.protocol):
  dev_split (default; only the official dev file is available offline): the dev file's articles are
      dealt with a seed into disjoint train/dev/test parts (task.offline_split), so no article, and no
      paragraph, is seen in training and evaluation both.
  official: the official training set trains; the official dev set is dealt by article into a dev part
      (early stopping) and a test part (reported) (task.official_split). Figures are therefore on half
      of the official dev set, not comparable digit for digit with published dev scores.
  files: your own SQuAD-format files: train_file, test_file, and dev_file or, without it, a dev split
      carved out of train by paragraph (task.dev_size counts paragraphs; questions on one context stay
      together), so a file of one "article" serves as well as one of many.
The first two read local files when present and fall back to the hub's train/validation splits; under
either, task.test_file (a SQuAD-format file, e.g. from another domain) replaces the dealt test part.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import MISSING
from torch import nn
from torch.nn import functional as F

from ..config import check, check_seed
from ..errors import DataError
from ..data.hub import load_hub_dataset
from ..data.squad import (ALIGNMENT_PROBLEMS, OUTSIDE_CONTEXT, Article, Paragraph, Question, TokenizedContext,
                          articles_from_rows, read_squad)
from ..data.tokenize import tokenize, tokenize_with_offsets
from .base import Example, Splits, Task, TaskConfig, TaskModel
from .layers import MaskedBiLSTM
from ..metrics.squad import squad_scores

log = logging.getLogger(__name__)

PROTOCOLS = ("dev_split", "official", "files")
SENTENCE_ENDS = (".", "!", "?")  # the trivial baseline answers with the context up to the first of these
HUB_SPLITS = {"train": "train", "dev": "validation"}


@dataclass
class OfflineSplitConfig:
    """protocol dev_split: how many of the dev file's articles go to each part (drawn with `seed`)."""

    train_articles: int = 32
    dev_articles: int = 8
    test_articles: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        for part in ("train", "dev", "test"):
            count = getattr(self, f"{part}_articles")
            check(count >= 1, f"task.offline_split.{part}_articles", f"must be >= 1, got {count}")
        check_seed(self.seed, "task.offline_split.seed")


@dataclass
class OfficialSplitConfig:
    """protocol official: the official dev set's articles -> dev (this many, drawn with `seed`) and test (the rest)."""

    dev_articles: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.dev_articles >= 1, "task.official_split.dev_articles", f"must be >= 1, got {self.dev_articles}")
        check_seed(self.seed, "task.official_split.seed")


@dataclass
class SpanQATaskConfig(TaskConfig):
    metric: str = "f1"  # f1 or exact_match (official SQuAD v1.1 rules)
    protocol: str = "dev_split"  # dev_split, official or files (see the module docstring)
    dev_file: Optional[str] = None  # dev_split: the file dealt into splits; official, files: the dev set
    train_file: Optional[str] = None  # official: the official training file; files: yours
    test_file: Optional[str] = None  # files: yours; dev_split, official: replaces the dealt test part
    offline_split: OfflineSplitConfig = field(default_factory=OfflineSplitConfig)
    official_split: OfficialSplitConfig = field(default_factory=OfficialSplitConfig)
    max_context_tokens: int = 400  # longer contexts are cut; answers past the cut cannot be predicted

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.metric in ("f1", "exact_match"), "task.metric", f"must be f1 or exact_match, got {self.metric}")
        check(self.protocol in PROTOCOLS, "task.protocol",
              f"must be one of {', '.join(PROTOCOLS)}, got {self.protocol}")
        check(self.max_context_tokens >= 1, "task.max_context_tokens", f"must be >= 1, got {self.max_context_tokens}")
        needed = {"dev_split": ("dev_file",), "official": ("dev_file", "train_file"),
                  "files": ("train_file", "test_file")}[self.protocol]
        for key in needed:
            check(getattr(self, key) is not None, f"task.{key}", f"must be set under task.protocol={self.protocol}")


@dataclass
class BidafHeadConfig:
    name: str = MISSING
    hidden_dim: int = 100  # per direction, in every BiLSTM (allennlp's BiDAF)
    modeling_layers: int = 2
    dropout: float = 0.2
    max_answer_tokens: int = 30  # longest span the decoder may choose

    def __post_init__(self) -> None:
        check(self.hidden_dim >= 1, "head.hidden_dim", f"must be >= 1, got {self.hidden_dim}")
        check(self.modeling_layers >= 1, "head.modeling_layers", f"must be >= 1, got {self.modeling_layers}")
        check(0 <= self.dropout < 1, "head.dropout", f"must be in [0, 1), got {self.dropout}")
        check(self.max_answer_tokens >= 1, "head.max_answer_tokens", f"must be >= 1, got {self.max_answer_tokens}")


@dataclass(frozen=True)
class ContextSpans:
    """Example.meta: how to turn token positions back into context text, and the training target."""

    context: str
    offsets: tuple[tuple[int, int], ...]  # (start, end) characters of each kept context token
    answer: Optional[tuple[int, int]]  # first and last answer token (training examples); None when evaluating
    article: str = ""  # the article's title and the paragraph's place: questions on one passage are not
    paragraph: str = ""  # independent, so the report's bootstrap resamples whole articles

    def text(self, first: int, last: int) -> str:
        return self.context[self.offsets[first][0]:self.offsets[last][1]]


# --- the head -------------------------------------------------------------------------------------------------


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over the unmasked positions of `dim` (mask broadcasts to scores; each row needs one)."""
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=dim)


class TrilinearSimilarity(nn.Module):
    """S_tj = w1 . c_t + w2 . q_j + w3 . (c_t * q_j) + b, without building the (B, T, J, 3D) tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.context_weight = nn.Parameter(torch.empty(dim))
        self.question_weight = nn.Parameter(torch.empty(dim))
        self.product_weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.zeros(1))
        bound = (6 / (3 * dim + 1)) ** 0.5  # Xavier-uniform bound of the (3D -> 1) weight vector
        for weight in (self.context_weight, self.question_weight, self.product_weight):
            nn.init.uniform_(weight, -bound, bound)

    def forward(self, context: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        # context (B, T, D), question (B, J, D) -> (B, T, J)
        by_context = (context @ self.context_weight).unsqueeze(2)  # (B, T, 1)
        by_question = (question @ self.question_weight).unsqueeze(1)  # (B, 1, J)
        products = (context * self.product_weight) @ question.transpose(1, 2)  # (B, T, J)
        return by_context + by_question + products + self.bias


def best_spans(start: torch.Tensor, end: torch.Tensor, mask: torch.Tensor, max_tokens: int) -> list[tuple[int, int]]:
    """(first, last) maximising start[first] + end[last] with first <= last < first + max_tokens, both unmasked.

    Logits serve as well as log-probabilities: the two differ by a constant per example.
    """
    width = start.shape[1]
    positions = torch.arange(width, device=start.device)
    distance = positions.unsqueeze(0) - positions.unsqueeze(1)  # (T, T): last - first
    allowed = (distance >= 0) & (distance < max_tokens)
    allowed = allowed & mask.unsqueeze(2) & mask.unsqueeze(1)  # (B, T, T)
    scores = (start.unsqueeze(2) + end.unsqueeze(1)).masked_fill(~allowed, -torch.inf)
    best = scores.flatten(1).argmax(dim=1).tolist()
    return [(index // width, index % width) for index in best]


class BidafModel(TaskModel):
    def __init__(self, embedder: nn.Module, head: BidafHeadConfig):
        super().__init__(embedder)
        self.max_answer_tokens = head.max_answer_tokens
        self.dropout = nn.Dropout(head.dropout)
        self.phrase = MaskedBiLSTM(embedder.output_dim, head.hidden_dim, 1, 0.0)
        width = self.phrase.output_dim  # 2H
        self.similarity = TrilinearSimilarity(width)
        self.modeling = MaskedBiLSTM(4 * width, head.hidden_dim, head.modeling_layers, head.dropout)
        self.start_scorer = nn.Linear(5 * width, 1)
        self.end_encoder = MaskedBiLSTM(7 * width, head.hidden_dim, 1, 0.0)
        self.end_scorer = nn.Linear(5 * width, 1)

    def _logits(self, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Start and end scores over the context tokens, (B, T) each, and the (B, T) context mask."""
        size = len(examples)
        reps, mask = self.embedder([e.texts[0] for e in examples] + [e.texts[1] for e in examples])  # (2B, W, D)
        encoded = self.dropout(self.phrase(reps, mask))  # (2B, W, 2H): questions first, then contexts
        question_len = max(len(e.texts[0]) for e in examples)
        context_len = max(len(e.texts[1]) for e in examples)
        question, question_mask = encoded[:size, :question_len], mask[:size, :question_len]  # (B, J, 2H)
        context, context_mask = encoded[size:, :context_len], mask[size:, :context_len]  # (B, T, 2H)

        similarity = self.similarity(context, question)  # (B, T, J)
        c2q = masked_softmax(similarity, question_mask.unsqueeze(1)) @ question  # (B, T, 2H)
        padding = ~question_mask.unsqueeze(1)  # (B, 1, J)
        best_match = similarity.masked_fill(padding, torch.finfo(similarity.dtype).min).max(dim=2).values  # (B, T)
        q2c = masked_softmax(best_match, context_mask).unsqueeze(1) @ context  # (B, 1, 2H)
        merged = torch.cat([context, c2q, context * c2q, context * q2c], dim=-1)  # (B, T, 8H)
        modeled = self.dropout(self.modeling(merged, context_mask))  # (B, T, 2H)

        start = self.start_scorer(self.dropout(torch.cat([merged, modeled], dim=-1))).squeeze(-1).float()  # (B, T)
        summary = (masked_softmax(start, context_mask).unsqueeze(1) @ modeled).expand_as(modeled)  # (B, T, 2H)
        end_input = torch.cat([merged, modeled, summary, modeled * summary], dim=-1)  # (B, T, 14H)
        ends = self.dropout(self.end_encoder(end_input, context_mask))  # (B, T, 2H)
        end = self.end_scorer(self.dropout(torch.cat([merged, ends], dim=-1))).squeeze(-1).float()  # (B, T)
        return start, end, context_mask

    def loss(self, examples: Sequence[Example]) -> torch.Tensor:
        start, end, mask = self._logits(examples)
        gold = torch.tensor([e.meta.answer for e in examples], device=start.device)  # (B, 2)
        lowest = torch.finfo(start.dtype).min
        return (F.cross_entropy(start.masked_fill(~mask, lowest), gold[:, 0])
                + F.cross_entropy(end.masked_fill(~mask, lowest), gold[:, 1]))

    def predict(self, examples: Sequence[Example]) -> list[str]:
        start, end, mask = self._logits(examples)
        spans = best_spans(start, end, mask, self.max_answer_tokens)
        return [example.meta.text(first, last) for example, (first, last) in zip(examples, spans)]


# --- data -----------------------------------------------------------------------------------------------------


def regroup(articles: Sequence[Article], places: Sequence[tuple[int, int]]) -> list[Article]:
    """The articles cut down to the given (article, paragraph) places, in file order; articles left empty go."""
    kept: dict[int, list[Paragraph]] = {}
    for article, paragraph in sorted(places):
        kept.setdefault(article, []).append(articles[article].paragraphs[paragraph])
    return [Article(articles[a].title, tuple(paragraphs)) for a, paragraphs in kept.items()]


def deal_articles(articles: Sequence[Article], counts: dict[str, int], seed: int,
                  source: str) -> dict[str, list[Article]]:
    """Disjoint parts of `articles` of the given sizes, cut from one seeded permutation; each part keeps file
    order, and what no part takes is returned as "unused"."""
    wanted = sum(counts.values())
    if wanted > len(articles):
        raise DataError(f"{source}: the article split asks for {wanted} articles ({counts}), but there are"
                        f" {len(articles)}")
    order = np.random.default_rng(seed).permutation(len(articles)).tolist()
    parts, taken = {}, 0
    for name, count in counts.items():
        parts[name] = [articles[i] for i in sorted(order[taken:taken + count])]
        taken += count
    parts["unused"] = [articles[i] for i in sorted(order[taken:])]
    return parts


class SpanQATask(Task):
    family = "span_qa"
    config_schema = SpanQATaskConfig
    head_schemas = {"bidaf": BidafHeadConfig}

    def load_splits(self, data_root: str, use_hub: bool) -> Splits:
        sets, source = self._read_sets(data_root, use_hub)
        parts, record = self._article_parts(sets, source)
        details = {"protocol": self.config.protocol, "articles": record,
                   "max_context_tokens": self.config.max_context_tokens}
        splits = {}
        for split in ("train", "dev", "test"):
            splits[split], details[split] = self._examples(parts[split], training=split == "train", source=source)
        return Splits(**splits, source=source, details=details)

    def evaluation_order(self, example: Example) -> tuple:
        """The questions on one context side by side: a live encoder reads each context once a batch, not once
        a question (about 5 questions a context in SQuAD)."""
        question, context = example.texts
        return len(context), context, len(question)

    def read_examples(self, path: Path, prefix: str) -> list[Example]:
        """Evaluation examples; their ids are the file's question ids."""
        return self.read_evaluation(path, prefix)[0]

    def read_evaluation(self, path: Path, prefix: str) -> tuple[list[Example], dict]:
        """The examples and their counts: answers aligned to tokens, contexts cut, questions skipped."""
        return self._examples(read_squad(path, self.config.encoding), training=False, source=str(path))

    def hub_examples(self, rows, where: str, prefix: str) -> list[Example]:
        return self._examples(articles_from_rows(rows, where), training=False, source=where)[0]

    def _read_sets(self, data_root: str, use_hub: bool) -> tuple[dict[str, list[Article]], str]:
        """The SQuAD files the protocol reads, by role ("train", "dev", "test"), and where they came from."""
        config = self.config
        if config.protocol == "files":
            files = {"train": config.train_file, "dev": config.dev_file, "test": config.test_file}
            paths = {name: Path(data_root) / file for name, file in files.items() if file is not None}
            return ({name: read_squad(path, config.encoding) for name, path in paths.items()},
                    ", ".join(map(str, paths.values())))
        sets, source = self._read_official_sets(data_root, use_hub)
        if config.test_file is not None:
            path = Path(data_root) / config.test_file
            sets["test"], source = read_squad(path, config.encoding), f"{source}, test: {path}"
        return sets, source

    def _read_official_sets(self, data_root: str, use_hub: bool) -> tuple[dict[str, list[Article]], str]:
        """The official sets the protocol needs ("dev", and "train" under official), from files or the hub."""
        files = {"dev": self.config.dev_file}
        if self.config.protocol == "official":
            files["train"] = self.config.train_file
        paths = {name: Path(data_root) / file for name, file in files.items()}
        missing = self.missing_files(paths, use_hub)
        if not missing:
            return ({name: read_squad(path, self.config.encoding) for name, path in paths.items()},
                    ", ".join(map(str, paths.values())))
        dataset = load_hub_dataset(self.config.hub_id, tried=missing, config=self.config.hub_config)
        return ({name: articles_from_rows(dataset[HUB_SPLITS[name]], f"hub:{self.config.hub_id}[{HUB_SPLITS[name]}]")
                 for name in files}, f"hub:{self.config.hub_id}")

    def _article_parts(self, sets: dict[str, list[Article]], source: str) -> tuple[dict[str, list[Article]], dict]:
        """train/dev/test articles, and what to record about how they were made (seed, titles per part)."""
        if self.config.protocol == "files":
            parts, record = self._file_parts(sets)
        else:
            parts, record = self._dealt_parts(sets["dev"], source, own_test="test" in sets)
            if "test" in sets:
                parts["test"] = sets["test"]
        record["counts"] = {name: len(part) for name, part in parts.items()}
        record["titles"] = {name: [article.title for article in part] for name, part in parts.items()}
        if self.config.protocol == "official":
            parts["train"] = sets["train"]
            record["counts"]["train"] = len(parts["train"])
        return parts, record

    def _dealt_parts(self, dev_set: list[Article], source: str,
                     own_test: bool) -> tuple[dict[str, list[Article]], dict]:
        """The official dev set's articles dealt into the parts the protocol takes from it (not test when
        task.test_file gives it)."""
        if self.config.protocol == "dev_split":
            split = self.config.offline_split
            counts = {"train": split.train_articles, "dev": split.dev_articles}
            counts |= {} if own_test else {"test": split.test_articles}
            what = "into train and dev; test is task.test_file" if own_test else "into train, dev and test"
            record = {"dealt": f"the official dev set's articles {what}", "seed": split.seed}
            return deal_articles(dev_set, counts, split.seed, source), record
        split = self.config.official_split
        if own_test:  # the whole official dev set is dev
            record = {"dealt": "none: the official dev set is dev; test is task.test_file; train is the official"
                               " training set"}
            return {"dev": list(dev_set)}, record
        if split.dev_articles >= len(dev_set):
            raise DataError(f"{source}: task.official_split.dev_articles={split.dev_articles} leaves no test"
                            f" article (the official dev set has {len(dev_set)})")
        parts = deal_articles(dev_set, {"dev": split.dev_articles, "test": len(dev_set) - split.dev_articles},
                              split.seed, source)
        record = {"dealt": "the official dev set's articles into dev and test; train is the official training"
                           " set", "seed": split.seed}
        return parts, record

    def _file_parts(self, sets: dict[str, list[Article]]) -> tuple[dict[str, list[Article]], dict]:
        """protocol files: the files as they are; without a dev file, dev is carved out of train by paragraph."""
        if "dev" in sets:
            return dict(sets), {"dealt": "none: the train, dev and test files"}
        train, dev, carve = self._carve_paragraphs(sets["train"])
        record = {"dealt": "none: the train and test files; dev carved out of train by paragraph", "dev_carve": carve}
        return {"train": train, "dev": dev, "test": sets["test"]}, record

    def _carve_paragraphs(self, articles: list[Article]) -> tuple[list[Article], list[Article], dict]:
        """train and dev articles holding disjoint paragraphs of `articles` (in file order), drawn by carve_dev."""
        places = [(a, p) for a, article in enumerate(articles) for p in range(len(article.paragraphs))]
        train, dev, record = self.carve_dev(places)
        return regroup(articles, train), regroup(articles, dev), record | {"unit": "paragraph"}

    def _examples(self, articles: Sequence[Article], training: bool, source: str) -> tuple[list[Example], dict]:
        """One example per question, and the counts of what was cut, skipped or could not be aligned."""
        counts = Counter({"articles": len(articles)})
        examples = []
        for article in articles:
            for paragraph in article.paragraphs:
                examples += self._paragraph_examples(article.title, paragraph, training, source, counts)
        counts["examples"] = len(examples)
        answers = counts["answers"]
        details = {key: counts[key] for key in (
            "articles", "paragraphs", "contexts_truncated", "questions", "examples", "answers", "aligned",
            *ALIGNMENT_PROBLEMS, "answers_beyond_truncation", "skipped_empty_question")}
        details["alignment_rate"] = round(counts["aligned"] / answers, 6) if answers else None
        if training:
            details["skipped_no_aligned_answer"] = counts["skipped_no_aligned_answer"]
            details["skipped_answer_beyond_truncation"] = counts["skipped_answer_beyond_truncation"]
        return examples, details

    def _paragraph_examples(self, title: str, paragraph: Paragraph, training: bool, source: str,
                            counts: Counter) -> list[Example]:
        tokens = tokenize_with_offsets(paragraph.context)
        all_offsets = [(start, end) for _, start, end in tokens]  # answers are aligned before the cut
        kept = tokens[: self.config.max_context_tokens]
        context = tuple(token for token, _, _ in kept)
        kept_offsets = tuple(all_offsets[: len(kept)])
        aligner = TokenizedContext(paragraph.context, all_offsets)
        counts["paragraphs"] += 1
        counts["contexts_truncated"] += len(tokens) > len(kept)
        examples = []
        for question in paragraph.questions:
            counts["questions"] += 1
            question_tokens = tokenize(question.text)
            if not question_tokens:
                counts["skipped_empty_question"] += 1
                log.warning("%s: question %s (%s) has no tokens; skipped", source, question.id, paragraph.where)
                continue
            spans = self._aligned_spans(question, aligner, source, counts)
            reachable = [span for span in spans if span[1] < len(kept)]
            counts["answers_beyond_truncation"] += len(spans) - len(reachable)
            if training and not reachable:
                counts["skipped_no_aligned_answer" if not spans else "skipped_answer_beyond_truncation"] += 1
                continue
            meta = ContextSpans(paragraph.context, kept_offsets, reachable[0] if training else None, title,
                                paragraph.where)
            golds = tuple(answer.text for answer in question.answers)  # the metric compares texts
            examples.append(Example(question.id, (question_tokens, context), golds, meta))
        return examples

    @staticmethod
    def _aligned_spans(question: Question, context: TokenizedContext, source: str,
                       counts: Counter) -> list[tuple[int, int]]:
        """The token spans of the question's answers that align, counting each answer's fate."""
        spans = []
        for answer in question.answers:
            alignment = context.token_span(answer)
            counts["answers"] += 1
            counts[alignment.problem or "aligned"] += 1
            if alignment.problem == OUTSIDE_CONTEXT:
                log.warning("%s: question %s: answer_start %d (+%d characters) lies outside its context (%d"
                            " characters)", source, question.id, answer.start, len(answer.text), len(context.context))
            if alignment.span is not None:
                spans.append(alignment.span)
        return spans

    def build_model(self, embedder: nn.Module, head_config: BidafHeadConfig, train: Sequence[Example]) -> TaskModel:
        return BidafModel(embedder, head_config)

    def floor(self, train: Sequence[Example], examples: Sequence[Example]) -> tuple[str, list]:
        def first_sentence(example: Example) -> str:
            context = example.texts[1]
            if not context:
                return ""
            last = next((i for i, token in enumerate(context) if token in SENTENCE_ENDS), len(context) - 1)
            return example.meta.text(0, last)

        return "the context's first sentence", [first_sentence(example) for example in examples]

    def score(self, gold: Sequence[Sequence[str]], predicted: Sequence[Optional[str]]) -> dict[str, float]:
        return squad_scores(gold, predicted)

    def prediction_record(self, example: Example, predicted: Optional[str]) -> dict:
        """With the question's article and paragraph, the units a bootstrap over questions must resample."""
        return super().prediction_record(example, predicted) | {"article": example.meta.article,
                                                                "paragraph": example.meta.paragraph}
