"""The trainer's schedules, early stopping and parameter groups, checked against hand-computed values."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from elmo_bench.config import Schedule, StrategyConfig, StrategyName, TrainerConfig
from elmo_bench.elmo import BiLM
from elmo_bench.elmo.options import parse_options
from elmo_bench.strategies.strategies import parameter_groups
from elmo_bench.training import Trainer, lr_multiplier


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


def test_patience_ignores_the_first_epochs():
    config = TrainerConfig(patience=2, min_epochs=3)
    model = nn.Linear(2, 2)
    trainer = Trainer(SimpleNamespace(metric="f1"), model, [{"params": list(model.parameters())}], config,
                      torch.device("cpu"), 1, None, regularizer=lambda: 0)
    bad = []
    for score in (0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.05):
        trainer._record_epoch(1.0, score, 1.0)
        bad.append(trainer.progress.bad_epochs)
    assert bad == [0, 0, 0, 1, 0, 1, 2]
    assert trainer.progress.best_epoch == 5


def test_finetune_groups_use_the_biLM_rate_and_layer_decay():
    options = parse_options({"char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 0},
                             "lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2}})
    model = nn.ModuleDict({"bilm": BiLM(options), "head": nn.Linear(8, 3)})
    strategy = StrategyConfig(name=StrategyName.finetune, bilm_lr_factor=0.1, layer_lr_decay=0.5)
    groups = {g["name"]: g for g in parameter_groups(strategy, model, lr=1e-3)}
    assert groups["task"]["lr"] == 1e-3 and len(groups["task"]["params"]) == 2
    # top LSTM layer, lower LSTM layer, char encoder: each part below gets half the rate of the one above
    assert [groups[f"bilm_depth{d}"]["lr"] for d in range(3)] == pytest.approx([1e-4, 5e-5, 2.5e-5])
    covered = {id(p) for g in groups.values() for p in g["params"]}
    assert covered == {id(p) for p in model.parameters()}
