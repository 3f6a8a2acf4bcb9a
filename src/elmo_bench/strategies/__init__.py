"""How the task model uses the encoder. Adding a strategy: a module with a `Strategy` subclass, listed in
STRATEGIES, plus its YAML file in conf/strategy/."""
from __future__ import annotations

from .base import EmbedderContext, Strategy, StrategyConfig, parameter_groups
from .feature_ensemble import FeatureEnsemble
from .finetune import Finetune
from .two_stage import TwoStage

STRATEGIES: list[type[Strategy]] = [FeatureEnsemble, Finetune, TwoStage]


def strategy_schemas() -> dict[str, type]:
    return {strategy.kind: strategy.config_schema for strategy in STRATEGIES}


def make_strategy(config: StrategyConfig) -> Strategy:
    # Exact types: a schema may extend another's (two_stage's extends finetune's).
    for strategy in STRATEGIES:
        if type(config) is strategy.config_schema:
            return strategy(config)
    raise TypeError(f"no strategy takes a {type(config).__name__} config")


__all__ = ["EmbedderContext", "STRATEGIES", "Strategy", "StrategyConfig", "make_strategy", "parameter_groups",
           "strategy_schemas"]
