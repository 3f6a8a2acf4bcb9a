"""Every strategy end to end on slices of CoNLL-2003 with the fixture biLM: one recipe for the task model,
two_stage's stages and exact resumption, and the frozen layer ablations."""
from __future__ import annotations

import pytest
import torch

from elmo_bench.encoders.elmo import ElmoConfig, ElmoEncoder
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.strategies.embedder import LiveLayers
from elmo_bench.training import Trainer

from runs import FAST, make_config, offline_overrides

pytestmark = pytest.mark.slow


@pytest.fixture
def overrides(conll_root, tmp_path, monkeypatch):
    return [*offline_overrides(conll_root, tmp_path, monkeypatch), *FAST, "task=pos", "data.train_size=40"]


def rate_traces(monkeypatch) -> list[dict[str, float]]:
    """Records every optimizer group's learning rate at every update."""
    traces: list[dict[str, float]] = []
    original = Trainer._before_step

    def recorded(trainer, budget):
        original(trainer, budget)
        traces.append({group["name"]: group["lr"] for group in trainer.optimizer.param_groups})

    monkeypatch.setattr(Trainer, "_before_step", recorded)
    return traces


def test_the_task_models_rate_trace_is_the_same_in_every_strategy(overrides, monkeypatch):
    traces = rate_traces(monkeypatch)
    by_strategy = {}
    for strategy in ("feature_ensemble", "finetune", "two_stage"):
        traces.clear()
        whole = ["strategy.frozen_share=null"] if strategy == "two_stage" else []  # its first stage = feature_ensemble
        result = run(make_config([*overrides, f"strategy={strategy}", "trainer.schedule=linear", *whole]))
        by_strategy[strategy] = list(traces), result
    frozen, _ = by_strategy["feature_ensemble"]
    tuned, _ = by_strategy["finetune"]
    staged, staged_result = by_strategy["two_stage"]
    task_rates = [t["task"] for t in frozen]
    assert len(set(task_rates)) > 2  # a real schedule: warm-up, then decay
    assert [t["task"] for t in tuned] == task_rates
    # two_stage's first stage is feature_ensemble exactly; its second restarts the schedule
    first = staged_result["stages"][0]["steps"]
    assert [t["task"] for t in staged[:first]] == task_rates[:first]
    assert all(t["encoder_depth0"] == 0.0 for t in staged[:first])  # the encoder is frozen in the first stage
    # only the encoder groups differ: finetune's warm up on their own slanted-triangular schedule
    assert set(tuned[0]) == {"task", "encoder_depth0", "encoder_depth1", "encoder_depth2"} and set(frozen[0]) == {"task"}
    assert tuned[0]["encoder_depth0"] == pytest.approx(1e-3 * 0.1 / 32)
    assert tuned[0]["encoder_depth2"] == pytest.approx(1e-3 * 0.1 * 0.38**2 / 32)


def test_two_stage_records_its_stages(overrides):
    result = run(make_config([*overrides, "strategy=two_stage", "trainer.max_epochs=4"]))
    stages = result["stages"]
    assert [s["stage"] for s in stages] == ["frozen", "finetune"]
    assert stages[0]["end_epoch"] == 2 and stages[1]["end_epoch"] == 4  # half of the 4 epochs' updates each
    assert [h["stage"] for h in result["history"]] == ["frozen", "frozen", "finetune", "finetune"]
    assert stages[0]["best_dev"] == max(h["dev"] for h in result["history"][:2])
    assert result["dev"] == pytest.approx(100 * max(h["dev"] for h in result["history"]), abs=1e-3)
    assert result["trainable_params"] > 105_120  # the biLM trained in the second stage


@pytest.mark.parametrize(("share", "stage_steps"), [("0.5", [6, 6]), ("0.25", [3, 9]), ("null", [12, 12])])
def test_two_stage_trains_as_many_updates_as_finetune_unless_asked(overrides, share, stage_steps):
    """4 epochs of 3 updates, no early stopping: the stages share finetune's 12 updates (null: 12 each)."""
    no_stopping = ["trainer.max_epochs=4", "trainer.patience=100"]
    staged = run(make_config([*overrides, *no_stopping, "strategy=two_stage", f"strategy.frozen_share={share}"]))
    tuned = run(make_config([*overrides, *no_stopping, "strategy=finetune"]))
    assert [stage["steps"] for stage in staged["stages"]] == stage_steps and tuned["steps"] == 12


