"""The trainer's schedules, budget, early stopping and the fine-tuning recipe, checked by hand."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from elmo_bench.errors import ConfigError
from elmo_bench.config import Schedule, TrainerConfig
from elmo_bench.elmo import BiLM
from elmo_bench.elmo.options import parse_options
from elmo_bench.schedules import Horizon, lr_factor
from elmo_bench.strategies import make_strategy, parameter_groups
from elmo_bench.encoders.elmo import ElmoEncoder
from elmo_bench.strategies.finetune import EncoderTuning, FinetuneConfig
from elmo_bench.training import Budget, Trainer, standard_error


def tiny_bilm() -> BiLM:
    options = parse_options({"char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 0},
                             "lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2}})
    return BiLM(options)


def test_slanted_triangular_by_hand():
    config = TrainerConfig(schedule=Schedule.slanted_triangular, warmup_fraction=0.1, stlr_ratio=32)
    def factor(step: int) -> float:
        return lr_factor(config, Horizon(100, 100), step)  # warm-up: 10 steps

    assert factor(0) == pytest.approx(1 / 32)
    assert factor(5) == pytest.approx((1 + 0.5 * 31) / 32)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx((1 + 0.5 * 31) / 32)  # halfway down the 90 decay steps
    assert factor(100) == pytest.approx(1 / 32)


def test_linear_warmup_then_decay_by_hand():
    config = TrainerConfig(schedule=Schedule.linear, warmup_fraction=0.2)
    assert [round(lr_factor(config, Horizon(10, 10), t), 4) for t in range(11)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25,
                                                        0.125, 0.0]


@pytest.mark.parametrize(
    ("overrides", "steps_per_epoch", "expected"),
    [
        # 3 batches an epoch: 300 updates need 100 epochs, not 30; dev every ceil(50 / 3) = 17 epochs
        ({}, 3, Budget(3, 300, 300, 17)),
        # a large set: 30 epochs of 200 updates, dev every epoch
        ({}, 200, Budget(200, 6000, 300, 1)),
        # a cap inside an epoch
        ({"max_steps": 1000}, 200, Budget(200, 1000, 300, 1)),
        ({"min_steps": 0, "max_epochs": 2, "eval_steps": 1}, 2, Budget(2, 4, 0, 1)),
    ],
)
def test_budget_gives_small_subsets_enough_updates(overrides, steps_per_epoch, expected):
    assert Budget.plan(TrainerConfig(**overrides), steps_per_epoch) == expected


def test_patience_counts_evaluations_and_waits_for_the_minimum_updates():
    config = TrainerConfig(patience=2, min_steps=30)
    model = nn.Linear(2, 2)
    trainer = Trainer(SimpleNamespace(metric="f1"), model, SimpleNamespace(stages=("frozen",)),
                      [{"params": list(model.parameters()), "name": "task", "base_lr": 1e-3}], config,
                      torch.device("cpu"), 1, None, regularizer=lambda: 0)
    budget = Budget(10, 100, 30, 1)
    spent = []
    for step, score in zip((10, 20, 30, 40, 50), (0.5, 0.4, 0.3, 0.6, 0.6)):
        trainer.progress.stage_step = trainer.progress.step = step
        trainer._record_evaluation(1.0, score, 1.0)
        spent.append((trainer.progress.bad_evals, trainer._patience_spent(budget)))
    # two bad evaluations by step 20 do not stop a run before its 30 updates; the improvement resets them
    assert spent == [(0, False), (1, False), (2, True), (0, False), (1, False)]
    assert trainer.progress.best_step == 40


def test_a_gain_below_min_delta_keeps_the_model_but_not_the_patience():
    config = TrainerConfig(patience=2, min_steps=0, min_delta=0.01)
    model = nn.Linear(2, 2)
    trainer = Trainer(SimpleNamespace(metric="f1"), model, SimpleNamespace(stages=("frozen",)),
                      [{"params": list(model.parameters()), "name": "task", "base_lr": 1e-3}], config,
                      torch.device("cpu"), 1, None, regularizer=lambda: 0)
    counts = []
    for step, score in zip((10, 20, 30, 40), (0.50, 0.505, 0.52, 0.525)):
        trainer.progress.stage_step = trainer.progress.step = step
        trainer._record_evaluation(1.0, score, 1.0)
        counts.append(trainer.progress.bad_evals)
    # +0.005 at step 20 is the new best but counts as a bad evaluation; +0.015 (over 0.505) resets the count
    assert counts == [0, 1, 0, 1]
    assert (trainer.progress.best_step, trainer.progress.best_score) == (40, 0.525)


def test_min_delta_must_not_be_negative():
    with pytest.raises(ConfigError, match="trainer.min_delta"):
        TrainerConfig(min_delta=-0.1)


def test_finetune_groups_have_discriminative_rates_and_cover_the_model():
    encoder = ElmoEncoder(tiny_bilm(), "fingerprint")
    strategy = make_strategy(FinetuneConfig(name="finetune", encoder_lr_factor=0.1, layer_lr_decay=0.5))
    strategy.tuning = EncoderTuning(strategy.config, encoder)
    model = nn.ModuleDict({"encoder": encoder, "head": nn.Linear(8, 3)})
    groups = {g["name"]: g for g in parameter_groups(strategy, model, lr=1e-3)}
    assert groups["task"]["lr"] == 1e-3 and len(groups["task"]["params"]) == 2
    # top LSTM layer, lower LSTM layer, char encoder: each part below gets half the rate of the one above
    assert [groups[f"encoder_depth{d}"]["lr"] for d in range(3)] == pytest.approx([1e-4, 5e-5, 2.5e-5])
    assert all(g["base_lr"] == g["lr"] for g in groups.values())
    covered = {id(p) for g in groups.values() for p in g["params"]}
    assert covered == {id(p) for p in model.parameters()}


def test_default_discriminative_decay_is_allennlps():
    assert FinetuneConfig(name="finetune").layer_lr_decay == 0.38


def test_gradual_unfreezing_starts_at_the_top_layer():
    bilm = tiny_bilm()
    tuning = EncoderTuning(FinetuneConfig(name="finetune", unfreeze_steps=5), ElmoEncoder(bilm, "fingerprint"))

    def trainable_parts(step: int) -> list[bool]:
        tuning.unfreeze(step)
        return [all(p.requires_grad for p in part.parameters()) for part in bilm.parts()]

    # parts bottom to top: char encoder, LSTM layer 0, LSTM layer 1
    assert trainable_parts(0) == [False, False, True]
    assert trainable_parts(4) == [False, False, True]
    assert trainable_parts(5) == [False, True, True]
    assert trainable_parts(10) == [True, True, True]
    assert trainable_parts(99) == [True, True, True]


def test_a_frozen_char_encoder_never_unfreezes():
    bilm = tiny_bilm()
    tuning = EncoderTuning(FinetuneConfig(name="finetune", frozen_parts=1), ElmoEncoder(bilm, "fingerprint"))
    tuning.unfreeze(10_000)  # long after gradual unfreezing reached the bottom
    assert not any(p.requires_grad for p in bilm.char_encoder.parameters())
    assert all(p.requires_grad for layer in bilm.lstm.layers for p in layer.parameters())
    assert [g["name"] for g in tuning.groups(1e-3)] == ["encoder_depth1", "encoder_depth0"]  # not in the optimizer


def test_encoder_schedule_is_its_own():
    strategy = make_strategy(FinetuneConfig(name="finetune"))
    strategy.tuning = EncoderTuning(strategy.config, ElmoEncoder(tiny_bilm(), "fingerprint"))
    # slanted triangular over 100 updates: 1/32 at the start, the peak after the 10% warm-up
    assert strategy.encoder_lr_factor(0, 0, Horizon(100, 100)) == pytest.approx(1 / 32)
    assert strategy.encoder_lr_factor(0, 10, Horizon(100, 100)) == pytest.approx(1.0)
    assert math.isclose(lr_factor(TrainerConfig(), Horizon(100, 100), 10), 1.0)  # the task model's: constant


def stlr(config: TrainerConfig, horizon: Horizon, steps) -> list[float]:
    return [lr_factor(config, horizon, step) for step in steps]


def test_a_pulled_in_horizon_decays_from_where_it_stood_to_the_floor_by_hand():
    config = TrainerConfig(schedule=Schedule.slanted_triangular, warmup_fraction=0.1, stlr_ratio=32)
    planned = Horizon(100, 100)  # warm-up 10 updates, then p = 1 - (t - 10) / 90
    pulled = planned.pulled_in(40, 59)  # at update 40 p stood at 1 - 30/90 = 2/3: it falls to 0 by update 59
    p_at_40, p_at_50 = 2 / 3, 2 / 3 * (1 - 10 / 19)
    assert stlr(config, pulled, [0, 10, 39]) == stlr(config, planned, [0, 10, 39])  # untouched before the pull
    assert stlr(config, pulled, [40, 50, 59, 80]) == pytest.approx(
        [(1 + p * 31) / 32 for p in (p_at_40, p_at_50, 0, 0)])
    assert pulled.pulled_in(50, 70) is pulled  # a later end never pushes the floor back
    again = pulled.pulled_in(50, 54)  # a sooner one bends the decay again, from where it stood at 50
    assert lr_factor(config, again, 52) == pytest.approx((1 + p_at_50 / 2 * 31) / 32)


def test_a_pull_during_the_warm_up_never_raises_the_rate():
    config = TrainerConfig(schedule=Schedule.linear, warmup_fraction=0.5)
    horizon = Horizon(20, 20).pulled_in(4, 8)  # warm-up 10 updates; the decay ends at update 8
    assert [round(lr_factor(config, horizon, t), 4) for t in range(10)] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.5, 0.25,
                                                                           0.0, 0.0]


def test_the_warm_up_is_a_share_of_the_run_when_the_horizon_follows_patience():
    config = TrainerConfig(schedule=Schedule.linear, warmup_fraction=0.1)
    # a tuned stage of 50 updates in a run of 100 warms up over 10 updates, as a one-stage run of 100 does
    assert [lr_factor(config, Horizon(50, 100), t) for t in (4, 9)] == pytest.approx([0.5, 1.0])
    # a share of the stage's 50: 5 updates of warm-up, then 45 of decay
    assert [lr_factor(config, Horizon(50, 50), t) for t in (4, 9)] == pytest.approx([1.0, 1 - 4 / 45])


def bare_trainer(config: TrainerConfig, groups: list[dict], model: nn.Module, metric: str = "accuracy") -> Trainer:
    return Trainer(SimpleNamespace(metric=metric), model, SimpleNamespace(stages=("finetune",)), groups, config,
                   torch.device("cpu"), 1, None, regularizer=lambda: 0)


def head_after_one_step(clip_groups: str, encoder_scale: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The head's parameters after one SGD step (clipped at 0.25) on a fixed batch, the encoder's gradients scaled;
    and the head's gradients, computed apart from the trainer."""
    torch.manual_seed(0)
    encoder, head = nn.Linear(4, 4), nn.Linear(4, 2)
    model = nn.Sequential(encoder, head)
    groups = [{"params": list(head.parameters()), "name": "task", "lr": 0.1, "base_lr": 0.1},
              {"params": list(encoder.parameters()), "name": "encoder_depth0", "lr": 0.1, "base_lr": 0.1}]
    trainer = bare_trainer(TrainerConfig(optimizer="sgd", grad_clip=0.25, clip_groups=clip_groups), groups, model)
    inputs = torch.randn(8, 4)
    head_gradients = torch.autograd.grad(model(inputs).pow(2).mean(), list(head.parameters()))
    for parameter in encoder.parameters():
        parameter.register_hook(lambda gradient: gradient * encoder_scale)
    trainer._update(model(inputs).pow(2).mean())
    return [p.detach().clone() for p in head.parameters()], list(head_gradients)


