"""STS-B: the readers on the real GLUE and original files, the correlations against independent values,
bad input, the siamese head's batching, and one-epoch runs of both strategies on slices of the real files."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from elmo_bench.errors import ConfigError, DataError, DataFormatError
from elmo_bench.data.sts import attach_gold_scores, read_glue_sts, read_original_sts
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.tasks import pair_regression
from elmo_bench.tasks.base import Example
from elmo_bench.tasks.pair_regression import (
    PairRegressionTask,
    PairRegressionTaskConfig,
    SiameseHeadConfig,
    SiameseRegressor,
    correlations,
)

from runs import cell_predictions, make_config, offline_overrides

RANGE = (0.0, 5.0)
HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
SCORED_HEADER = HEADER + "\tscore"


def stsb_config(**changes) -> PairRegressionTaskConfig:
    files = dict(train_file="stsb/train.tsv", dev_file="stsb/dev.tsv", test_file="stsb/test.tsv",
                 test_gold_file="stsb/original/sts-test.tsv")
    return PairRegressionTaskConfig(name="stsb", dataset="stsb", **(files | changes))


def glue_row(index: int, sentence1: str, sentence2: str, score: str | None = "2.500") -> str:
    fields = [str(index), "main-captions", "MSRvid", "2012test", f"{index:04d}", "none", "none", sentence1, sentence2]
    return "\t".join(fields + ([score] if score is not None else []))


def original_row(sentence1: str, sentence2: str, score: str = "2.500") -> str:
    return "\t".join(["main-captions", "MSRvid", "2012test", "0001", score, sentence1, sentence2])


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def tsv_rows(path: Path) -> list[list[str]]:
    """Rows split on tabs with the csv module, quotes kept as text (independent of the project's reader)."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


# --- the real files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_splits(shared_dir):
    return PairRegressionTask(stsb_config()).load_splits(str(shared_dir / "data"), use_hub=False)


def test_real_files_counts_and_test_gold(real_splits, shared_dir):
    assert (len(real_splits.train), len(real_splits.dev), len(real_splits.test)) == (5749, 1500, 1379)
    original_test = tsv_rows(shared_dir / "data/stsb/original/sts-test.tsv")
    assert [e.label for e in real_splits.test] == [float(row[4]) for row in original_test]
    assert real_splits.details["test_gold"].endswith("stsb/original/sts-test.tsv")
    assert real_splits.details["pairs"] == {"train": 5749, "dev": 1500, "test": 1379}
    for split in (real_splits.train, real_splits.dev, real_splits.test):
        assert all(0 <= e.label <= 5 and e.texts[0] and e.texts[1] for e in split)
        assert len({e.id for e in split}) == len(split)


def test_real_files_scores_match_the_columns(real_splits, shared_dir):
    for name, examples in (("train", real_splits.train), ("dev", real_splits.dev)):
        rows = tsv_rows(shared_dir / f"data/stsb/{name}.tsv")[1:]
        assert [e.label for e in examples] == [float(row[9]) for row in rows]
    first = real_splits.train[0]
    assert first.texts == (("A", "plane", "is", "taking", "off", "."), ("An", "air", "plane", "is", "taking", "off", "."))
    assert first.label == 5.0
    assert real_splits.test[0].label == 2.5  # "A girl is styling her hair." / "... brushing her hair."


def test_quotes_are_text_not_csv_quoting(real_splits, shared_dir):
    # 47 test pairs hold a double quote; a CSV reader would merge lines there and lose pairs.
    rows = tsv_rows(shared_dir / "data/stsb/test.tsv")[1:]
    quoted = [i for i, row in enumerate(rows) if '"' in row[7]]
    assert len(quoted) == 47
    assert all('"' in real_splits.test[i].texts[0] for i in quoted)


def test_original_files_line_up_with_glue_on_every_split(shared_dir):
    # train and dev carry scores in both releases: attaching the original's scores must reproduce GLUE's.
    for name in ("train", "dev"):
        glue_path, original_path = shared_dir / f"data/stsb/{name}.tsv", shared_dir / f"data/stsb/original/sts-{name}.tsv"
        glue, original = read_glue_sts(glue_path, RANGE), read_original_sts(original_path, RANGE)
        assert [p.score for p in attach_gold_scores(glue, glue_path, original, original_path)] == [p.score for p in glue]


def test_rows_differing_only_in_whitespace_still_align(shared_dir):
    # GLUE test.tsv line 670 is "Take a look at this:"; the original has a trailing space (line 669).
    test_path, gold_path = shared_dir / "data/stsb/test.tsv", shared_dir / "data/stsb/original/sts-test.tsv"
    test, gold = read_glue_sts(test_path, RANGE), read_original_sts(gold_path, RANGE)
    assert test[668].sentence2 == "Take a look at this:" and gold[668].sentence2 == "Take a look at this: "
    assert attach_gold_scores(test, test_path, gold, gold_path)[668].score == gold[668].score


# --- the metric -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "predicted", "pearson", "spearman"),
    [
        ([1, 2, 3, 4], [1, 3, 2, 4], 0.8, 0.8),  # by hand: cov 4 / sqrt(5 * 5); same ranks
        ([1, 2, 3], [1, 2, 10], 9 / math.sqrt(2 * 438 / 9), 1.0),  # monotone but not linear
        ([0, 1, 2, 5], [5, 2, 1, 0], -12 / 14, -1.0),  # reversed order; by hand: cov -12 / sqrt(14 * 14)
        ([1, 2, 3], [2.5, 2.5, 2.5], 0.0, 0.0),  # constant predictions carry no ranking
    ],
)
def test_correlations_hand_computed(gold, predicted, pearson, spearman):
    scores = correlations(gold, predicted)
    assert scores == pytest.approx({"pearson": pearson, "spearman": spearman})


