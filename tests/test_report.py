"""The report reads hand-written result.json files; expected numbers are computed here independently
(statistics and scipy), never copied from the report's own output."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from elmo_bench.report import NoResultsError, ResultFileWarning, build_report
from elmo_bench.report.callback import ReportCallback
from elmo_bench.report.cli import main
from elmo_bench.report.figures import cost_paths, plain_log_x_axis

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (task, strategy, size) -> {seed: (test, dev, train_seconds)}; ner n1000 finetune only has broken files.
SCORES = {
    ("ner", "feature_ensemble", 100): {1: (80.0, 81.0, 10.0), 2: (82.5, 83.0, 12.0), 3: (81.0, 82.0, 14.0)},
    ("ner", "finetune", 100): {1: (83.0, 84.0, 40.0), 2: (85.0, 84.5, 44.0), 3: (84.5, 86.0, 48.0)},
    ("ner", "feature_ensemble", 1000): {1: (88.0, 89.0, 30.0), 2: (88.4, 89.2, 31.0), 3: (87.9, 88.8, 29.0)},
    ("sst5", "feature_ensemble", 100): {1: (40.0, 41.0, 5.0)},
    ("sst5", "finetune", 100): {1: (42.0, 42.5, 20.0)},
    ("sst5", "feature_ensemble", 8544): {1: (50.0, 49.0, 50.0), 2: (51.0, 50.0, 52.0)},
    ("sst5", "finetune", 8544): {1: (52.5, 51.0, 200.0), 2: (52.0, 51.5, 210.0)},
}
DATASET = {"ner": ("conll2003", "f1"), "sst5": ("sst5", "accuracy")}
PARAMS = {"feature_ensemble": 1_000, "finetune": 50_000, "two_stage": 51_000, "frozen_layer1": 800}
WEIGHTS = {"feature_ensemble": [0.2, 0.3, 0.5], "finetune": [0.1, 0.3, 0.6], "two_stage": [0.3, 0.3, 0.4]}


def run_dir(root: Path, task: str, strategy: str, size: int, seed: int) -> Path:
    return root / task / strategy / "fixture" / f"n{size}" / f"seed{seed}"


def result(task: str, strategy: str, size: int, seed: int, test: float, dev: float, seconds: float) -> dict:
    dataset, metric = DATASET[task]
    return {
        "status": "complete", "task": task, "dataset": dataset, "strategy": strategy, "model": "fixture",
        "train_size": size, "requested_train_size": size, "seed": seed, "subset_seed": 0, "metric": metric,
        "dev": dev, "test": test, "metrics": {"dev": {metric: dev}, "test": {metric: test}},
        "epochs": 3, "best_epoch": 2, "train_seconds": seconds, "seconds_per_epoch": seconds / 3,
        "trainable_params": PARAMS[strategy], "total_params": 200_000, "peak_memory_mb": 100.0,
        "scalar_mix": None if (task, strategy) == ("sst5", "finetune") or strategy not in WEIGHTS
        else {"weights": WEIGHTS[strategy], "gamma": 1.0},
        "device": "cpu", "versions": {"python": "3.11"}, "predictions": {}, "config": {},
    }


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def runs(tmp_path) -> tuple[Path, dict[str, Path]]:
    """The good runs plus one of each kind of bad file; returns the root and the bad files by kind."""
    root = tmp_path / "outputs"
    for (task, strategy, size), by_seed in SCORES.items():
        for seed, (test, dev, seconds) in by_seed.items():
            write(run_dir(root, task, strategy, size, seed) / "result.json",
                  result(task, strategy, size, seed, test, dev, seconds))
    partial = result("ner", "finetune", 1000, 2, 90.0, 90.0, 1.0) | {"status": "running"}
    no_test = result("sst5", "finetune", 8544, 3, 99.0, 99.0, 1.0)
    del no_test["test"]
    bad = {
        "corrupt": write(run_dir(root, "ner", "finetune", 1000, 1) / "result.json", '{"status": "compl'),
        "partial": write(run_dir(root, "ner", "finetune", 1000, 2) / "result.json", partial),
        "no_test": write(run_dir(root, "sst5", "finetune", 8544, 3) / "result.json", no_test),
        "missing": run_dir(root, "sst5", "finetune", 8544, 4) / "result.json",
    }
    bad["missing"].parent.mkdir(parents=True)
    return root, bad


def build(root: Path, out: Path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_report([root], out, **kwargs)
    return report, [str(w.message) for w in caught if issubclass(w.category, ResultFileWarning)]


def row_of(report, task: str, size: int):
    (row,) = [row for row in report.rows if row.task == task and row.train_size == size]
    return row


def scores(task, strategy, size, field=0):
    return [values[field] for _, values in sorted(SCORES[(task, strategy, size)].items())]


def write_runs(root: Path, by_strategy: dict[str, list[float]]) -> None:
    """ner runs at size 100: strategy -> test score of seeds 1, 2, 3, ... (dev = test, 10 s each)."""
    for strategy, tests in by_strategy.items():
        for seed, test in enumerate(tests, start=1):
            write(run_dir(root, "ner", strategy, 100, seed) / "result.json",
                  result("ner", strategy, 100, seed, test, test, 10.0))


def md_lines(report_dir: Path, prefix: str) -> list[str]:
    """The lines of the measured-results table that start with `prefix`."""
    md = (report_dir / "comparison.md").read_text()
    measured = md.split("## Measured results")[1].split("\n## ")[0]
    return [line for line in measured.splitlines() if line.startswith(prefix)]


def test_three_seed_cell_numbers(runs, tmp_path):
    root, _ = runs
    report, _ = build(root, tmp_path / "report")
    row = row_of(report, "ner", 100)
    fe_side, ft_side = row.side("feature_ensemble"), row.side("finetune")
    fe, ft = scores("ner", "feature_ensemble", 100), scores("ner", "finetune", 100)
    assert list(row.sides) == ["feature_ensemble", "finetune"] and list(row.comparisons) == ["finetune"]
    assert fe_side.n == 3 and ft_side.n == 3
    assert fe_side.test_mean == pytest.approx(statistics.mean(fe))
    assert fe_side.test_std == pytest.approx(statistics.stdev(fe))  # sample std, ddof=1
    assert ft_side.test_std == pytest.approx(statistics.stdev(ft))
    assert fe_side.dev_mean == pytest.approx(statistics.mean(scores("ner", "feature_ensemble", 100, 1)))
    comparison = row.comparison("finetune")
    assert comparison.baseline == "feature_ensemble"
    assert comparison.delta == pytest.approx(statistics.mean(ft) - statistics.mean(fe))
    assert comparison.pairs == 3 and comparison.left_out == ()
    # These hand-written runs have no predictions files: Δ but no interval, and the verdict says so.
    assert comparison.intervals == {} and comparison.verdict == "no interval"
    assert "no test predictions file is named" in comparison.no_interval
    assert comparison.params_ratio == pytest.approx(50_000 / 1_000)
    assert ft_side.train_seconds == pytest.approx(statistics.mean(scores("ner", "finetune", 100, 2)))
    assert comparison.seconds_ratio == pytest.approx(44.0 / 12.0)


def test_csv_holds_the_same_numbers(runs, tmp_path):
    root, _ = runs
    build(root, tmp_path / "report")
    table = list(csv.DictReader(io.StringIO((tmp_path / "report" / "comparison.csv").read_text())))
    fe_name, ft_name = "feature_ensemble", "finetune"
    assert [(r["task"], r["train_size"], r["strategy"]) for r in table] == [
        ("ner", "100", fe_name), ("ner", "100", ft_name), ("ner", "1000", fe_name), ("sst5", "100", fe_name),
        ("sst5", "100", ft_name), ("sst5", "8544", fe_name), ("sst5", "8544", ft_name)]
    fe_line, ft_line = table[0], table[1]
    fe, ft = scores("ner", fe_name, 100), scores("ner", ft_name, 100)
    assert float(fe_line["test_mean"]) == pytest.approx(statistics.mean(fe), abs=5e-5)
    assert float(ft_line["test_std"]) == pytest.approx(statistics.stdev(ft), abs=5e-5)
    assert float(ft_line["dev_mean"]) == pytest.approx(statistics.mean(scores("ner", ft_name, 100, 1)), abs=5e-5)
    assert float(ft_line["delta_test"]) == pytest.approx(statistics.mean(ft) - statistics.mean(fe), abs=5e-5)
    assert ft_line["baseline"] == fe_name and ft_line["pairs"] == "3" and ft_line["verdict"] == "no interval"
    assert ft_line["ci_low"] == ft_line["p_value"] == ft_line["p_holm"] == ""
    assert float(ft_line["trainable_params_ratio"]) == 50.0
    assert fe_line["baseline"] == fe_line["delta_test"] == fe_line["p_value"] == ""  # the baseline's own line
    assert table[0]["setting"] == ""  # no selection on dev


def test_two_pairs_are_tested_and_broken_files_do_not_count(runs, tmp_path):
    root, _ = runs
    report, _ = build(root, tmp_path / "report")
    row = row_of(report, "sst5", 8544)
    fe, ft = scores("sst5", "feature_ensemble", 8544), scores("sst5", "finetune", 8544)
    assert row.side("finetune").n == 2  # seed 3 (no 'test') and seed 4 (no file) are left out
    comparison = row.comparison("finetune")
    assert comparison.pairs == 2 and comparison.delta == pytest.approx(statistics.mean(ft) - statistics.mean(fe))
    (line,) = md_lines(tmp_path / "report", "| sst5 | sst5 | accuracy | fixture | 8544 | finetune |")
    assert f"| {comparison.delta:+.2f} (no interval) | — | no interval | — | 2 |" in line


def test_missing_side_and_single_seed_rows(runs, tmp_path):
    root, _ = runs
    report, _ = build(root, tmp_path / "report")
    no_finetune = row_of(report, "ner", 1000)
    assert no_finetune.side("finetune") is None and no_finetune.comparisons == {}
    single = row_of(report, "sst5", 100)
    assert single.side("feature_ensemble").test_std is None and single.comparison("finetune").pairs == 1
    (ner_1000,) = md_lines(tmp_path / "report", "| ner | conll2003 | f1 | fixture | 1000 |")
    assert ner_1000.startswith("| ner | conll2003 | f1 | fixture | 1000 | feature_ensemble | 88.10 ± ")
    assert ner_1000.endswith("| (baseline) | — | — | — | — | — | — |")
    fe_100, ft_100 = md_lines(tmp_path / "report", "| sst5 | sst5 | accuracy | fixture | 100 |")
    assert "| feature_ensemble | 40.00 ± — (n=1) |" in fe_100
    assert "| finetune | 42.00 ± — (n=1) |" in ft_100
    assert "| +2.00 (no interval) | — | no interval | — | 1 |" in ft_100


def test_warnings_name_every_bad_file(runs, tmp_path):
    root, bad = runs
    report, messages = build(root, tmp_path / "report")
    for kind, path in bad.items():
        assert any(str(path) in message for message in messages), kind
    assert any("partial" in m and str(bad["partial"]) in m for m in messages)
    assert any("'test'" in m and str(bad["no_test"]) in m for m in messages)
    assert len(report.left_out) == 4
    assert "4 result files or folders left out" in (tmp_path / "report" / "comparison.md").read_text()


def test_a_crashed_run_of_a_negative_seed_is_named(runs, tmp_path):
    root, _ = runs
    crashed = run_dir(root, "ner", "finetune", 1000, -1)  # seed=-1 writes seed-1/
    crashed.mkdir(parents=True)
    _, messages = build(root, tmp_path / "report")
    assert any(str(crashed) in message for message in messages)


def test_markdown_states_the_test_and_keeps_published_figures_apart(runs, tmp_path):
    root, _ = runs
    build(root, tmp_path / "report")
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "a t on the seeds' differences" in md and "a bootstrap over the test set's units" in md
    assert "Holm's method" in md and "p < 0.05" in md and "**MDE**" in md
    assert "## Comparisons without an interval" in md and "## Decision guide" in md
    guide = md.split("## Decision guide")[1]
    assert "  - n=1,000: only feature_ensemble ran, nothing to compare." in guide  # ner 1000 has no finetune run
    assert "  - n=100: no comparison with an interval" in guide  # these runs have no predictions files
    measured, published = md.split("## Published figures (not measured here)")
    assert "92.22 ± 0.10" in published and "54.7 ± 0.5" in published and "Peters et al. 2018" in published
    assert "92.22" not in measured
    assert "85.8" not in published  # SQuAD was not measured, so its figure is not shown
    build(root, tmp_path / "bare", references=False)
    assert "Published figures" not in (tmp_path / "bare" / "comparison.md").read_text()


def test_latex_is_escaped(runs, tmp_path):
    root, _ = runs
    build(root, tmp_path / "report")
    tex = (tmp_path / "report" / "comparison.tex").read_text()
    # task dataset metric model | size | strategy | score, train s, features s, params | Δ, p, verdict, MDE, pairs |
    # ratios
    assert tex.splitlines()[2] == r"\begin{tabular}{llllrlrrrrrllrlrr}" and tex.rstrip().endswith(r"\end{tabular}")
    assert all(line.count(" & ") == 16 for line in tex.splitlines() if line.endswith(r" \\"))
    assert r"feature\_ensemble" in tex and r"$\pm$" in tex and r"+2.00 (no interval)" in tex
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert not any(char in body for char in "±—Δ≥×")  # mapped to LaTeX, so pdflatex needs no packages
    assert re.search(r"(?<!\\)_", body) is None  # every underscore escaped


def test_outputs_are_identical_on_rerun_and_change_when_a_run_is_added(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "report"
    first_report, _ = build(root, out)
    first = {path: path.read_bytes() for path in first_report.files}
    build(root, out)
    assert {path: path.read_bytes() for path in first_report.files} == first
    write(run_dir(root, "ner", "finetune", 1000, 3) / "result.json",
          result("ner", "finetune", 1000, 3, 90.0, 90.5, 100.0))
    build(root, out)
    for name in ("comparison.md", "comparison.csv", "comparison.tex", "figures/learning_curve_ner.png"):
        assert (out / name).read_bytes() != first[out / name], name


def test_duplicate_cells_keep_the_newest(runs, tmp_path):
    root, _ = runs
    rerun = tmp_path / "rerun"
    newer = write(run_dir(rerun, "sst5", "feature_ensemble", 100, 1) / "result.json",
                  result("sst5", "feature_ensemble", 100, 1, 45.0, 45.0, 5.0))
    older = run_dir(root, "sst5", "feature_ensemble", 100, 1) / "result.json"
    os.utime(older, ns=(1_000_000_000, 1_000_000_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_report([root, rerun], tmp_path / "report")
    assert row_of(report, "sst5", 100).side("feature_ensemble").test_mean == 45.0
    (duplicate,) = [str(w.message) for w in caught if "duplicate runs" in str(w.message)]
    assert f"kept {newer}" in duplicate and str(older) in duplicate
    assert "--select-on-dev" not in duplicate  # the same config twice is a re-run, not another setting


def test_figures_are_valid_pngs_linked_from_markdown(runs, tmp_path):
    root, _ = runs
    report, _ = build(root, tmp_path / "report")
    names = sorted(path.name for path in (tmp_path / "report" / "figures").iterdir())
    assert names == ["cost_vs_score.png", "learning_curve_ner.png", "learning_curve_sst5.png", "scalar_mix.png"]
    md = (tmp_path / "report" / "comparison.md").read_text()
    for name in names:
        data = (tmp_path / "report" / "figures" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        assert f"(figures/{name})" in md


def test_cost_axis_labels_plain_seconds_that_do_not_collide():
    axes = Figure().subplots()
    axes.scatter([290, 6900], [1, 2])
    plain_log_x_axis(axes)
    axes.set_xlim(250, 7000)  # under 1.5 decades, where matplotlib labels minor ticks 3×10², 4×10², ...
    axes.figure.canvas.draw()
    low, high = axes.get_xlim()
    major = [tick.get_text() for tick, at in zip(axes.get_xticklabels(), axes.get_xticks()) if low <= at <= high]
    assert major == ["500", "1,000", "2,000", "5,000"]
    assert not any(tick.get_text() for tick in axes.get_xticklabels(minor=True))


def test_no_scalar_mix_figure_without_weights(tmp_path):
    data = result("sst5", "finetune", 100, 1, 42.0, 42.0, 3.0)  # sst5 finetune runs have scalar_mix null
    write(tmp_path / "runs" / "result.json", data)
    report = build_report([tmp_path / "runs"], tmp_path / "report")
    assert not (tmp_path / "report" / "figures" / "scalar_mix.png").exists()
    assert len(report.rows) == 1


def test_empty_folder_raises_and_cli_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoResultsError, match="no complete result.json"):
        build_report([tmp_path / "empty"], tmp_path / "report")
    done = subprocess.run([sys.executable, "-m", "elmo_bench.report.cli", str(tmp_path / "empty")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert f"no complete result.json found under {tmp_path / 'empty'}" in done.stderr


def test_cli_writes_into_first_folder_by_default(runs, capsys):
    root, bad = runs
    assert main([str(root)]) == 0
    assert (root / "report" / "comparison.md").exists()
    captured = capsys.readouterr()
    assert "4 rows from" in captured.out and str(bad["corrupt"]) in captured.err


def test_report_package_imports_without_torch():
    code = "import sys, elmo_bench.report; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_callback_writes_report_for_sweep_dir(runs):
    root, _ = runs
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}}})
    with pytest.warns(ResultFileWarning):  # the fixture's broken files
        ReportCallback().on_multirun_end(config)
    assert (root / "report" / "comparison.csv").exists()


def test_callback_never_fails_the_sweep(tmp_path, caplog):
    ReportCallback().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    ReportCallback().on_multirun_end(OmegaConf.create({}))
    assert "report failed" in caplog.text and "no hydra.sweep.dir" in caplog.text


def test_recorded_feature_seconds_stand_in_for_runs_without_feature_costs(tmp_path):
    root = tmp_path / "outputs"
    write(run_dir(root, "ner", "feature_ensemble", 100, 1) / "result.json",
          {**result("ner", "feature_ensemble", 100, 1, 80.0, 81.0, 10.0), "feature_seconds": 5.5})
    write(run_dir(root, "ner", "finetune", 100, 1) / "result.json", result("ner", "finetune", 100, 1, 82.0, 83.0, 30.0))
    (row,) = build_report([root], tmp_path / "report").rows
    fe, ft = row.side("feature_ensemble"), row.side("finetune")
    assert (fe.train_seconds, fe.feature_seconds, fe.feature_seconds_amortised, fe.run_seconds) == (10.0, 5.5, 5.5, 15.5)
    assert (ft.train_seconds, ft.feature_seconds, ft.run_seconds) == (30.0, 0.0, 30.0)
    assert row.comparison("finetune").seconds_ratio == pytest.approx(30.0 / 15.5)


def test_no_run_time_ratio_between_a_cpu_and_a_gpu(tmp_path):
    root = tmp_path / "outputs"
    devices = {"feature_ensemble": ["cpu", "cpu"], "finetune": ["cuda:0", "cuda:1"], "two_stage": ["cpu", None]}
    for strategy, on in devices.items():
        for seed, device in enumerate(on, start=1):
            recorded = result("ner", strategy, 100, seed, 80.0 + seed, 80.0, 10.0 * seed) | {"device": device}
            write(run_dir(root, "ner", strategy, 100, seed) / "result.json",
                  {key: value for key, value in recorded.items() if value is not None})
    report, _ = build(root, tmp_path / "report")
    row = row_of(report, "ner", 100)
    assert row.comparison("finetune").seconds_ratio is None  # GPU seconds against CPU seconds
    assert row.comparison("finetune").delta == pytest.approx(0.0)  # the scores still compare
    assert row.comparison("two_stage").seconds_ratio == pytest.approx(1.0)  # an unrecorded device is no mismatch
    (finetune_line,) = md_lines(tmp_path / "report", "| ner | conll2003 | f1 | fixture | 100 | finetune")
    assert finetune_line.split(" | ")[-2] == "—"
    assert "trained on different device types (CPU and GPU)" in (tmp_path / "report" / "comparison.md").read_text()
    # The cost figure joins only the sides that trained on one device type; the GPU side stands apart.
    assert [row.side(s).devices for s in devices] == [("cpu",), ("cuda",), ("cpu",)]
    assert cost_paths(row) == [["feature_ensemble", "two_stage"]]


def test_cost_figure_joins_a_single_device_row_cheapest_first(tmp_path):
    root = tmp_path / "outputs"
    seconds = {"feature_ensemble": 30.0, "finetune": 90.0, "two_stage": 60.0}
    for strategy, spent in seconds.items():
        write(run_dir(root, "ner", strategy, 100, 1) / "result.json",
              result("ner", strategy, 100, 1, 80.0, 80.0, spent))
    report, _ = build(root, tmp_path / "report")
    row = row_of(report, "ner", 100)
    assert cost_paths(row) == [["feature_ensemble", "two_stage", "finetune"]]


def test_three_strategies_give_two_comparisons_with_the_baseline(tmp_path):
    root = tmp_path / "outputs"
    fe, ft, two_stage = [80.0, 82.0, 81.0], [83.0, 85.5, 83.5], [79.0, 82.5, 80.0]
    write_runs(root, {"two_stage": two_stage, "finetune": ft, "feature_ensemble": fe})
    report, _ = build(root, tmp_path / "report")
    (row,) = report.rows
    assert list(row.sides) == ["feature_ensemble", "finetune", "two_stage"]
    assert list(row.comparisons) == ["finetune", "two_stage"]
    # Means by hand: fe 243/3 = 81.0, finetune 252/3 = 84.0, two_stage 241.5/3 = 80.5.
    assert row.comparison("finetune").delta == pytest.approx(3.0)
    assert row.comparison("two_stage").delta == pytest.approx(-0.5)
    assert row.comparison("two_stage").params_ratio == pytest.approx(51.0)
    fe_line, ft_line, ts_line = md_lines(tmp_path / "report", "| ner |")
    assert "| feature_ensemble | 81.00 ± 1.00 (n=3) |" in fe_line and "| (baseline) |" in fe_line
    assert "| finetune | 84.00 ± " in ft_line and "| +3.00 (no interval) |" in ft_line
    assert "| two_stage | 80.50 ± " in ts_line and "| -0.50 (no interval) |" in ts_line
    table = list(csv.DictReader(io.StringIO((tmp_path / "report" / "comparison.csv").read_text())))
    assert [(line["strategy"], line["delta_test"]) for line in table] == [
        ("feature_ensemble", ""), ("finetune", "3.0000"), ("two_stage", "-0.5000")]
    assert not any(name in column for column in table[0] for name in ("feature_ensemble", "finetune", "two_stage"))


def test_any_strategy_name_loads_and_renders(tmp_path):
    root = tmp_path / "outputs"
    write_runs(root, {"feature_ensemble": [80.0, 82.0], "frozen_layer1": [70.0, 71.0]})
    report, messages = build(root, tmp_path / "report")
    assert messages == [] and {run.strategy for run in report.runs} == {"feature_ensemble", "frozen_layer1"}
    assert report.rows[0].comparison("frozen_layer1").delta == pytest.approx(70.5 - 81.0)
    (line,) = md_lines(tmp_path / "report", "| ner | conll2003 | f1 | fixture | 100 | frozen_layer1 |")
    assert "| -10.50 (no interval) |" in line
    table = list(csv.DictReader(io.StringIO((tmp_path / "report" / "comparison.csv").read_text())))
    assert [line["strategy"] for line in table] == ["feature_ensemble", "frozen_layer1"]
    assert r"frozen\_layer1 & 70.50" in (tmp_path / "report" / "comparison.tex").read_text()
    assert (tmp_path / "report" / "figures" / "learning_curve_ner.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_row_without_the_baseline_shows_scores_and_no_comparison(tmp_path):
    root = tmp_path / "outputs"
    write_runs(root, {"finetune": [83.0, 85.0], "two_stage": [79.0, 80.0]})
    report, _ = build(root, tmp_path / "report")
    (row,) = report.rows
    assert row.side("feature_ensemble") is None and row.comparisons == {}
    ft_line, ts_line = md_lines(tmp_path / "report", "| ner |")
    assert "| finetune | 84.00 ± 1.41 (n=2) |" in ft_line and "| n/a (no feature_ensemble run) |" in ft_line
    assert "| two_stage | 79.50 ± 0.71 (n=2) |" in ts_line
    table = list(csv.DictReader(io.StringIO((tmp_path / "report" / "comparison.csv").read_text())))
    assert [(line["test_mean"], line["delta_test"], line["verdict"]) for line in table] == [
        ("84.0000", "", ""), ("79.5000", "", "")]
    assert r"n/a (no feature\_ensemble run)" in (tmp_path / "report" / "comparison.tex").read_text()


def tuned(root: Path, strategy: str, lr: float, factor: float | None, seed: int, dev: float, test: float,
          seconds: float = 10.0) -> None:
    """One run of a tuning sweep: each setting writes into its own output_dir, as the runner does."""
    output_dir = root / (f"lr{lr}" if factor is None else f"lr{lr}-f{factor}")
    data = result("ner", strategy, 100, seed, test, dev, seconds)
    strategy_config = {"name": strategy} | ({} if factor is None else {"encoder_lr_factor": factor})
    data["config"] = {"seed": seed, "output_dir": str(output_dir), "force": False, "keep_checkpoint": False,
                      "trainer": {"lr": lr, "max_epochs": 3}, "strategy": strategy_config,
                      "data": {"train_size": 100, "subset_seed": seed}}  # subset_seed never makes a setting
    write(run_dir(output_dir, "ner", strategy, 100, seed) / "result.json", data)


# strategy -> [(lr, encoder_lr_factor, {seed: (dev, test)})]. The best dev setting never has the best test.
TUNING = {
    "feature_ensemble": [
        (0.001, None, {1: (80.0, 70.0), 2: (80.0, 71.0)}),  # dev 80.0
        (0.003, None, {1: (82.0, 75.0), 2: (81.0, 74.0)}),  # dev 81.5, test 74.5: kept (first of the tie)
        (0.01, None, {1: (81.0, 99.0), 2: (82.0, 99.0)}),  # dev 81.5 too, best test
    ],
    "finetune": [
        (0.001, 0.1, {1: (85.0, 80.0), 2: (86.0, 81.0)}),  # dev 85.5, test 80.5: kept
        (0.003, 0.1, {1: (84.0, 90.0), 2: (84.0, 91.0)}),  # dev 84.0, best test
        (0.001, 0.3, {1: (83.0, 85.0), 2: (83.0, 85.0)}),  # dev 83.0
    ],
}


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "tune"
    for strategy, settings in TUNING.items():
        for lr, factor, by_seed in settings:
            for seed, (dev, test) in by_seed.items():
                tuned(root, strategy, lr, factor, seed, dev, test)
    return root


def test_select_on_dev_keeps_the_best_dev_setting_not_the_best_test(sweep, tmp_path):
    report, messages = build(sweep, tmp_path / "report", select_on_dev=True)
    assert messages == []  # settings of one cell are not duplicates
    (row,) = report.rows
    assert row.side("feature_ensemble").setting == "trainer.lr=0.003"
    assert row.side("feature_ensemble").test_mean == pytest.approx(74.5)
    assert row.side("finetune").setting == "strategy.encoder_lr_factor=0.1, trainer.lr=0.001"
    assert row.side("finetune").test_mean == pytest.approx(80.5) and row.side("finetune").n == 2
    assert row.comparison("finetune").delta == pytest.approx(80.5 - 74.5)
    assert len(report.runs) == 4
    assert main([str(sweep), "--select-on-dev", "--out", str(tmp_path / "cli")]) == 0
    md = (tmp_path / "cli" / "comparison.md").read_text()
    (ft_line,) = md_lines(tmp_path / "cli", "| ner | conll2003 | f1 | fixture | 100 | finetune |")
    assert "| finetune | strategy.encoder_lr_factor=0.1, trainer.lr=0.001 | 80.50 ± " in ft_line
    assert "| +6.00 (no interval) |" in ft_line
    assert "chosen on dev" in md and "test was reported once" in md
    assert "| finetune | strategy.encoder_lr_factor=0.3, trainer.lr=0.001 | 2 | 83.00 |  |" in md  # a loser, listed
    table = list(csv.DictReader(io.StringIO((tmp_path / "cli" / "comparison.csv").read_text())))
    assert [line["setting"] for line in table] == ["trainer.lr=0.003", "strategy.encoder_lr_factor=0.1, trainer.lr=0.001"]
    assert "trainer.lr=0.003" in (tmp_path / "cli" / "comparison.tex").read_text()


def test_the_cost_ratio_counts_every_setting_of_the_tuning_grid(tmp_path):
    root = tmp_path / "tune"
    # per setting its (dev, seconds) for both seeds; the kept settings are the best on dev
    grid = {"feature_ensemble": [(0.001, None, 80.0, 10.0), (0.003, None, 82.0, 12.0), (0.01, None, 81.0, 14.0)],
            "finetune": [(0.001, 0.03, 84.0, 40.0), (0.001, 0.1, 86.0, 50.0), (0.001, 0.3, 85.0, 60.0)]}
    for strategy, settings in grid.items():
        for lr, factor, dev, seconds in settings:
            for seed in (1, 2):
                tuned(root, strategy, lr, factor, seed, dev, 70.0, seconds)
    report, _ = build(root, tmp_path / "report", select_on_dev=True)
    (row,) = report.rows
    # each arm paid for its three settings: 12 + 10 + 14 and 50 + 40 + 60 seconds a seed
    assert row.side("feature_ensemble").run_seconds == pytest.approx(36.0)
    assert row.side("finetune").run_seconds == pytest.approx(150.0)
    assert row.comparison("finetune").cost_ratio == pytest.approx(150.0 / 36.0)


@pytest.mark.parametrize(("tests", "floor", "learns"), [
    ({"feature_ensemble": (27.7, 27.5), "finetune": (27.6, 27.8)}, 28.6, False),  # SST-5 at 100: under the floor
    ({"feature_ensemble": (31.0, 31.2), "finetune": (32.0, 33.0)}, 28.6, False),  # 4.0 points above it: not clear
    ({"feature_ensemble": (40.0, 41.0), "finetune": (42.0, 43.0)}, 28.6, True),
])
def test_rows_no_strategy_lifts_clear_of_the_trivial_baseline_are_labelled_neither_learns(tmp_path, tests, floor,
                                                                                         learns):
    for strategy, by_seed in tests.items():
        for seed, test in enumerate(by_seed, 1):
            data = result("sst5", strategy, 100, seed, test, test, 10.0)
            data["floor"] = {"rule": "the training subset's majority class", "metric": "accuracy", "test": floor}
            write(run_dir(tmp_path / "runs", "sst5", strategy, 100, seed) / "result.json", data)
    build(tmp_path / "runs", tmp_path / "report")
    md = (tmp_path / "report" / "comparison.md").read_text()
    best = max(statistics.mean(by_seed) for by_seed in tests.values())
    note = f"neither learns: the best, finetune ({best:.1f}), is within 5 points of the trivial baseline ({floor:.1f})"
    assert (note in md) is not learns
    assert ("| neither learns |" in md) is not learns  # the headline's cell


def test_without_select_on_dev_settings_are_duplicates_and_the_warning_says_so(sweep, tmp_path):
    _, messages = build(sweep, tmp_path / "report")
    duplicates = [message for message in messages if "duplicate runs" in message]
    assert len(duplicates) == 4  # two strategies × two seeds, each run at three settings
    assert all("--select-on-dev" in message and "trainer.lr" in message for message in duplicates)
    assert not any("subset_seed" in message or "output_dir" in message.split("differ in")[1]
                   for message in duplicates)


def test_the_classes_that_move_most_are_listed_per_comparison(tmp_path):
    root = tmp_path / "outputs"
    per_type = {"feature_ensemble": {"PER": 80.0, "LOC": 70.0, "ORG": 60.0, "MISC": 50.0},
                "finetune": {"PER": 80.5, "LOC": 66.0, "ORG": 61.0, "MISC": 53.0}}
    for strategy, scores in per_type.items():
        for seed in (1, 2):
            data = result("ner", strategy, 100, seed, 70.0, 70.0, 10.0)
            data["metrics"]["test"] |= {f"f1_{kind}": value + seed for kind, value in scores.items()}
            write(run_dir(root, "ner", strategy, 100, seed) / "result.json", data)
    report, _ = build(root, tmp_path / "report")
    assert report.rows[0].side("finetune").class_f1 == {"LOC": 67.5, "MISC": 54.5, "ORG": 62.5, "PER": 82.0}
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert "- ner (conll2003, fixture, n=100) finetune: LOC -4.00, MISC +3.00, ORG +1.00" in md


def test_runs_stopped_while_still_improving_are_counted_and_listed(tmp_path):
    root = tmp_path / "outputs"

    def history(best_step: int) -> dict:
        steps = [100, 200, 300]
        return {"best_step": best_step, "history": [{"step": step, "dev": step / 1000} for step in steps]}

    for seed, best_step in ((1, 300), (2, 200)):  # seed 1 was still improving at its last evaluation
        write(run_dir(root, "ner", "finetune", 100, seed) / "result.json",
              {**result("ner", "finetune", 100, seed, 82.0, 83.0, 30.0), **history(best_step)})
        write(run_dir(root, "ner", "feature_ensemble", 100, seed) / "result.json",
              {**result("ner", "feature_ensemble", 100, seed, 80.0, 81.0, 10.0), **history(200)})
    write(run_dir(root, "ner", "two_stage", 100, 1) / "result.json",  # no history recorded: never counted
          result("ner", "two_stage", 100, 1, 81.0, 81.0, 20.0))
    (row,) = build_report([root], tmp_path / "report").rows
    assert [row.side(name).still_improving for name in ("feature_ensemble", "finetune", "two_stage")] == [0, 1, 0]
    md = (tmp_path / "report" / "comparison.md").read_text()
    section = md.split("## Runs stopped while still improving")[1].split("\n## ")[0]
    assert "1 of the 5 runs had their best dev score at their last evaluation" in section
    assert [line for line in section.splitlines() if line.startswith("- ")] == [
        "- ner (conll2003, fixture, n=100) finetune: 1 of 2 runs"]


def test_no_still_improving_section_when_every_run_stopped_early(runs, tmp_path):
    build(runs[0], tmp_path / "report")
    assert "## Runs stopped while still improving" not in (tmp_path / "report" / "comparison.md").read_text()


def test_a_run_recorded_before_min_delta_pairs_only_with_its_old_value(tmp_path):
    root = tmp_path / "outputs"
    for seed, min_delta in ((1, 0.0), (2, 0.01)):
        old = result("ner", "feature_ensemble", 100, seed, 80.0, 81.0, 10.0) | {"config": {"trainer": {"patience": 5}}}
        new = result("ner", "finetune", 100, seed, 82.0, 83.0, 30.0) | {
            "config": {"trainer": {"patience": 5, "min_delta": min_delta}}}
        write(run_dir(root, "ner", "feature_ensemble", 100, seed) / "result.json", old)
        write(run_dir(root, "ner", "finetune", 100, seed) / "result.json", new)
    (row,) = build_report([root], tmp_path / "report").rows
    comparison = row.comparisons["finetune"]
    assert comparison.pairs == 1 and comparison.left_out == ("seed 2: trainer budget differs",)