@pytest.mark.parametrize(
    "killed_after",
    [
        pytest.param(lambda p: p.stage == 0 and p.epoch == 1, id="in-the-frozen-stage"),
        pytest.param(lambda p: p.stage == 1 and p.stage_step == 0, id="at-the-switch"),
        pytest.param(lambda p: p.stage == 1 and p.epoch == 3, id="in-the-finetune-stage"),
    ],
)
def test_two_stage_resumes_exactly_after_a_kill(overrides, monkeypatch, killed_after, tmp_path):
    args = [*overrides, "strategy=two_stage", "trainer.max_epochs=4"]  # 2 epochs per stage
    uninterrupted = run(make_config([*args, f"output_dir={tmp_path / 'a'}"]))
    config = make_config([*args, f"output_dir={tmp_path / 'b'}"])
    original = Trainer._save_checkpoint

    def save_then_die(trainer):
        original(trainer)
        if killed_after(trainer.progress):
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(config)
    assert not (cell_dir(config) / "result.json").exists()
    monkeypatch.setattr(Trainer, "_save_checkpoint", original)
    resumed = run(config)
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["stages"] == uninterrupted["stages"]
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in uninterrupted["history"]],
                                                                    abs=1e-6)


@pytest.mark.parametrize(
    ("strategy", "folder", "weights"),
    [
        (["strategy=frozen_top"], "frozen_top", [0.0, 0.0, 1.0]),
        (["strategy=frozen_layer", "strategy.layer=1"], "frozen_layer1", [0.0, 1.0, 0.0]),
        (["strategy=frozen_average"], "frozen_average", [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_layer_ablations_are_their_own_cells(overrides, strategy, folder, weights):
    config = make_config([*overrides, *strategy])
    result = run(config)
    assert cell_dir(config).parts[-4] == folder and result["strategy"] == folder
    assert result["scalar_mix"]["weights"] == pytest.approx(weights, abs=1e-6)  # fixed: they never train


def test_the_live_encoder_reads_a_repeated_text_once_in_evaluation_only(fixtures_dir):
    elmo_dir = fixtures_dir / "allennlp-elmo"
    encoder = ElmoEncoder.load(ElmoConfig(name="fixture", options_file=str(elmo_dir / "options.json"),
                                          weight_file=str(elmo_dir / "lm_weights.hdf5")), seed=1)
    texts = [("The", "cat", "sat", "."), ("A", "dog"), ("The", "cat", "sat", "."), ("Hello",)]
    read = []
    encoder.register_forward_pre_hook(lambda module, args: read.append(len(args[0])))
    live = LiveLayers(encoder).eval()
    with torch.no_grad():
        layers, mask = live(texts)
        each_layers, each_mask = encoder(texts)
    assert read == [3, 4] and torch.equal(mask, each_mask)
    for shared, each in zip(layers, each_layers, strict=True):
        torch.testing.assert_close(shared, each, rtol=0, atol=1e-6)
    live.train()(texts)
    assert read == [3, 4, 4]  # training encodes every copy: each keeps its own dropout


def test_a_patience_stopped_run_ends_with_the_encoder_at_its_floor(overrides, monkeypatch, tmp_path):
    traces = rate_traces(monkeypatch)
    # 3 updates an epoch, dev after each, 90 updates planned; min_delta=1 (100 points): no evaluation after the first
    # resets patience, so evaluations 2, 3 and 4 end the run at update 12
    stopped = [*overrides, "strategy=finetune", "trainer.max_epochs=30", "trainer.patience=3", "trainer.min_delta=1.0"]
    result = run(make_config(stopped))
    peak = 1e-3 * 0.1
    assert result["steps"] == 12 and len(traces) == 12
    # evaluation 2 (update 6) pulled the decay's end in to update 11, the last before patience stops the run
    assert traces[-1]["encoder_depth0"] == pytest.approx(peak / 32)
    best = result["best_step"]
    assert result["lr_at_best"]["encoder_depth0"]["lr"] == pytest.approx(traces[best - 1]["encoder_depth0"])
    assert result["lr_at_best"]["encoder_depth0"]["of_peak"] == pytest.approx(traces[best - 1]["encoder_depth0"] / peak)
    # the old horizon (each stage's planned 90 updates, warm-up 9) leaves the last update near the peak
    traces.clear()
    run(make_config([*stopped, "trainer.schedule_horizon=budget", f"output_dir={tmp_path / 'budget'}"]))
    assert traces[-1]["encoder_depth0"] == pytest.approx(peak * (1 + (1 - 2 / 81) * 31) / 32)


def test_finetune_and_two_stage_warm_the_encoder_up_over_the_same_updates(overrides, monkeypatch):
    traces = rate_traces(monkeypatch)
    no_stopping = ["trainer.max_epochs=10", "trainer.patience=100"]  # 30 updates; warm-up 10% of them: 3
    run(make_config([*overrides, *no_stopping, "strategy=finetune"]))
    tuned = [trace["encoder_depth0"] for trace in traces]
    traces.clear()
    run(make_config([*overrides, *no_stopping, "strategy=two_stage"]))
    staged = [trace["encoder_depth0"] for trace in traces][15:]  # its tuned stage: the second 15 updates
    peak = 1e-3 * 0.1
    assert tuned[:4] == pytest.approx([peak * (1 + step / 3 * 31) / 32 for step in range(4)])
    assert staged[:4] == pytest.approx(tuned[:4])  # not over 10% of its own 15 updates (1)
