"""Linear probes: planted features the probe must separate or must not, and a probe over a real slice."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from elmo_bench.cli import setup
from elmo_bench.config import PROJECT_ROOT
from elmo_bench.errors import ConfigError
from elmo_bench.probe import ProbeConfig, fit_probe, register_probe_schema, run_probe

from runs import conll_slice


def test_separable_features_are_probed_perfectly():
    """Four classes whose centres lie 6 standard deviations apart in 16 dimensions, the same in every split."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, (4, 16))
    labels = [rng.integers(0, 4, n) for n in (400, 200, 200)]
    splits = [(centres[y] + rng.normal(0, 1, (len(y), 16)), y) for y in labels]
    probed = fit_probe(*splits, c_grid=[0.1, 1.0], max_iter=300)
    assert (probed.dev, probed.test) == (100.0, 100.0) and probed.converged


def test_shuffled_labels_score_near_chance():
    rng = np.random.default_rng(2)
    splits = [(rng.normal(0, 1, (n, 16)), rng.integers(0, 4, n)) for n in (600, 1000, 1000)]
    probed = fit_probe(*splits, c_grid=[0.01, 1.0], max_iter=300)
    assert abs(probed.test - 25.0) < 5  # 4 classes; binomial sd over 1,000 rows is 1.4 points


def probe_config(overrides: list[str]) -> ProbeConfig:
    """conf/probe.yaml composed as `elmo-bench-probe` composes it."""
    setup()
    register_probe_schema()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="probe", overrides=overrides))


@pytest.mark.slow
def test_a_probe_on_each_layer_and_a_runs_mix(shared_dir, tmp_path, monkeypatch):
    root = conll_slice(shared_dir, tmp_path / "data", train=80, dev=40, test=40)
    monkeypatch.setenv("ELMO_BENCH_CACHE", str(tmp_path / "cache"))
    cell = tmp_path / "cell"
    cell.mkdir()
    (cell / "result.json").write_text(json.dumps({
        "status": "complete", "task": "pos", "dataset": "conll2003", "strategy": "feature_ensemble", "model": "fixture",
        "train_size": 80, "seed": 1, "metric": "accuracy", "dev": 90.0, "test": 90.0, "train_seconds": 1.0,
        "task_family": "tagging", "scalar_mix": {"weights": [0.2, 0.3, 0.5], "gamma": 1.5},
        "config": {"inputs": {"layer_norm": False}},
        "trainable_params": 10, "total_params": 110, "encoder_params": 100}))  # the encoder was not trained
    config = probe_config(["task=pos", "model=fixture", f"data.root={root}", "data.use_hub=false",
                           f"output_dir={tmp_path / 'out'}", f"probe.cell={cell}", "probe.c_grid=[0.1,1.0]"])
    record = run_probe(config)
    written = json.loads((tmp_path / "out/probe/pos/mix-feature_ensemble-n80-seed1/fixture/nall/seed1/probe.json")
                         .read_text())
    assert written == record and record["unit"] == "token" and record["task_family"] == "tagging"
    assert record["mix_of"] == "feature_ensemble"
    assert list(record["probes"]) == ["layer 0", "layer 1", "layer 2", "learned mix"]
    assert all(0 < probe["test"] <= 100 and probe["c"] in (0.1, 1.0) for probe in record["probes"].values())
    assert [cost["split"] for cost in record["feature_cost"]] == ["train", "dev", "test"]


def test_a_task_without_token_or_sentence_labels_is_refused(tmp_path):
    config = probe_config(["task=stsb", "model=fixture", f"output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="config key 'task': a probe needs token or sentence labels"):
        run_probe(config)


def test_the_report_shows_the_layer_table_beside_learned_mix_weights(tmp_path):
    import warnings

    from elmo_bench.report import build_report

    probe_dir = tmp_path / "runs" / "probe" / "pos" / "layers" / "fixture" / "n100"
    for seed, layer1 in ((1, 90.0), (2, 92.0)):
        (probe_dir / f"seed{seed}").mkdir(parents=True)
        (probe_dir / f"seed{seed}" / "probe.json").write_text(json.dumps({
            "task": "pos", "dataset": "conll2003", "model": "fixture", "train_size": 100, "seed": seed,
            "unit": "token", "probes": {"layer 0": {"dev": 80.0, "test": 81.0},
                                        "layer 1": {"dev": layer1, "test": layer1 + 1}}}))
    for seed, weights in ((1, [0.2, 0.3, 0.5]), (2, [0.4, 0.3, 0.3])):
        run = tmp_path / "runs" / "pos" / "feature_ensemble" / "fixture" / "n100" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps({
            "status": "complete", "task": "pos", "dataset": "conll2003", "strategy": "feature_ensemble",
            "model": "fixture", "train_size": 100, "seed": seed, "metric": "accuracy", "dev": 90.0, "test": 90.0,
            "train_seconds": 1.0, "trainable_params": 10, "scalar_mix": {"weights": weights, "gamma": 1.0}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_report([tmp_path / "runs"], tmp_path / "report", references=False)
    assert report.left_out == [] and not caught  # a probe's seed folder is not a crashed run
    md = (tmp_path / "report" / "comparison.md").read_text()
    assert ("| pos | conll2003 | fixture | 100 | token | 2 | 81.00 (80.00) | 92.00 (91.00) | 0.30, 0.30, 0.40 (2) |"
            in md)


@pytest.mark.slow
def test_a_fine_tuned_cells_encoder_is_probed_under_its_own_name(shared_dir, tmp_path, monkeypatch):
    from elmo_bench.cell.runner import run

    from runs import FAST, make_config, offline_overrides

    root = conll_slice(shared_dir, tmp_path / "data", train=60, dev=30, test=30)
    overrides = [*offline_overrides(root, tmp_path, monkeypatch), *FAST, "task=pos", "data.train_size=40",
                 "keep_encoder=true", "trainer.max_epochs=1"]
    for strategy in ("finetune", "feature_ensemble"):
        run(make_config([*overrides, f"strategy={strategy}"]))
    cell = tmp_path / "out" / "pos" / "finetune" / "fixture" / "n40" / "seed1"
    assert (cell / "encoder.pt").is_file()
    assert not (tmp_path / "out/pos/feature_ensemble/fixture/n40/seed1/encoder.pt").exists()  # nothing was tuned
    common = ["task=pos", "model=fixture", f"data.root={root}", "data.use_hub=false", "data.train_size=40",
              f"output_dir={tmp_path / 'probes'}", "probe.c_grid=[1.0]"]
    pretrained = run_probe(probe_config(common))
    tuned = run_probe(probe_config([*common, f"probe.cell={cell}"]))
    assert (pretrained["model"], tuned["model"]) == ("fixture", "fixture-tuned")
    assert tuned["encoder"] == f"fine-tuned: {cell / 'encoder.pt'}" and pretrained["encoder"] == "pretrained (frozen)"
    keys = [{cost["split"]: cost["key"] for cost in record["feature_cost"]} for record in (pretrained, tuned)]
    assert all(keys[0][split] != keys[1][split] for split in ("train", "dev", "test"))  # the tuned layers' own features
    assert (tmp_path / "probes/probe/pos/mix-finetune-n40-seed1/fixture-tuned/n40/seed1/probe.json").is_file()
    assert (tmp_path / "probes/probe/pos/layers/fixture/n40/seed1/probe.json").is_file()  # neither overwrote the other
