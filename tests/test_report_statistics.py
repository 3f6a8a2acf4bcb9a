"""The report's statistics on planted predictions: each resampled metric against seqeval, scipy or the SQuAD
rules on the resample written out in full, the interval against scipy's bootstrap and an exact distribution,
Holm and the crossover by hand, pair checks, feature costs, and a whole report."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from seqeval.metrics import f1_score, precision_score, recall_score

from elmo_bench.metrics.squad import squad_scores
from elmo_bench.report import build_report
from elmo_bench.report.bootstrap import (Interval, crossover, holm, lasting_gain_from, paired_interval,
                                        resampled_scores)
from elmo_bench.report.figures import cost_paths
from elmo_bench.report.formats import format_interval
from elmo_bench.metrics.resampling import Ratio
from elmo_bench.report.units import PredictionsError, read_test_set

TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]  # I-ORG after O opens an entity (conlleval)


def write_predictions(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return folder / "result.json"


def weights_row(units: int, seed: int) -> np.ndarray:
    """One resample's draw counts, drawn here independently of the report's own generator."""
    return np.bincount(np.random.default_rng(seed).integers(0, units, units), minlength=units)


def expand(rows_by_unit: dict[str, list[dict]], units: tuple[str, ...], weights: np.ndarray) -> list[dict]:
    """The resample written out: each unit's rows repeated as often as the unit was drawn."""
    return [row for unit, count in zip(units, weights) for _ in range(count) for row in rows_by_unit[unit]]


