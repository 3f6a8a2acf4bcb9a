"""The trivial baseline of each task family (result.json's `floor`), computed by hand on tiny data."""
from __future__ import annotations

import pytest

from elmo_bench.tasks.base import Example
from elmo_bench.tasks.classification import ClassificationTask, ClassificationTaskConfig
from elmo_bench.tasks.pair_regression import PairRegressionTask, PairRegressionTaskConfig
from elmo_bench.tasks.span_qa import ContextSpans, SpanQATask, SpanQATaskConfig
from elmo_bench.tasks.tagging import TaggingTask, TaggingTaskConfig


def floor_score(task, train, test) -> float:
    _, predicted = task.floor(train, test)
    return task.score([example.label for example in test], predicted)[task.metric]


def test_classification_predicts_the_majority_class():
    task = ClassificationTask(ClassificationTaskConfig(name="c", dataset="c", format="tsv", classes=["neg", "neu", "pos"],
                                                       train_file="t", dev_file="d", test_file="e"))
    train = [Example(str(i), (("w",),), label) for i, label in enumerate(["pos", "neg", "pos", "neu"])]
    test = [Example(str(i), (("w",),), label) for i, label in enumerate(["pos", "neg", "neg", "pos", "pos"])]
    rule, predicted = task.floor(train, test)
    assert predicted == ["pos"] * 5 and "majority" in rule
    assert floor_score(task, train, test) == pytest.approx(3 / 5)


def test_tagging_predicts_each_words_most_frequent_tag():
    task = TaggingTask(TaggingTaskConfig(name="p", dataset="p", metric="accuracy", train_file="a", dev_file="b",
                                         test_file="c", scheme="none"))
    train = [Example("0", (("the", "cat", "runs"),), ("DT", "NN", "VB")),
             Example("1", (("a", "runs", "runs"),), ("DT", "NN", "NN"))]
    test = [Example("2", (("the", "dog", "runs"),), ("DT", "NN", "VB"))]
    # the: DT; dog unseen: NN, the commonest tag (3 of 6); runs: NN (2 of 3)
    assert task.floor(train, test)[1] == [("DT", "NN", "NN")]
    assert floor_score(task, train, test) == pytest.approx(2 / 3)


def test_pair_regression_predicts_the_training_mean_and_scores_no_correlation():
    task = PairRegressionTask(PairRegressionTaskConfig(name="s", dataset="s", train_file="a", dev_file="b",
                                                       test_file="c"))
    train = [Example(str(i), (("a",), ("b",)), score) for i, score in enumerate([1.0, 2.0, 3.0])]
    test = [Example(str(i), (("a",), ("b",)), score) for i, score in enumerate([0.5, 4.5])]
    assert task.floor(train, test)[1] == [2.0, 2.0]
    assert floor_score(task, train, test) == 0.0


def test_span_qa_answers_with_the_contexts_first_sentence():
    task = SpanQATask(SpanQATaskConfig(name="q", dataset="q", train_file="a", dev_file="b"))
    context = "Paris is big. It is old."
    tokens = ("Paris", "is", "big", ".", "It", "is", "old", ".")
    offsets = ((0, 5), (6, 8), (9, 12), (12, 13), (14, 16), (17, 19), (20, 23), (23, 24))
    meta = ContextSpans(context, offsets, None)
    test = [Example("q1", (("where",), tokens), ("Paris",), meta), Example("q2", (("age",), tokens), ("old",), meta)]
    assert task.floor([], test)[1] == ["Paris is big.", "Paris is big."]
    # q1: "paris is big" against "paris": precision 1/3, recall 1, F1 1/2; q2: no overlap
    assert floor_score(task, [], test) == pytest.approx((0.5 + 0.0) / 2)
