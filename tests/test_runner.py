"""End-to-end runs of one cell on slices of the real CoNLL-2003 files with the fixture biLM."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from seqeval.metrics import classification_report, f1_score
from sklearn.metrics import f1_score as f1_score_tokens

from elmo_bench import host_speed
from elmo_bench.cell.atomic import save_torch
from elmo_bench.cell.checkpoints import read_checkpoint
from elmo_bench.errors import ConfigError, DataError
from elmo_bench.elmo.bilm import BiLM
from elmo_bench.cell.identity import config_record, identity_differences
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.training import Trainer

from runs import FAST, cell_predictions, conll_slice, make_config, offline_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, shared_dir) -> Path:
    return conll_slice(shared_dir, tmp_path_factory.mktemp("data"))


@pytest.fixture
def overrides(data_root, tmp_path, monkeypatch):
    return [*offline_overrides(data_root, tmp_path, monkeypatch), *FAST]



class CountingForward:
    """Counts BiLM.forward calls (patched onto the class)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = BiLM.forward

        def counted(bilm, char_ids):
            self.calls += 1
            return original(bilm, char_ids)

        monkeypatch.setattr(BiLM, "forward", counted)


def test_ner_feature_ensemble_writes_a_complete_record(overrides):
    config = make_config([*overrides, "task=ner", "strategy=feature_ensemble", "data.train_size=80"])
    result = run(config)
    folder = cell_dir(config)
    assert folder == Path(config.output_dir) / "ner/feature_ensemble/fixture/n80/seed1"
    assert json.loads((folder / "result.json").read_text()) == result
    for key in ("task", "strategy", "model", "train_size", "seed", "metric", "dev", "test", "metrics", "epochs",
                "train_seconds", "trainable_params", "peak_memory_mb", "scalar_mix", "device", "versions", "config"):
        assert key in result, key
    assert (result["task"], result["strategy"], result["train_size"], result["metric"]) == (
        "ner", "feature_ensemble", 80, "f1")
    assert (result["precision"], result["config"]["trainer"]["precision"]) == ("fp32", "fp32")
    assert result["train_pool"] == 120 and result["epochs"] == 2
    # where the time went: dev scored twice during training, inside the cell's whole wall time
    assert 0 < result["eval_seconds"] and len(result["history"]) == 2
    assert result["wall_seconds"] > result["train_seconds"] + result["eval_seconds"] + result["feature_seconds"]
    assert 0 < result["cpu_seconds"] < result["wall_seconds"] * os.cpu_count()
    # the host's speed at the cell's start and end, on the cell's own device and threads (for the report's cost)
    speed = result["host_speed"]
    assert (speed["workload"], speed["device"], speed["threads"]) == (host_speed.WORKLOAD, "cpu", result["threads"])
    assert len(speed["seconds"]) == 2 and all(0 < seconds < result["wall_seconds"] for seconds in speed["seconds"])
    assert sum(result["scalar_mix"]["weights"]) == pytest.approx(1.0, abs=1e-5)
    assert not (folder / "checkpoint.pt").exists()
    # The metric is recomputed here from the predictions file alone, with seqeval directly.
    for split in ("dev", "test"):
        rows = cell_predictions(folder, split)
        assert len(rows) == 60
        expected = 100 * f1_score([r["gold"] for r in rows], [r["pred"] for r in rows])
        assert result[split] == pytest.approx(expected, abs=1e-3)
        by_type = classification_report([r["gold"] for r in rows], [r["pred"] for r in rows], output_dict=True,
                                         zero_division=0)
        for kind in ("PER", "LOC", "ORG", "MISC"):
            for key, column in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
                assert result["metrics"][split][f"{key}_{kind}"] == pytest.approx(100 * by_type[kind][column], abs=1e-3)


def test_pos_both_strategies_share_the_subset_and_differ_in_trainable_biLM(overrides):
    results = {
        name: run(make_config([*overrides, "task=pos", f"strategy={name}", "data.train_size=50"]))
        for name in ("feature_ensemble", "finetune")
    }
    frozen, tuned = results["feature_ensemble"], results["finetune"]
    assert frozen["train_subset_digest"] == tuned["train_subset_digest"]
    # The fixture biLM's 105,120 weights plus the char table's padding row (E = 4), which trains too.
    assert tuned["trainable_params"] - frozen["trainable_params"] == 105_120 + 4
    assert tuned["total_params"] == frozen["total_params"]
    rows = cell_predictions(Path(overrides[1].split("=", 1)[1]) / "pos/finetune/fixture/n50/seed1", "test")
    correct = sum(g == p for r in rows for g, p in zip(r["gold"], r["pred"]))
    assert tuned["test"] == pytest.approx(100 * correct / sum(len(r["gold"]) for r in rows), abs=1e-3)
    # Per tag, from the predictions with scikit-learn on the tokens.
    gold, pred = [t for r in rows for t in r["gold"]], [t for r in rows for t in r["pred"]]
    tags = sorted(set(gold) | set(pred))
    f1 = f1_score_tokens(gold, pred, labels=tags, average=None, zero_division=0)
    assert [tuned["metrics"]["test"][f"f1_{tag}"] for tag in tags] == pytest.approx(100 * f1, abs=1e-3)
    assert tuned["metrics"]["test"]["macro_f1"] == pytest.approx(100 * f1.mean(), abs=1e-3)


