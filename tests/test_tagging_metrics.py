import random
import warnings

import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from elmo_bench.tasks.tagging_metrics import span_f1, token_accuracy


def test_three_gold_two_predicted_one_correct():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "O", "O", "B-MISC"]]
    scores = span_f1(gold, pred)
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["per_type"] == {"PER": 1.0, "LOC": 0.0, "ORG": 0.0, "MISC": 0.0}


def test_type_error_is_both_false_positive_and_false_negative():
    gold = [["B-PER", "O", "B-LOC"]]
    pred = [["B-ORG", "O", "B-LOC"]]  # PER missed (FN) and ORG invented (FP)
    scores = span_f1(gold, pred)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((1 / 2, 1 / 2, 1 / 2))


def test_boundary_error_scores_nothing_for_that_entity():
    gold = [["B-ORG", "I-ORG", "I-ORG", "O"], ["B-PER"]]
    pred = [["B-ORG", "I-ORG", "O", "O"], ["B-PER"]]
    scores = span_f1(gold, pred)
    assert (scores["precision"], scores["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert scores["per_type"] == {"ORG": 0.0, "PER": 1.0}


def test_no_predictions_give_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = span_f1([["B-PER", "O"], ["B-LOC"]], [["O", "O"], ["O"]])
        nothing = span_f1([["O", "O"]], [["O", "O"]])
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {"PER": 0.0, "LOC": 0.0},
                      "per_type_precision": {"PER": 0.0, "LOC": 0.0}, "per_type_recall": {"PER": 0.0, "LOC": 0.0}}
    assert nothing == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}, "per_type_precision": {},
                       "per_type_recall": {}}


def test_i_after_o_opens_an_entity_like_conlleval():
    gold = [["O", "B-PER", "I-PER", "O"]]
    pred = [["O", "I-PER", "I-PER", "O"]]  # not valid IOB2, but conlleval reads a PER chunk here
    assert span_f1(gold, pred)["f1"] == 1.0
    strict = f1_score(gold, pred, mode="strict", scheme=IOB2)
    assert strict == 0.0  # strict mode drops the chunk: the two modes really differ on this case


def test_type_change_inside_a_chunk_splits_it():
    scores = span_f1([["B-PER", "B-LOC"]], [["B-PER", "I-LOC"]])
    assert scores["f1"] == 1.0


def test_accepts_tuples():
    assert span_f1((("B-PER", "O"),), (("B-PER", "O"),))["f1"] == 1.0


def test_length_mismatch_names_the_sentence():
    gold = [["O"], ["B-PER", "O"], ["O"]]
    pred = [["O"], ["B-PER"], ["O"]]
    for metric in (span_f1, token_accuracy):
        with pytest.raises(ValueError, match="sentence 1: 2 gold tags but 1 predicted"):
            metric(gold, pred)
        with pytest.raises(ValueError, match="3 gold sentences but 2 predicted"):
            metric(gold, pred[:2])


def test_token_accuracy():
    gold = [["DT", "NN", "."], ["NNP"]]
    pred = [["DT", "VB", "."], ["NNP"]]
    assert token_accuracy(gold, pred) == {"accuracy": 0.75}
    with pytest.raises(ValueError, match="no tokens"):
        token_accuracy([[]], [[]])


# --- against an independent chunk reader ------------------------------------------------------------------------


def _chunks(sentences):
    """conlleval's reading of IOB tags: {(sentence, start, end, type)}. A chunk opens on B-X, or on I-X
    when no X chunk is open; it closes before O, B-, or a tag of another type."""
    found = set()
    for index, tags in enumerate(sentences):
        open_type, open_start = None, None
        for position, tag in enumerate(list(tags) + ["O"]):  # the extra O closes a chunk at the end
            prefix, kind = (tag.split("-", 1) + [None])[:2]
            continues = prefix == "I" and kind == open_type
            if open_type is not None and not continues:
                found.add((index, open_start, position, open_type))
                open_type = None
            if prefix in ("B", "I") and not continues:
                open_type, open_start = kind, position
    return found


def _prf(gold_chunks, pred_chunks):
    correct = len(gold_chunks & pred_chunks)
    precision = correct / len(pred_chunks) if pred_chunks else 0.0
    recall = correct / len(gold_chunks) if gold_chunks else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _random_sentences(rng, count):
    tags = ["O"] * 6 + [f"{prefix}-{kind}" for prefix in "BI" for kind in ("PER", "LOC", "ORG")]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(count)]
    # Predictions: the gold tags with some corrupted, so there is a mix of hits, misses and near misses.
    pred = [[rng.choice(tags) if rng.random() < 0.25 else tag for tag in sentence] for sentence in gold]
    return gold, pred


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_independent_chunk_counting(seed):
    gold, pred = _random_sentences(random.Random(seed), 300)
    gold_chunks, pred_chunks = _chunks(gold), _chunks(pred)
    scores = span_f1(gold, pred)
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(_prf(gold_chunks, pred_chunks))
    kinds = {chunk[3] for chunk in gold_chunks | pred_chunks}
    expected_per_type = {
        kind: _prf({c for c in gold_chunks if c[3] == kind}, {c for c in pred_chunks if c[3] == kind})[2]
        for kind in kinds
    }
    assert scores["per_type"] == pytest.approx(expected_per_type)


def test_chunk_reader_sanity():
    # The reference reader itself, on cases worked out by hand.
    assert _chunks([["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-LOC"]]) == {
        (0, 0, 2, "PER"), (0, 2, 3, "PER"), (0, 3, 4, "LOC"), (0, 5, 6, "LOC"),
    }