def test_entity_f1_precision_and_recall_are_recomputed_on_the_resampled_sentences(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for index in range(40):
        gold = list(rng.choice(TAGS, size=rng.integers(1, 9)))
        pred = [tag if rng.random() < 0.7 else str(rng.choice(TAGS)) for tag in gold]
        rows.append({"id": f"test-{index}", "gold": gold, "pred": pred})
    full = 100 * f1_score([r["gold"] for r in rows], [r["pred"] for r in rows])
    test_set = read_test_set(write_predictions(tmp_path, rows), "test.jsonl", "f1", full, family="tagging")
    assert test_set.unit == "sentence" and list(test_set.metrics) == ["f1", "precision", "recall"]
    by_unit = {row["id"]: [row] for row in rows}
    for seed in range(5):
        weights = weights_row(len(rows), seed)
        drawn = expand(by_unit, test_set.units, weights)
        gold, pred = [r["gold"] for r in drawn], [r["pred"] for r in drawn]
        for name, reference in (("f1", f1_score), ("precision", precision_score), ("recall", recall_score)):
            assert test_set.metrics[name](weights[None])[0] == pytest.approx(100 * reference(gold, pred)), name
    # A mean of per-sentence F1 would differ from the corpus F1 on these sentences.
    per_sentence = np.mean([100 * f1_score([r["gold"]], [r["pred"]], zero_division=0) for r in rows])
    assert abs(per_sentence - full) > 1


def test_correlations_on_a_resample_match_scipy_with_ties(tmp_path):
    rng = np.random.default_rng(1)
    gold = np.round(rng.uniform(0, 5, 60) * 2) / 2  # many ties
    pred = np.round((gold + rng.normal(0, 1.2, 60)) * 2) / 2
    rows = [{"id": f"pair-{i}", "gold": float(g), "pred": float(p)} for i, (g, p) in enumerate(zip(gold, pred))]
    test_set = read_test_set(write_predictions(tmp_path, rows), "test.jsonl", "spearman",
                             100 * stats.spearmanr(gold, pred)[0], family="pair_regression")
    assert test_set.unit == "pair" and list(test_set.metrics) == ["spearman", "pearson"]
    by_unit = {row["id"]: [row] for row in rows}
    for seed in range(5):
        weights = weights_row(len(rows), seed)
        drawn = expand(by_unit, test_set.units, weights)
        golds, preds = [r["gold"] for r in drawn], [r["pred"] for r in drawn]
        assert test_set.metrics["spearman"](weights[None])[0] == pytest.approx(100 * stats.spearmanr(golds, preds)[0])
        assert test_set.metrics["pearson"](weights[None])[0] == pytest.approx(100 * stats.pearsonr(golds, preds)[0])


def test_span_qa_resamples_whole_articles(tmp_path):
    answers = ["Denver Broncos", "the Broncos", "Santa Clara", "2016", "Levi's Stadium", "gold"]
    rows = [{"id": f"q{i}", "gold": [answers[i % 6], answers[(i + 1) % 6]], "pred": answers[(i * 7) % 6] if i % 5
             else None, "article": f"article-{i % 4}", "paragraph": f"data[{i % 4}].paragraphs[0]"}
            for i in range(30)]
    full = squad_scores([r["gold"] for r in rows], [r["pred"] for r in rows])
    test_set = read_test_set(write_predictions(tmp_path, rows), "test.jsonl", "f1", 100 * full["f1"], family="span_qa")
    assert test_set.unit == "article" and test_set.units == ("article-0", "article-1", "article-2", "article-3")
    by_unit = {unit: [row for row in rows if row["article"] == unit] for unit in test_set.units}
    weights = np.array([3, 0, 1, 0])
    drawn = expand(by_unit, test_set.units, weights)
    expected = squad_scores([r["gold"] for r in drawn], [r["pred"] for r in drawn])
    assert test_set.metrics["f1"](weights[None])[0] == pytest.approx(100 * expected["f1"])
    assert test_set.metrics["exact_match"](weights[None])[0] == pytest.approx(100 * expected["exact_match"])


def test_token_accuracy_counts_tokens_of_the_drawn_sentences(tmp_path):
    rows = [{"id": "a", "gold": ["N", "V", "N"], "pred": ["N", "V", "V"]},
            {"id": "b", "gold": ["D"], "pred": ["N"]}]
    test_set = read_test_set(write_predictions(tmp_path, rows), "test.jsonl", "accuracy", 50.0, family="tagging")
    assert test_set.metrics["accuracy"](np.array([[2, 0], [1, 2], [0, 1]])).tolist() == pytest.approx(
        [100 * 4 / 6, 100 * 2 / 5, 0.0])


@pytest.mark.parametrize("content, recorded, message", [
    ('{"id": "a", "gold": "x", "pred": "x"}\n', 50.0, "the predictions give accuracy 100.0000, result.json records"),
    ('{"id": "a", "gold": "x"}\n', 100.0, "line 1: expected an object with 'id', 'gold' and 'pred'"),
    ('{"id": "a", "gold": "x", "pred": "x"}\n{"id": "a", "gold": "y", "pred": "y"}\n', 100.0,
     "two lines share the id 'a'"),
    ("not json\n", 100.0, "line 1: not JSON"),
    ('{"id": "a", "gold": "x", "pred": "x"}\n{"id": "b", "gold": "x", "pred": "x"}, 3\n', 100.0, "line 2: not JSON"),
])
def test_predictions_that_cannot_be_rescored_are_named(tmp_path, content, recorded, message):
    (tmp_path / "test.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(PredictionsError, match=message) as error:
        read_test_set(tmp_path / "result.json", "test.jsonl", "accuracy", recorded, family="classification")
    assert str(tmp_path / "test.jsonl") in str(error.value)


def test_a_predictions_path_outside_the_run_folder_is_refused(tmp_path):
    with pytest.raises(PredictionsError, match="points outside the run's folder"):
        read_test_set(tmp_path / "run" / "result.json", "../../etc/passwd", "accuracy", 0.0, family="classification")


def test_one_seed_interval_matches_scipy_paired_bootstrap():
    rng = np.random.default_rng(2)
    base, other = rng.random(400) < 0.60, rng.random(400) < 0.68
    difference = 100 * (other.astype(float) - base)
    units = 400
    metrics = [Ratio(other.astype(float), np.ones(units)), Ratio(base.astype(float), np.ones(units))]
    scores = resampled_scores(metrics, units, 4000, "planted")
    interval = paired_interval(np.array([difference.mean()]), (scores[0] - scores[1])[None], "planted", units)
    reference = stats.bootstrap((difference,), np.mean, n_resamples=4000, method="percentile",
                                confidence_level=0.95, random_state=np.random.default_rng(3)).confidence_interval
    assert interval.delta == pytest.approx(difference.mean())
    assert interval.low == pytest.approx(reference.low, abs=0.5) and interval.high == pytest.approx(reference.high,
                                                                                                    abs=0.5)
    normal = stats.norm.ppf(0.975) * difference.std(ddof=1) / math.sqrt(units)  # ≈ 6.3 points here
    assert interval.high - interval.low == pytest.approx(2 * normal, rel=0.08)
    low, high = interval.test_set  # with one seed the test set's percentile interval is the whole story
    assert low == pytest.approx(reference.low, abs=0.5) and high == pytest.approx(reference.high, abs=0.5)


def test_seed_level_resampling_follows_the_exact_distribution():
    """Seed differences 100, 0, 0 that no draw of units can change. The two-level bootstrap (kept for the
    crossover) draws Δ* = 100·(draws of seed 1)/3, so P(Δ* = 0) = (2/3)³ = 8/27. The verdict's t is the one-sample
    t-test of the three differences: no shared test variance here, so it is scipy's ttest_1samp exactly."""
    resampled = np.repeat(np.array([[100.0], [0.0], [0.0]]), 20000, axis=1)
    interval = paired_interval(np.array([100.0, 0.0, 0.0]), resampled, "exact", 500)
    assert np.mean(interval.replicates == 0) == pytest.approx(8 / 27, abs=0.01)
    reference = stats.ttest_1samp([100.0, 0.0, 0.0], 0.0)
    bounds = reference.confidence_interval(0.95)
    assert interval.delta == pytest.approx(100 / 3) and interval.df == 2
    assert interval.p_value == pytest.approx(reference.pvalue)  # 0.4226: the bootstrap's p was 2·8/27 = 0.59
    assert (interval.low, interval.high) == pytest.approx((bounds.low, bounds.high))
    assert interval.shared_variance == 0 and interval.test_set == (0.0, 0.0) or interval.test_set == pytest.approx(
        (100 / 3, 100 / 3))


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.2 of m=4 → 0.04, 0.09, max(0.09, 0.08)=0.09, 0.2; None is not counted
    assert holm([0.01, 0.04, 0.03, 0.2, None]) == pytest.approx([0.04, 0.09, 0.09, 0.2, None])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []


@pytest.mark.parametrize("deltas, expected", [
    ([-2.0, 1.0, 3.0], 10 ** (2 + 2 / 3)),  # 0 is 2/3 of the way from −2 to 1, in log size between 100 and 1000
    ([1.0, -1.0, 2.0], 10 ** (3 + 1 / 3)),  # the last size with Δ ≤ 0 decides, not the first
    ([1.0, 2.0, 3.0], 0.0),  # ahead everywhere
    ([1.0, 2.0, -0.5], math.inf),  # behind at the largest size
    ([-1.0, 0.0, 2.0], 1000.0 * 10 ** 0.0),  # Δ = 0 counts as not ahead: the crossover starts at 1000
])
def test_crossover_by_hand(deltas, expected):
    assert lasting_gain_from([100, 1000, 10000], deltas) == pytest.approx(expected)


def test_crossover_interval_is_the_rule_on_every_resample():
    at_100, at_1000 = np.array([-1.0, -1.0, 1.0, -1.0]), np.array([1.0, -1.0, 2.0, 1.0])
    found = crossover([100, 1000], [Interval(float(r.mean()), 0, 0, 1.0, 1.0, 2.0, 0.0, 0.0, (0.0, 0.0), r)
                                    for r in (at_100, at_1000)])
    # observed −0.5 then +0.75: 0 lies 0.4 of the way, in log size, from 100 to 1000
    assert found.estimate == pytest.approx(100 * 10**0.4)
    # per resample: ≈316 (−1 → 1), inf (never ahead), 0 (ahead at both), ≈316; the 2.5% and 97.5% ends
    assert (found.low, found.high) == (0.0, math.inf)


# ------------------------------------------------------------------------------------------- whole reports


def planted_run(root: Path, strategy: str, size: int, seed: int, correct: np.ndarray, **extra) -> Path:
    """A classification run whose test predictions get `correct` right; its result.json matches them."""
    folder = root / "sst5" / strategy / "fixture" / f"n{size}" / f"seed{seed}"
    rows = [{"id": f"test-{i}", "gold": "pos", "pred": "pos" if ok else "neg"} for i, ok in enumerate(correct)]
    write_predictions(folder / "predictions", rows)
    result = {
        "status": "complete", "task": "sst5", "task_family": "classification", "dataset": "sst5",
        "strategy": strategy, "model": "fixture", "train_size": size, "seed": seed, "metric": "accuracy",
        "dev": 50.0, "test": 100 * float(np.mean(correct)), "train_seconds": 10.0 if strategy == "feature_ensemble"
        else 40.0, "trainable_params": 1000, "train_subset_digest": f"subset-{size}-{seed}", "data_digest": "d",
        "encoder_fingerprint": "b", "feature_cost": [], "predictions": {"test": "predictions/test.jsonl"},
        "config": {"head": {"name": "classifier"}, "trainer": {"max_epochs": 30, "min_steps": 300}},
    } | extra
    (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return folder / "result.json"


def planted_study(root: Path, first_computes: int = 1) -> None:
    """3 seeds at sizes 100 and 1000 on one 500-example test set: finetune no better at 100 (the same
    predictions but a few examples), clearly better at 1000 (60 more right). Seed `first_computes` is the run
    that computed the shared test features; the others read them from the cache."""
    rng = np.random.default_rng(4)
    for seed in (1, 2, 3):
        base_100 = rng.random(500) < 0.5
        nudged = base_100.copy()
        nudged[rng.choice(500, 6, replace=False)] ^= True
        base_1000 = rng.random(500) < 0.6
        better = base_1000.copy()
        better[np.flatnonzero(~base_1000)[:60]] = True
        def costs(size: int) -> list[dict]:
            return [{"split": "train", "key": f"train-{size}-{seed}", "seconds": 2.0, "computed_here": True},
                    {"split": "test", "key": "test", "seconds": 6.0, "computed_here": seed == first_computes}]

        planted_run(root, "feature_ensemble", 100, seed, base_100, feature_cost=costs(100))
        planted_run(root, "finetune", 100, seed, nudged)
        planted_run(root, "feature_ensemble", 1000, seed, base_1000, feature_cost=costs(1000))
        planted_run(root, "finetune", 1000, seed, better)


def report_of(root: Path, out: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_report([root], out, references=False, **kwargs)


def test_a_planted_study_gives_intervals_holm_verdicts_crossover_and_guide(tmp_path):
    planted_study(tmp_path / "runs")
    report = report_of(tmp_path / "runs", tmp_path / "report")
    small, large = (row.comparison("finetune") for row in report.rows)
    assert small.pairs == large.pairs == 3 and report.rows[0].unit == "example"
    assert small.main.low < 0 < small.main.high and small.verdict == "not resolved"
    assert large.delta == pytest.approx(100 * 60 / 500) and large.main.low > 5 and large.verdict == "finetune better"
    # Holm over the report's two comparisons: the smaller p doubled, the larger kept (and never below it).
    ordered = sorted([small.main.p_value, large.main.p_value])
    assert sorted([small.p_adjusted, large.p_adjusted]) == pytest.approx([min(1, 2 * ordered[0]),
                                                                          max(min(1, 2 * ordered[0]), ordered[1])])
    found = report.crossovers[("sst5", "sst5", "accuracy", "fixture", "finetune")]
    assert found.sizes == (100, 1000) and found.high <= 1000
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "### classification" in md and "n=1,000: **finetune** is better than feature_ensemble by +12.00 [" in md
    assert "n=100: not resolved, no strategy is shown better than feature_ensemble (finetune " in md
    assert f"differences below {small.mde:.1f} points are not excluded" in md
    headline = next(line for line in md.split("## Headline")[1].splitlines() if line.startswith("| sst5"))
    small_cell, large_cell = [cell.strip() for cell in headline.strip("| ").split("|")][3:5]
    assert small_cell == f"feature_ensemble (cheapest); none shown better (best: finetune " \
                         f"{format_interval(small.main)}, {small.seconds_ratio:.1f}× (hosts not timed); " \
                         f"below {small.mde:.1f} not excluded)"
    assert large_cell == f"**finetune** {format_interval(large.main)}, {large.seconds_ratio:.1f}× (hosts not timed)"
    assert large_cell.startswith("**finetune** +12.00 [")
    assert "![Difference with its interval: sst5](figures/difference_sst5.png)" in md
    assert (tmp_path / "report" / "figures" / "difference_sst5.png").read_bytes().startswith(b"\x89PNG")
    intervals = list(csv.DictReader(io.StringIO((tmp_path / "report" / "intervals.csv").read_text())))
    assert [(line["train_size"], line["metric"], line["unit"]) for line in intervals] == [
        ("100", "accuracy", "example"), ("1000", "accuracy", "example")]


def test_feature_costs_are_one_off_and_amortised_whatever_the_run_order(tmp_path):
    planted_study(tmp_path / "runs")
    side = report_of(tmp_path / "runs", tmp_path / "report").rows[0].side("feature_ensemble")
    # one-off: its own train features (2 s) + the test features (6 s); amortised: the test features are shared
    # by the six feature_ensemble runs of both sizes → 2 + 6/6.
    assert (side.feature_seconds, side.feature_seconds_amortised) == (8.0, pytest.approx(3.0))
    assert side.run_seconds == 18.0
    planted_study(tmp_path / "other_order", first_computes=3)
    report_of(tmp_path / "other_order", tmp_path / "other_report")
    assert ((tmp_path / "other_report" / "comparison.csv").read_bytes()
            == (tmp_path / "report" / "comparison.csv").read_bytes())


def time_reference_workload(root: Path, strategy: str, size: int, seconds: float) -> None:
    """Record in every seed's result.json that the run timed the reference workload at `seconds`."""
    for result_file in (root / "sst5" / strategy / "fixture" / f"n{size}").glob("seed*/result.json"):
        speed = {"workload": "lstm", "device": "cpu", "threads": 1, "seconds": [seconds * 0.9, seconds * 1.1]}
        result_file.write_text(json.dumps(json.loads(result_file.read_text()) | {"host_speed": speed}))


def test_cost_ratios_are_levelled_when_the_runs_met_hosts_of_different_speed(tmp_path):
    """At n=100 finetune's runs timed the workload 3x slower than feature_ensemble's: the ratio is divided by 3.
    At n=1000 they are 1.4x apart, within the noise of a busy machine: raw seconds stand."""
    planted_study(tmp_path / "runs")
    for strategy, seconds_100, seconds_1000 in (("feature_ensemble", 0.1, 0.1), ("finetune", 0.3, 0.14)):
        time_reference_workload(tmp_path / "runs", strategy, 100, seconds_100)
        time_reference_workload(tmp_path / "runs", strategy, 1000, seconds_1000)
    report = report_of(tmp_path / "runs", tmp_path / "report")
    small, large = (row.comparison("finetune") for row in report.rows)
    # feature_ensemble: 10 s training + 8 s one-off features; finetune: 40 s training.
    assert small.seconds_ratio == pytest.approx(40 / 18) and large.seconds_ratio == pytest.approx(40 / 18)
    assert small.host_adjusted_ratio == pytest.approx(40 / 18 / 3) and small.host_factor == pytest.approx(3)
    assert large.host_adjusted_ratio is None and large.cost_ratio == large.seconds_ratio and large.host_factor == 1
    # The cost figure places each strategy on the same footing as the table: finetune's 40 s at n=100 count as
    # 40/3, left of feature_ensemble's 18 s; at n=1000 the raw seconds stand.
    small_row, large_row = report.rows
    assert small_row.levelled_run_seconds("finetune") == pytest.approx(40 / 3)
    assert small_row.levelled_run_seconds("feature_ensemble") == 18.0
    assert cost_paths(small_row) == [["finetune", "feature_ensemble"]]
    assert cost_paths(large_row) == [["feature_ensemble", "finetune"]]
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "| 3 | 2.22× (0.74× host-adjusted) | 1.00× |" in md and "| 3 | 2.22× | 1.00× |" in md
    assert "*host-adjusted*: each run timed a fixed reference workload" in md
    # Levelled, finetune is the cheaper arm at n=100, and the headline picks it as the cheapest not shown worse.
    headline = next(line for line in md.split("## Headline")[1].splitlines() if line.startswith("| sst5"))
    small_cell = [cell.strip() for cell in headline.strip("| ").split("|")][3]
    assert small_cell == (f"finetune {format_interval(small.main)}, 0.7× host-adjusted (cheapest); none shown better; "
                          f"below {small.mde:.1f} not excluded")
    lines = list(csv.DictReader(io.StringIO((tmp_path / "report" / "comparison.csv").read_text())))
    assert [line["run_seconds_ratio_host_adjusted"] for line in lines] == ["", "0.7407", "", ""]


def test_no_levelling_without_every_run_timing_the_same_workload(tmp_path):
    planted_study(tmp_path / "runs")
    time_reference_workload(tmp_path / "runs", "finetune", 100, 0.3)  # feature_ensemble's runs did not time it
    for strategy, workload in (("feature_ensemble", "lstm"), ("finetune", "other")):
        time_reference_workload(tmp_path / "runs", strategy, 1000, 0.1 if strategy == "feature_ensemble" else 0.3)
        for result_file in (tmp_path / "runs" / "sst5" / strategy / "fixture" / "n1000").glob("seed*/result.json"):
            result = json.loads(result_file.read_text())
            result["host_speed"]["workload"] = workload
            result_file.write_text(json.dumps(result))
    report = report_of(tmp_path / "runs", tmp_path / "report")
    assert [row.comparison("finetune").host_adjusted_ratio for row in report.rows] == [None, None]
    assert "run_seconds_ratio_host_adjusted" not in (tmp_path / "report" / "comparison.csv").read_text()
    assert "host-adjusted" not in (tmp_path / "report" / "comparison.md").read_text()


def test_a_malformed_host_speed_leaves_the_run_out_and_says_why(tmp_path):
    planted_study(tmp_path / "runs")
    result_file = tmp_path / "runs" / "sst5" / "finetune" / "fixture" / "n100" / "seed1" / "result.json"
    result_file.write_text(json.dumps(json.loads(result_file.read_text()) | {"host_speed": {"seconds": [0]}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_report([tmp_path / "runs"], tmp_path / "report", references=False)
    assert report.rows[0].side("finetune").n == 2
    assert any("'host_speed'" in str(w.message) and str(result_file) in str(w.message) for w in caught)


def test_the_text_names_the_resample_count_the_intervals_used(tmp_path):
    planted_study(tmp_path / "runs")
    report_of(tmp_path / "runs", tmp_path / "default")
    report_of(tmp_path / "runs", tmp_path / "more", resamples=12_000)
    assert "(5,000 resamples;" in (tmp_path / "default" / "comparison.md").read_text()
    more = (tmp_path / "more" / "comparison.md").read_text()
    assert "(12,000 resamples;" in more and "5,000" not in more


def test_a_pair_that_differs_is_left_out_and_named(tmp_path):
    planted_study(tmp_path / "runs")
    result_file = tmp_path / "runs" / "sst5" / "finetune" / "fixture" / "n1000" / "seed2" / "result.json"
    changed = json.loads(result_file.read_text()) | {"train_subset_digest": "other", "encoder_fingerprint": "c"}
    result_file.write_text(json.dumps(changed))
    comparison = report_of(tmp_path / "runs", tmp_path / "report").rows[1].comparison("finetune")
    assert comparison.pairs == 2 and comparison.left_out == ("seed 2: train subset, encoder differ",)
    assert "| 2; seed 2: train subset, encoder differ |" in (tmp_path / "report" / "comparison.md").read_text()


def test_the_report_is_byte_identical_on_rerun_and_a_row_does_not_depend_on_other_rows(tmp_path):
    planted_study(tmp_path / "runs")
    together = report_of(tmp_path / "runs", tmp_path / "first")
    report_of(tmp_path / "runs", tmp_path / "second")
    for name in ("comparison.md", "comparison.csv", "intervals.csv", "comparison.tex"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    for folder in (tmp_path / "runs" / "sst5").glob("*/fixture/n1000"):
        shutil.copytree(folder, tmp_path / "large" / folder.relative_to(tmp_path / "runs"))
    (alone,) = report_of(tmp_path / "large", tmp_path / "alone").rows
    with_both = together.rows[1].comparison("finetune").main
    assert (alone.comparison("finetune").main.low, alone.comparison("finetune").main.high) == (with_both.low,
                                                                                               with_both.high)


def test_extra_test_sets_get_a_column_and_an_interval(tmp_path):
    planted_study(tmp_path / "runs")
    rng = np.random.default_rng(5)
    for strategy, accuracy in (("feature_ensemble", 0.7), ("finetune", 0.4)):  # fine-tuning loses out of domain
        for seed in (1, 2, 3):
            result_file = tmp_path / "runs" / "sst5" / strategy / "fixture" / "n1000" / f"seed{seed}" / "result.json"
            correct = rng.random(300) < accuracy
            rows = [{"id": f"ood-{i}", "gold": "pos", "pred": "pos" if ok else "neg"} for i, ok in enumerate(correct)]
            (result_file.parent / "predictions" / "extra_ood.jsonl").write_text(
                "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
            record = json.loads(result_file.read_text())
            record["extra_test"] = {"ood": {"metric": "accuracy", "score": 100 * float(correct.mean()),
                                            "predictions": "predictions/extra_ood.jsonl", "source": "ood.csv"}}
            result_file.write_text(json.dumps(record))
    report = report_of(tmp_path / "runs", tmp_path / "report")
    large = report.rows[1]
    ood = large.comparison("finetune").extra_intervals["ood"]
    assert ood.high < -10 and ood.low < ood.delta < ood.high
    assert large.side("finetune").extra_tests["ood"][1] == 3 and report.rows[0].side("finetune").extra_tests == {}
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "| extra test ood (mean, n) |" in md and "| accuracy on ood | " in md
    assert "accuracy on ood" in (tmp_path / "report" / "intervals.csv").read_text()
    assert large.comparison("finetune").winner == "finetune"  # the in-domain verdict is unchanged


def test_one_seed_gives_an_interval_but_no_verdict_and_stays_out_of_holm(tmp_path):
    rng = np.random.default_rng(6)
    base = rng.random(500) < 0.5
    better = base.copy()
    better[np.flatnonzero(~base)[:100]] = True  # +20 points on the test set, from one seed
    planted_run(tmp_path / "runs", "feature_ensemble", 100, 1, base)
    planted_run(tmp_path / "runs", "finetune", 100, 1, better)
    comparison = report_of(tmp_path / "runs", tmp_path / "report").rows[0].comparison("finetune")
    assert comparison.pairs == 1 and comparison.main.low > 10 and comparison.main.p_value < 0.001
    assert comparison.p_adjusted is None and comparison.winner is None
    assert comparison.verdict == "not resolved (one seed: the interval covers test sampling only)"
    assert "no strategy is shown better than feature_ensemble" in (tmp_path / "report" / "comparison.md").read_text()