def test_the_encoders_gradients_never_change_the_heads_update_when_clipped_apart():
    torch.manual_seed(0)
    initial = [p.detach().clone() for p in nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))[1].parameters()]
    plain, gradients = head_after_one_step("separate", 1.0)
    scaled, _ = head_after_one_step("separate", 1e3)
    for p, q in zip(plain, scaled):
        assert torch.equal(p, q)
    # SGD first step: head - lr * g * min(1, 0.25 / |g|), with |g| the head's own gradient norm
    norm = math.sqrt(sum(float(g.pow(2).sum()) for g in gradients))
    for start, gradient, after in zip(initial, gradients, plain):
        torch.testing.assert_close(after, start - 0.1 * gradient * min(1.0, 0.25 / norm))
    assert norm > 0.25  # the clip acted on the head's own gradient
    joint_plain, _ = head_after_one_step("joint", 1.0)
    joint_scaled, _ = head_after_one_step("joint", 1e3)
    assert not torch.allclose(joint_plain[0], joint_scaled[0])  # one norm over both: the encoder shrinks its step


def stopping_point(scores: list[float], **overrides) -> int | None:
    """The evaluation (1-based) at which patience ends a run on this dev curve (dev of 1,000 examples)."""
    model = nn.Linear(1, 1)
    trainer = bare_trainer(TrainerConfig(min_steps=0, **overrides), [
        {"params": list(model.parameters()), "name": "task", "base_lr": 1e-3, "lr": 1e-3}], model)
    trainer.dev_examples = 1000
    budget = Budget(1, 10_000, 0, 1)
    for count, score in enumerate(scores, 1):
        trainer.progress.stage_step = trainer.progress.step = count
        trainer._record_evaluation(1.0, score, 1.0)
        if trainer._patience_spent(budget):
            return count
    return None


