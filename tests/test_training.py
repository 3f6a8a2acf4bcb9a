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
from elmo_bench.schedules import lr_multiplier
from elmo_bench.strategies import make_strategy, parameter_groups
from elmo_bench.encoders.elmo import ElmoEncoder
from elmo_bench.strategies.finetune import EncoderTuning, FinetuneConfig
from elmo_bench.training import Budget, Trainer


def tiny_bilm() -> BiLM:
    options = parse_options({"char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 0},
                             "lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2}})
    return BiLM(options)


def test_slanted_triangular_by_hand():
    config = TrainerConfig(schedule=Schedule.slanted_triangular, warmup_fraction=0.1, stlr_ratio=32)
    factor = lr_multiplier(config, total_steps=100)  # warm-up: 10 steps
    assert factor(0) == pytest.approx(1 / 32)
    assert factor(5) == pytest.approx((1 + 0.5 * 31) / 32)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx((1 + 0.5 * 31) / 32)  # halfway down the 90 decay steps
    assert factor(100) == pytest.approx(1 / 32)


def test_linear_warmup_then_decay_by_hand():
    factor = lr_multiplier(TrainerConfig(schedule=Schedule.linear, warmup_fraction=0.2), total_steps=10)
    assert [round(factor(t), 4) for t in range(11)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25,
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
    assert strategy.encoder_lr_factor(0, 0, 100) == pytest.approx(1 / 32)
    assert strategy.encoder_lr_factor(0, 10, 100) == pytest.approx(1.0)
    assert math.isclose(lr_multiplier(TrainerConfig(), 100)(10), 1.0)  # the task model's: constant


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