def test_finished_cell_is_skipped_and_force_reruns(overrides):
    config = make_config([*overrides, "task=pos", "data.train_size=30", "trainer.max_epochs=1"])
    first = run(config)
    result_file = cell_dir(config) / "result.json"
    stamp = result_file.stat().st_mtime_ns
    assert run(config) == first and result_file.stat().st_mtime_ns == stamp
    forced = make_config([*overrides, "task=pos", "data.train_size=30", "trainer.max_epochs=1", "force=true"])
    again = run(forced)
    assert result_file.stat().st_mtime_ns != stamp
    assert again["test"] == first["test"]  # same seed, same config, CPU: identical metrics


def test_a_different_config_in_a_finished_cell_is_refused(overrides):
    run(make_config([*overrides, "task=pos", "data.train_size=30", "trainer.max_epochs=1"]))
    changed = make_config([*overrides, "task=pos", "data.train_size=30", "trainer.max_epochs=1", "trainer.lr=0.01"])
    with pytest.raises(ConfigError, match=r"trainer\.lr: 0\.001 -> 0\.01"):
        run(changed)


def test_auto_precision_is_recorded_as_the_precision_run(overrides, monkeypatch):
    from elmo_bench import training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    result = run(make_config([*overrides, "task=ner", "strategy=feature_ensemble", "data.train_size=40",
                              "trainer.precision=auto"]))
    assert (result["precision"], result["config"]["trainer"]["precision"]) == ("fp32", "auto")


def test_a_cell_recorded_before_a_knob_existed_matches_the_knobs_old_value():
    before = {"trainer": {"lr": 0.001, "patience": 5}}
    assert identity_differences(before, {"trainer": {"lr": 0.001, "patience": 5, "min_delta": 0.0}}) == []
    assert identity_differences(before, {"trainer": {"lr": 0.001, "patience": 5, "min_delta": 0.01}}) == [
        "trainer.min_delta: 0.0 -> 0.01"]
    # issue 52's recipe is a new experiment, its old values are the old one's
    assert identity_differences(before, {"trainer": {"lr": 0.001, "patience": 5, "schedule_horizon": "patience",
                                                     "clip_groups": "joint", "smooth_evals": 1}}) == [
        "trainer.schedule_horizon: 'budget' -> 'patience'"]
    assert identity_differences({"data": {}}, {"data": {"dev_size": None, "dev_cap": 1000}}) == []


def test_interrupted_run_resumes_to_the_same_metrics(overrides, monkeypatch):
    args = [*overrides, "task=ner", "strategy=finetune", "data.train_size=40", "trainer.max_epochs=3"]
    uninterrupted = run(make_config([*args, "output_dir=" + overrides[1].split("=", 1)[1] + "/a"]))
    config = make_config([*args, "output_dir=" + overrides[1].split("=", 1)[1] + "/b"])
    original = Trainer._save_checkpoint

    def save_then_die(trainer):
        original(trainer)
        if trainer.progress.epoch == 2:
            raise KeyboardInterrupt  # killed right after the epoch-2 checkpoint

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_die)
    started, started_cpu = time.perf_counter(), time.process_time()
    with pytest.raises(KeyboardInterrupt):
        run(config)
    checkpoint = cell_dir(config) / "checkpoint.pt"
    assert checkpoint.is_file() and not (cell_dir(config) / "result.json").exists()
    state = read_checkpoint(checkpoint)
    assert 0 < state["progress"]["wall_seconds"] < time.perf_counter() - started
    assert 0 < state["progress"]["cpu_seconds"] < time.process_time() - started_cpu
    # as if the first attempt had taken 1,000 s (500 s of CPU) to that checkpoint
    state["progress"]["wall_seconds"], state["progress"]["cpu_seconds"] = 1000.0, 500.0
    save_torch(checkpoint, state)
    monkeypatch.setattr(Trainer, "_save_checkpoint", original)
    second_attempt, second_attempt_cpu = time.perf_counter(), time.process_time()
    resumed = run(config)
    # the cell's cost counts the first attempt up to its checkpoint, then the whole second attempt
    assert 1000.0 < resumed["wall_seconds"] < 1000.0 + time.perf_counter() - second_attempt
    assert 500.0 < resumed["cpu_seconds"] < 500.0 + time.process_time() - second_attempt_cpu
    assert resumed["epochs"] == 3
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in uninterrupted["history"]]