def test_correlations_match_numpy_on_random_scores():
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 200)
    predicted = gold + rng.normal(0, 1.5, 200)
    scores = correlations(gold.tolist(), predicted.tolist())
    assert scores["pearson"] == pytest.approx(np.corrcoef(gold, predicted)[0, 1])
    assert scores["spearman"] == pytest.approx(np.corrcoef(ranks(gold), ranks(predicted))[0, 1])


def ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values))  # no ties in continuous draws


def test_unscored_test_split_gives_nan():
    scores = PairRegressionTask(stsb_config()).score([None, None, None], [1.0, 2.0, 3.0])
    assert set(scores) == {"pearson", "spearman"} and all(math.isnan(v) for v in scores.values())


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (glue_row(0, "A man sings.", "A man is singing.", "5.5"), r"score 5\.5 is outside \[0, 5\]"),
        (glue_row(0, "A man sings.", "A man is singing.", "-0.1"), r"score -0\.1 is outside"),
        (glue_row(0, "A man sings.", "A man is singing.", "high"), r"score 'high' is not a number"),
        (glue_row(0, "A man sings.", "A man is singing.", "nan"), r"outside"),
        (glue_row(0, "", "A man is singing."), "sentence1 is empty"),
        (glue_row(0, "A man sings.", "   "), "sentence2 is empty"),
        (glue_row(0, "A man sings.", "A man is singing.") + "\textra", "expected 10 tab-separated columns, found 11"),
        (glue_row(0, "A man sings.", "A man is singing.", None), "expected 10 tab-separated columns, found 9"),
    ],
)
def test_bad_glue_rows_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "train.tsv", [SCORED_HEADER, glue_row(0, "A dog runs.", "A dog is running."), line])
    with pytest.raises(DataFormatError, match=message) as error:
        read_glue_sts(path, RANGE)
    assert (error.value.path, error.value.line) == (path, 3)


def test_wrong_header_is_refused(tmp_path):
    path = write(tmp_path / "train.tsv", ["sentence1\tsentence2\tscore", "A.\tB.\t1.0"])
    with pytest.raises(DataFormatError, match=r"train\.tsv:1: header .* is not GLUE STS-B's"):
        read_glue_sts(path, RANGE)


@pytest.mark.parametrize("columns", [6, 10])
def test_original_rows_need_7_to_9_columns(tmp_path, columns):
    fields = original_row("A dog runs.", "A dog is running.").split("\t")
    line = "\t".join((fields + ["source a", "source b", "surplus"])[:columns])
    path = write(tmp_path / "sts-test.tsv", [original_row("A man sings.", "A man is singing."), line])
    with pytest.raises(DataFormatError, match=rf"sts-test\.tsv:2: expected 7 .* found {columns}"):
        read_original_sts(path, RANGE)


def stsb_folder(root: Path, test_lines: list[str], gold_lines: list[str] | None) -> Path:
    """A data root with a tiny STS-B: 2 scored train and dev pairs, the given test and gold files."""
    scored = [SCORED_HEADER, glue_row(0, "A dog runs.", "A dog is running.", "4.0"),
              glue_row(1, "A man sings.", "A woman cooks.", "0.5")]
    write(root / "stsb/train.tsv", scored)
    write(root / "stsb/dev.tsv", scored)
    write(root / "stsb/test.tsv", [HEADER, *test_lines])
    if gold_lines is not None:
        write(root / "stsb/original/sts-test.tsv", gold_lines)
    return root


TEST_LINES = [glue_row(0, "A cat sleeps.", "A cat is asleep.", None), glue_row(1, "Kids play.", "Children play.", None)]


