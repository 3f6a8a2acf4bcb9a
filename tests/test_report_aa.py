"""An A/A comparison (one strategy against itself on other seeds) gets no verdict; the README's headline block is
checked against the report's; the seed planner names the rows that need seeds and the commands that add them."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from elmo_bench.report import build_report
from elmo_bench.report.arms import parse_arm_split
from elmo_bench.report.table import BaselineError
from elmo_bench.report.headline import HEADLINE_FILE, main as headline_main, readme_mismatch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 500


def aa_run(root: Path, seed: int, subset_of: int, accuracy: float, rng: np.random.Generator) -> None:
    """A feature_ensemble run at `seed` trained on seed `subset_of`'s subset, right with chance `accuracy`."""
    folder = root / "sst5" / "feature_ensemble" / "fixture" / "n100" / f"seed{seed}"
    (folder / "predictions").mkdir(parents=True)
    correct = rng.random(EXAMPLES) < accuracy
    rows = [{"id": f"test-{i}", "gold": "pos", "pred": "pos" if ok else "neg"} for i, ok in enumerate(correct)]
    (folder / "predictions" / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = {"status": "complete", "task": "sst5", "task_family": "classification", "dataset": "sst5",
              "strategy": "feature_ensemble", "model": "fixture", "train_size": 100, "seed": seed,
              "metric": "accuracy", "dev": 50.0, "test": 100 * float(correct.mean()), "train_seconds": 10.0,
              "trainable_params": 1000, "train_subset_digest": f"subset-{subset_of}", "data_digest": "d",
              "encoder_fingerprint": "b", "feature_cost": [], "predictions": {"test": "predictions/test.jsonl"},
              "config": {"head": {"name": "classifier"}, "trainer": {"max_epochs": 30}}}
    (folder / "result.json").write_text(json.dumps(result))


def aa_study(root: Path) -> np.ndarray:
    """Ten runs of one method whose accuracy varies from run to run by 5 points (the seeds' own variance);
    seeds 6..10 train on the subsets of seeds 1..5. Returns the true accuracies."""
    rng = np.random.default_rng(11)
    accuracy = 0.6 + rng.normal(0, 0.05, 10)
    for seed in range(1, 11):
        aa_run(root, seed, (seed - 1) % 5 + 1, accuracy[seed - 1], rng)
    return accuracy


def report_of(root: Path, out: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_report([root], out, references=False, **kwargs)


def test_a_rerun_of_the_same_method_gets_no_verdict(tmp_path):
    aa_study(tmp_path / "runs")
    report = report_of(tmp_path / "runs", tmp_path / "report", aa_arms=(parse_arm_split("feature_ensemble:6-10:1-5"),))
    (row,) = report.rows
    assert list(row.sides) == ["feature_ensemble", "feature_ensemble_rerun"]
    comparison = row.comparison("feature_ensemble_rerun")
    assert comparison.pairs == 5 and comparison.left_out == ()
    assert comparison.winner is None and comparison.verdict.startswith("not resolved")
    # The test has teeth: on these runs a verdict from test-set resampling alone would call the rerun different
    # (its interval excludes 0), since the seeds differ by far more than the test set's sampling.
    low, high = comparison.main.test_set
    assert high < 0 or low > 0
    # The t on the five seed differences: the one-sample t of the recorded scores, its SE widened only by the
    # shared test part (whose true value is 0 here, estimated just above it).
    original, rerun = (row.side(arm).test_by_seed for arm in ("feature_ensemble", "feature_ensemble_rerun"))
    differences = [rerun[seed] - original[seed] for seed in range(1, 6)]
    reference = stats.ttest_1samp(differences, 0.0)
    assert comparison.main.seed_variance == pytest.approx(np.var(differences, ddof=1) / 5)
    assert comparison.main.shared_variance < 0.1 * comparison.main.seed_variance
    assert reference.pvalue <= comparison.main.p_value < 1.2 * reference.pvalue and comparison.main.df <= 4


def test_a_rerun_on_other_subsets_is_left_out_and_named(tmp_path):
    root = tmp_path / "runs"
    rng = np.random.default_rng(3)
    for seed in range(1, 7):
        aa_run(root, seed, seed, 0.6, rng)  # seed 6 ran on its own subset, not seed 1's
    report = report_of(root, tmp_path / "report", aa_arms=(parse_arm_split("feature_ensemble:6:1"),))
    comparison = report.rows[0].comparison("feature_ensemble_rerun")
    assert comparison.pairs == 0 and comparison.left_out == ("seed 1: train subset differs",)


@pytest.mark.parametrize("spec, message", [
    ("feature_ensemble:6-10:1-4", "same length"),
    ("feature_ensemble:1-5:3-7", "disjoint"),
    ("feature_ensemble:six:1", "not a seed range"),
    ("feature_ensemble:6-10", "expected STRATEGY:SEEDS:PAIRED_SEEDS"),
])
def test_a_wrong_arm_split_is_refused_and_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_arm_split(spec)


def test_only_the_baseline_the_runs_record_can_be_split(tmp_path):
    aa_study(tmp_path / "runs")
    with pytest.raises(BaselineError, match="--aa-arm finetune: only feature_ensemble"):
        report_of(tmp_path / "runs", tmp_path / "report", aa_arms=(parse_arm_split("finetune:6-10:1-5"),))


def test_the_baseline_is_the_strategy_whose_runs_say_so(tmp_path):
    """The report compares with the strategy result.json marks as the baseline, whatever its name."""
    aa_study(tmp_path / "runs")
    for result_file in (tmp_path / "runs").rglob("result.json"):
        result = json.loads(result_file.read_text())
        seed = result["seed"]
        result.update(strategy="frozen_mix" if seed <= 5 else "tuned", baseline=seed <= 5,
                      seed=seed if seed <= 5 else seed - 5, train_subset_digest=f"subset-{(seed - 1) % 5 + 1}")
        target = tmp_path / "renamed" / "sst5" / result["strategy"] / "fixture" / "n100" / f"seed{result['seed']}"
        target.mkdir(parents=True)
        (target / "predictions").mkdir()
        (target / "predictions" / "test.jsonl").write_bytes((result_file.parent / "predictions/test.jsonl").read_bytes())
        (target / "result.json").write_text(json.dumps(result))
    (row,) = report_of(tmp_path / "renamed", tmp_path / "report").rows
    assert row.baseline == "frozen_mix" and list(row.sides) == ["frozen_mix", "tuned"]
    assert list(row.comparisons) == ["tuned"] and row.comparison("tuned").pairs == 5
    assert "# Strategies compared with frozen_mix" in (tmp_path / "report" / "comparison.md").read_text()


def test_two_strategies_that_each_say_they_are_the_baseline_are_refused(tmp_path):
    aa_study(tmp_path / "runs")
    old = tmp_path / "runs" / "sst5" / "feature_ensemble" / "fixture" / "n100" / "seed6"
    result = json.loads((old / "result.json").read_text()) | {"strategy": "other", "baseline": True}
    new = tmp_path / "runs" / "sst5" / "other" / "fixture" / "n100" / "seed6"
    new.parent.mkdir(parents=True)
    old.rename(new)
    (new / "result.json").write_text(json.dumps(result))
    with pytest.raises(BaselineError, match="the runs of feature_ensemble, other each say they are the baseline"):
        report_of(tmp_path / "runs", tmp_path / "report")


def test_the_readme_block_must_be_the_reports_headline(tmp_path):
    aa_study(tmp_path / "runs")
    report_of(tmp_path / "runs", tmp_path / "report", aa_arms=(parse_arm_split("feature_ensemble:6-10:1-5"),))
    block = (tmp_path / "report" / HEADLINE_FILE).read_text()
    assert block.startswith("<!-- headline:start -->\n") and block.endswith("<!-- headline:end -->\n")
    assert "| sst5 | accuracy | fixture | feature_ensemble (cheapest); none shown better" in block
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- headline:start -->\nold words\n<!-- headline:end -->\n\nMore.\n")
    assert "from its line 2 on" in readme_mismatch(readme, tmp_path / "report")
    assert headline_main([str(readme), str(tmp_path / "report")]) == 1
    assert headline_main([str(readme), str(tmp_path / "report"), "--write"]) == 0
    assert readme_mismatch(readme, tmp_path / "report") is None
    assert readme.read_text() == "# Title\n\n" + block.rstrip("\n") + "\n\nMore.\n"


def test_the_seed_planner_names_rows_that_need_seeds_and_the_resumable_command(tmp_path):
    report_dir = tmp_path / "study" / "report"
    report_dir.mkdir(parents=True)
    fields = ["task", "train_size", "strategy", "baseline", "pairs", "ci_low", "ci_high", "p_holm", "mde",
              "seed_variance", "shared_test_variance"]
    lines = [  # resolved; straddles 0 with a large MDE; straddles 0 but already below the target; the baseline
        ["pos", 1000, "finetune", "feature_ensemble", "3", "0.1", "0.4", "0.01", "0.5", "0.001", "0"],
        ["ner", 100, "finetune", "feature_ensemble", "3", "-0.5", "0.6", "1", "4.2", "0.02", "0"],
        ["ner", 100, "two_stage", "feature_ensemble", "3", "-0.5", "0.6", "1", "0.9", "0.02", "0"],
        ["ner", 100, "feature_ensemble", "", "", "", "", "", "", "", ""],
    ]
    with (report_dir / "comparison.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows(lines)
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "plan_seeds.py"), str(tmp_path / "study"),
                             "--target", "1.0", "--cap", "10", "--experiment", "study_converge"],
                            capture_output=True, text=True, check=True)
    # Seed variance s²/K = 0.02 at K = 3 → s² = 0.06; at K' = 4 seeds SE = √(0.06/4) = 0.122 with df 3 at level
    # 0.05/3 (three tested comparisons): t(1 − 0.05/6, 3) = 4.86, and a 1-point effect is found with probability
    # P(noncentral t(3, 1/0.122) > 4.86) = 0.95 ≥ 0.8, so 4 seeds reach the target ((4.86 + t(0.8, 3))·SE ≈ 0.71).
    assert stats.nct.sf(stats.t.ppf(1 - 0.05 / 6, 3), 3, 1 / np.sqrt(0.06 / 4)) > 0.8
    planned = [line for line in result.stdout.splitlines() if line.startswith("elmo-bench")]
    assert planned == ["elmo-bench -m +experiment=study_converge task=ner data.train_size=100 "
                       "strategy=feature_ensemble,finetune seed=1,2,3,4"]
    assert "# ner n=100 finetune: MDE 4.20 with 3 seeds -> 0.7" in result.stdout