# A plateau at 80% accuracy with noise of about half a point: the standard error on 1,000 examples is
# sqrt(0.8 * 0.2 / 1000) = 1.26 points.
PLATEAU = [0.70, 0.75, 0.79, 0.800, 0.806, 0.803, 0.809, 0.804, 0.811, 0.805, 0.812, 0.806, 0.814]


def test_min_delta_auto_stops_a_noisy_plateau_that_any_gain_keeps_alive():
    assert stopping_point(PLATEAU, patience=3) is None  # a new best by noise every other evaluation
    # auto: 0.79 -> 0.80 is less than the 1.29 points of standard error at 0.79: evaluations 4, 5, 6 gain nothing
    assert stopping_point(PLATEAU, patience=3, min_delta="auto") == 6


def test_a_smoothed_dev_curve_is_not_stopped_by_one_lucky_evaluation():
    # a curve still rising 0.5 points an evaluation, with a spike of 4 points at evaluation 3
    curve = [0.700, 0.705, 0.750, 0.715, 0.720, 0.725, 0.730, 0.735, 0.740, 0.745, 0.750]
    assert stopping_point(curve, patience=3) == 6  # nothing beats the spike in three evaluations
    # means of 3: 0.700, 0.7025, 0.7183, 0.7233, 0.7283, 0.72, 0.725, 0.73, 0.735, 0.74 ... best 0.7283 at 5;
    # 0.72 (6), 0.725 (7), 0.73 (8) beats it: never three without a gain
    assert stopping_point(curve, patience=3, smooth_evals=3) is None