def test_misaligned_gold_row_names_both_lines(tmp_path):
    gold = [original_row("A cat sleeps.", "A cat is asleep.", "4.8"), original_row("Kids play.", "Adults work.", "1.0")]
    root = stsb_folder(tmp_path, TEST_LINES, gold)
    with pytest.raises(DataFormatError, match=r"sts-test\.tsv:2: sentence2 does not line up with .*test\.tsv:3"):
        PairRegressionTask(stsb_config()).load_splits(str(root), use_hub=False)


@pytest.mark.parametrize(
    ("gold_rows", "message"),
    [(1, r"test\.tsv:3: no gold score: .*sts-test\.tsv ends after 1 pairs"),
     (3, r"sts-test\.tsv:3: .*test\.tsv ends after 2 pairs")],
)
def test_gold_file_of_another_length_is_refused(tmp_path, gold_rows, message):
    gold = [original_row("A cat sleeps.", "A cat is asleep.", "4.8"), original_row("Kids play.", "Children play.", "4.0"),
            original_row("More.", "Rows.", "1.0")][:gold_rows]
    root = stsb_folder(tmp_path, TEST_LINES, gold)
    with pytest.raises(DataFormatError, match=message):
        PairRegressionTask(stsb_config()).load_splits(str(root), use_hub=False)


def test_gold_scores_attach_up_to_whitespace(tmp_path):
    gold = [original_row("A cat  sleeps. ", "A cat is asleep.", "4.8") + "\tsource a\tsource b",
            original_row("Kids play.", " Children play.", "4")]
    splits = PairRegressionTask(stsb_config()).load_splits(str(stsb_folder(tmp_path, TEST_LINES, gold)), False)
    assert [e.label for e in splits.test] == [4.8, 4.0]
    assert splits.test[0].texts == (("A", "cat", "sleeps", "."), ("A", "cat", "is", "asleep", "."))


def test_without_gold_the_test_split_is_unscored_and_says_so(tmp_path):
    splits = PairRegressionTask(stsb_config()).load_splits(str(stsb_folder(tmp_path, TEST_LINES, None)), False)
    assert [e.label for e in splits.test] == [None, None] and len(splits.dev) == 2
    assert splits.details["test_gold"] is None
    assert "test metrics cannot be computed" in splits.details["test_note"]


def test_training_file_without_scores_is_refused(tmp_path):
    root = stsb_folder(tmp_path, TEST_LINES, None)
    write(root / "stsb/dev.tsv", [HEADER, *TEST_LINES])
    with pytest.raises(DataFormatError, match=r"dev\.tsv:1: no score column; the dev split needs scores"):
        PairRegressionTask(stsb_config()).load_splits(str(root), use_hub=False)


def test_missing_files_without_hub_name_the_paths(tmp_path):
    with pytest.raises(DataError, match=r"stsb/train\.tsv.*hub fallback off"):
        PairRegressionTask(stsb_config()).load_splits(str(tmp_path), use_hub=False)


def test_hub_rows_are_rescaled_and_checked(tmp_path, monkeypatch):
    rows = [{"sentence1": "A dog runs.", "sentence2": "A dog is running.", "score": 0.76}]
    monkeypatch.setattr(pair_regression, "load_hub_dataset", lambda hub_id, tried, config=None: {
        "train": rows, "validation": rows, "test": rows})
    config = stsb_config(hub_id="sentence-transformers/stsb", hub_score_scale=5.0)
    splits = PairRegressionTask(config).load_splits(str(tmp_path), use_hub=True)
    assert splits.test[0].label == pytest.approx(3.8) and splits.source == "hub:sentence-transformers/stsb"
    rows.append({"sentence1": "", "sentence2": "Empty.", "score": 0.1})
    with pytest.raises(DataFormatError, match=r"sentence-transformers/stsb/train:2: sentence1 is empty"):
        PairRegressionTask(config).load_splits(str(tmp_path), use_hub=True)


@pytest.mark.parametrize(
    ("make", "key"),
    [(lambda: stsb_config(metric="mse"), "task.metric"),
     (lambda: stsb_config(min_score=5.0, max_score=0.0), "task.max_score"),
     (lambda: SiameseHeadConfig(name="siamese", mlp_dim=0), "head.mlp_dim"),
     (lambda: SiameseHeadConfig(name="siamese", dropout=1.0), "head.dropout")],
)
def test_bad_config_values_name_the_key(make, key):
    with pytest.raises(ConfigError, match=key):
        make()


# --- the head ---------------------------------------------------------------------------------------------