def test_frozen_biLM_runs_once_per_dataset(overrides, monkeypatch):
    counter = CountingForward(monkeypatch)
    args = [*overrides, "task=ner", "strategy=feature_ensemble", "data.train_size=40", "trainer.max_epochs=2"]
    original_fit = Trainer.fit
    calls_at_fit = []

    def fit(trainer, train, dev):
        calls_at_fit.append(counter.calls)
        return original_fit(trainer, train, dev)

    monkeypatch.setattr(Trainer, "fit", fit)
    run(make_config(args))
    assert calls_at_fit[0] > 0 and counter.calls == calls_at_fit[0]  # no biLM call in any epoch
    run(make_config([*args, "force=true"]))
    assert counter.calls == calls_at_fit[0]  # the rerun reads every feature from the cache


def test_every_cell_records_its_feature_cost_whoever_computed_it(overrides):
    """Seed 2 reads seed 1's dev and test features from the cache; it still records what they cost."""
    args = [*overrides, "task=ner", "data.train_size=40"]
    first = run(make_config([*args, "strategy=feature_ensemble", "seed=1"]))
    second = run(make_config([*args, "strategy=feature_ensemble", "seed=2"]))
    tuned = run(make_config([*args, "strategy=finetune", "seed=1"]))
    by_split = [{cost["split"]: cost for cost in result["feature_cost"]} for result in (first, second)]
    assert [list(costs) for costs in by_split] == [["train", "dev", "test"]] * 2
    assert all(cost["computed_here"] and cost["seconds"] > 0 and cost["device"] == "cpu"
               for cost in by_split[0].values())
    assert by_split[1]["train"]["computed_here"] and by_split[1]["train"]["key"] != by_split[0]["train"]["key"]
    for split in ("dev", "test"):
        assert not by_split[1][split]["computed_here"]
        assert {key: by_split[1][split][key] for key in ("key", "tokens", "seconds", "device")} == {
            key: by_split[0][split][key] for key in ("key", "tokens", "seconds", "device")}
    assert tuned["feature_cost"] == []
    # What the report's pair check compares: the same data, biLM and family, whichever strategy and seed.
    assert len({(r["data_digest"], r["encoder_fingerprint"], r["task_family"]) for r in (first, second, tuned)}) == 1
    assert first["task_family"] == "tagging" and len(first["data_digest"]) == 16


def test_finetune_runs_the_biLM_every_step(overrides, monkeypatch):
    counter = CountingForward(monkeypatch)
    run(make_config([*overrides, "task=ner", "strategy=finetune", "data.train_size=40", "trainer.max_epochs=1"]))
    assert counter.calls > 3


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("trainer.lr=-0.1", ConfigError, "trainer.lr"),
        ("trainer.lr=0", ConfigError, "trainer.lr"),
        ("data.train_size=0", ConfigError, "data.train_size"),
        ("data.train_size=10.5", ConfigError, "data.train_size"),
        ("inputs.dropout=1.5", ConfigError, "inputs.dropout"),
        ("data.subset_seed=-1", ConfigError, "data.subset_seed"),
        ("strategy=finetune strategy.layer_lr_decay=0", ConfigError, "strategy.layer_lr_decay"),
        ("strategy=frozen_layer strategy.layer=7", ConfigError, "strategy.layer"),
        ("strategy=feature_ensemble strategy.mix=top", ConfigError, "needs its own strategy.name"),
        ("trainer.max_steps=10 trainer.min_steps=20", ConfigError, "trainer.max_steps"),
        ("head.hidden_dim=0", ConfigError, "head.hidden_dim"),
    ],
)
def test_wrong_values_fail_before_any_work(overrides, override, error, message):
    with pytest.raises(error, match=message):
        run(make_config(["task=ner", *overrides, *override.split()]))


def test_train_size_larger_than_the_pool_is_an_error(overrides):
    with pytest.raises(DataError, match=r"train_size=500 is larger than the training pool \(120 examples\)"):
        run(make_config([*overrides, "task=ner", "data.train_size=500"]))


def test_missing_data_names_the_paths(overrides, tmp_path):
    with pytest.raises(DataError, match=r"eng\.train"):
        run(make_config(["task=ner", *overrides, f"data.root={tmp_path / 'nowhere'}"]))