@pytest.mark.parametrize(("metric", "score", "examples", "expected"), [
    ("accuracy", 0.8, 1000, math.sqrt(0.8 * 0.2 / 1000)),
    ("f1", 0.5, 100, 0.05),
    ("pearson", 0.6, 101, 0.64 / 10),  # (1 - r^2) / sqrt(n - 1)
])
def test_the_dev_standard_error_by_hand(metric, score, examples, expected):
    assert standard_error(metric, score, examples) == pytest.approx(expected)


def test_min_delta_is_a_number_or_auto():
    with pytest.raises(ConfigError, match="trainer.min_delta"):
        TrainerConfig(min_delta="often")
    with pytest.raises(ConfigError, match="trainer.smooth_evals"):
        TrainerConfig(smooth_evals=0)


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    from elmo_bench import training
    from elmo_bench.config import Precision

    cpu = torch.device("cpu")
    with_bf16 = tmp_path / "zen4"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n\n")
    without = tmp_path / "zen2"
    without.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\nbugs\t\t: avx512_bf16\n")  # a flag outside flags
    assert training.cpu_has_native_bf16(with_bf16) and not training.cpu_has_native_bf16(without)
    assert not training.cpu_has_native_bf16(tmp_path / "absent")
    for native, expected in ((True, Precision.bf16), (False, Precision.fp32)):
        monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
        assert training.resolve_precision(cpu, Precision.auto) == expected
        assert training.resolve_precision(cpu, Precision.fp32) == Precision.fp32
        assert training.resolve_precision(cpu, Precision.bf16) == Precision.bf16  # asked for: kept (with a warning)