class RecordingEmbedder(torch.nn.Module):
    """Random vectors for any texts; remembers what each call embedded."""

    output_dim = 6

    def __init__(self):
        super().__init__()
        self.calls: list[list[tuple]] = []

    def forward(self, texts):
        self.calls.append(list(texts))
        width = max(len(t) for t in texts)
        mask = torch.tensor([[i < len(t) for i in range(width)] for t in texts])
        return torch.randn(len(texts), width, self.output_dim), mask


def test_siamese_head_embeds_both_sentences_in_one_call_and_stays_in_range():
    torch.manual_seed(0)
    embedder = RecordingEmbedder()
    model = SiameseRegressor(embedder, SiameseHeadConfig(name="siamese", hidden_dim=4, mlp_dim=4), RANGE)
    examples = [Example(f"p{i}", (("a",) * (i + 1), ("b",) * (3 - i)), float(i)) for i in range(3)]
    predictions = model.predict(examples)
    assert embedder.calls == [[e.texts[0] for e in examples] + [e.texts[1] for e in examples]]
    assert len(predictions) == 3 and all(0.0 <= p <= 5.0 for p in predictions)
    loss = model.loss(examples)
    loss.backward()
    assert loss.item() > 0 and model.mlp[0].weight.grad is not None


# --- end-to-end -------------------------------------------------------------------------------------------

SLICE_ROWS = 48  # pairs per split, spread over the whole file (the files are sorted by genre)


def spread(rows: list[str]) -> list[str]:
    return rows[:: len(rows) // SLICE_ROWS][:SLICE_ROWS]


def write_stsb_slice(shared: Path, root: Path) -> Path:
    """Verbatim rows of the real files; the same rows of test.tsv and sts-test.tsv, so they still align."""
    source = shared / "data" / "stsb"
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        lines = (source / name).read_text(encoding="utf-8").splitlines()
        write(root / "stsb" / name, [lines[0], *spread(lines[1:])])
    gold = (source / "original/sts-test.tsv").read_text(encoding="utf-8").splitlines()
    write(root / "stsb/original/sts-test.tsv", spread(gold))
    return root


@pytest.fixture(scope="module")
def slice_root(tmp_path_factory, shared_dir) -> Path:
    return write_stsb_slice(shared_dir, tmp_path_factory.mktemp("stsb"))


@pytest.fixture
def overrides(slice_root, tmp_path, monkeypatch):
    return [*offline_overrides(slice_root, tmp_path, monkeypatch), "task=stsb",
            "head.hidden_dim=16", "head.mlp_dim=16", "inputs.word_dim=8", "trainer.max_epochs=1", "trainer.min_steps=0",
            "trainer.batch_tokens=400", "data.train_size=40"]



@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["feature_ensemble", "finetune"])
def test_one_epoch_run_records_correlations_recomputable_from_predictions(overrides, strategy, slice_root):
    config = make_config([*overrides, f"strategy={strategy}"])
    result = run(config)
    folder = cell_dir(config)
    assert json.loads((folder / "result.json").read_text()) == result
    assert (result["task"], result["strategy"], result["metric"]) == ("stsb", strategy, "pearson")
    assert (result["train_size"], result["train_pool"], result["epochs"]) == (40, SLICE_ROWS, 1)
    assert result["data_details"]["pairs"] == {"train": SLICE_ROWS, "dev": SLICE_ROWS, "test": SLICE_ROWS}
    gold_test = [float(row[4]) for row in tsv_rows(slice_root / "stsb/original/sts-test.tsv")]
    for split in ("dev", "test"):
        rows = cell_predictions(folder, split)
        assert [r["id"] for r in rows] == [f"{split}-{i}" for i in range(SLICE_ROWS)]
        gold, predicted = [r["gold"] for r in rows], [r["pred"] for r in rows]
        assert all(isinstance(p, float) and 0 <= p <= 5 for p in predicted)
        if split == "test":
            assert gold == gold_test
        metrics = result["metrics"][split]
        assert metrics["pearson"] == pytest.approx(100 * stats.pearsonr(gold, predicted)[0], abs=1e-3)
        assert metrics["spearman"] == pytest.approx(100 * stats.spearmanr(gold, predicted)[0], abs=1e-3)
        assert result[split] == metrics["pearson"]


@pytest.mark.slow
def test_run_without_test_gold_still_scores_dev(overrides, slice_root, tmp_path):
    root = tmp_path / "nogold"
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        write(root / "stsb" / name, (slice_root / "stsb" / name).read_text(encoding="utf-8").splitlines())
    result = run(make_config([*overrides, f"data.root={root}", "strategy=feature_ensemble"]))
    assert math.isfinite(result["dev"]) and result["test"] is None and result["metrics"]["test"] is None
    assert result["data_details"]["test_gold"] is None and "test_note" in result["data_details"]