def test_a_model_urls_credentials_are_not_recorded(overrides):
    config = make_config([*overrides, "task=ner", "model=custom", "model.options_file=https://me:pw@example.org/o.json",
                          "model.weight_file=http://example.org:8080/w.hdf5"])
    model = config_record(config)["model"]
    assert model["options_file"] == "https://example.org/o.json"
    assert model["weight_file"] == "http://example.org:8080/w.hdf5"


def test_cuda_requested_without_cuda(overrides):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="trainer.device"):
        run(make_config([*overrides, "task=ner", "trainer.device=cuda"]))


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elmo_bench.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=900)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task=nosuchtask"], "nosuchtask"),
        (["strategy=frozen"], "frozen"),
        (["trainer.lrr=0.1"], "lrr"),
        (["trainer.precision=fp8"], "fp8"),
        (["trainer.lr=-1"], "trainer.lr"),
    ],
)
def test_cli_names_the_bad_key_or_value(args, message, tmp_path):
    completed = cli(*args, f"output_dir={tmp_path}", env={})
    assert completed.returncode != 0
    assert message in completed.stderr + completed.stdout
    assert not list(tmp_path.rglob("result.json"))


def test_multirun_over_strategies_and_sizes_writes_four_cells(overrides, tmp_path):
    out = tmp_path / "sweep"
    args = ["-m", *[o for o in overrides if not o.startswith("output_dir")], f"output_dir={out}", "task=ner",
            "strategy=feature_ensemble,finetune", "data.train_size=20,40", "trainer.max_epochs=1"]
    completed = cli(*args, env={"OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    cells = sorted(str(p.parent.relative_to(out)) for p in out.rglob("result.json"))
    assert cells == [
        "ner/feature_ensemble/fixture/n20/seed1",
        "ner/feature_ensemble/fixture/n40/seed1",
        "ner/finetune/fixture/n20/seed1",
        "ner/finetune/fixture/n40/seed1",
    ]


def test_seeds_draw_their_own_subsets_unless_one_is_pinned(overrides, tmp_path):
    args = [*overrides, "task=pos", "data.train_size=30", "trainer.max_epochs=1"]
    one, two = (run(make_config([*args, f"seed={seed}"])) for seed in (1, 2))
    assert (one["subset_seed"], two["subset_seed"]) == (1, 2)
    assert one["train_subset_digest"] != two["train_subset_digest"]
    pinned = [run(make_config([*args, f"seed={seed}", "data.subset_seed=7", f"output_dir={tmp_path / 'pinned'}"]))
              for seed in (1, 2)]
    assert pinned[0]["train_subset_digest"] == pinned[1]["train_subset_digest"]
    assert pinned[0]["subset_seed"] == pinned[1]["subset_seed"] == 7


def test_random_weights_ablation_is_its_own_cell(overrides):
    args = [*overrides, "task=pos", "data.train_size=30", "trainer.max_epochs=1"]
    trained = run(make_config(args))
    random = run(make_config([*args, "model.random_weights=true"]))
    assert random["model"] == "fixture-random" and trained["model"] == "fixture"
    assert cell_dir(make_config([*args, "model.random_weights=true"])).parts[-3] == "fixture-random"
    assert random["train_subset_digest"] == trained["train_subset_digest"]
    assert random["metrics"] != trained["metrics"]


def test_timing_the_host_leaves_the_runs_random_draws_alone():
    torch.manual_seed(7)
    expected = torch.rand(5)
    torch.manual_seed(7)
    assert host_speed.reference_seconds(torch.device("cpu")) > 0
    assert torch.equal(torch.rand(5), expected)


def test_the_dev_protocol_draws_nested_dev_subsets_and_the_runner_records_a_floor(overrides):
    results, dev_ids = {}, {}
    for size in (20, 40):
        config = make_config([*overrides, "task=ner", f"data.train_size={size}", "data.dev_size=train",
                              "trainer.max_epochs=1"])
        results[size] = run(config)
        dev_ids[size] = {row["id"] for row in cell_predictions(cell_dir(config), "dev")}
    # as many dev sentences as training ones, drawn from the 60 of the dev slice, the smaller inside the larger
    assert [len(dev_ids[size]) for size in (20, 40)] == [20, 40] and dev_ids[20] < dev_ids[40]
    assert [(results[size]["data_details"]["dev_examples"], results[size]["data_details"]["dev_pool"])
            for size in (20, 40)] == [(20, 60), (40, 60)]
    assert results[20]["config"]["data"]["dev_size"] == "train"
    floor = results[40]["floor"]
    assert floor["metric"] == "f1" and "most frequent" in floor["rule"] and 0 <= floor["test"] <= 100
