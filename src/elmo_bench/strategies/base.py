"""What a strategy is to the runner and the trainer: how the encoder feeds the task model, stage by stage.

A strategy builds the embedder (where the layers come from and how they are mixed), names its stages
(a run trains stage after stage, each with the trainer's budget and early stopping), says which encoder
parameters train at each step and at which rate. It knows the encoder protocol (encoders/base.py), never
what is inside one. The task model's own parameters are never the
strategy's business: they get the trainer's rate, schedule, dropout and clipping in every arm.

Adding a strategy: a module with a `Strategy` subclass (its schema as a class attribute), listed in
`strategies.STRATEGIES`, plus one YAML file in conf/strategy/.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from ..config import InputConfig, check_path_part
from ..encoders import Encoder
from ..schedules import Horizon
from ..tasks.base import Tokens
from .embedder import Embedder, WordVocabulary
from .feature_cache import FeatureCost


@dataclass
class StrategyConfig:
    name: str = MISSING  # the cell folder's strategy part and result.json's "strategy"

    def __post_init__(self) -> None:
        check_path_part(self.name, "strategy.name")


@dataclass
class FeatureCacheConfig:
    """Where a frozen encoder's layers are kept between runs."""

    dir: str = "${cache:features}"  # under $ELMO_BENCH_CACHE, default ~/.cache/elmo_bench
    dtype: str = "float16"  # float16 halves memory and disk; float32 keeps every digit


@dataclass
class EmbedderContext:
    """What every strategy needs to build the embedder of one run."""

    text_groups: dict[str, list[Tokens]]  # every text the run embeds, by split
    vocabulary: WordVocabulary | None
    inputs: InputConfig
    batch_tokens: int  # for computing features
    device: torch.device
    # Filled by a strategy that reads or computes frozen features; the runner records it in result.json.
    feature_costs: list[FeatureCost] = field(default_factory=list)


class Strategy(ABC):
    kind: str  # the schema's name in conf/: strategy/<kind>_schema
    config_schema: type
    stages: tuple[str, ...]  # trained one after the other, e.g. ("frozen", "finetune")

    def __init__(self, config: StrategyConfig):
        self.config = config
        self.name = config.name

    @property
    def is_baseline(self) -> bool:
        """Whether every other strategy is compared with this one (result.json's `baseline`, read by the report)."""
        return False

    @abstractmethod
    def build_embedder(self, encoder: Encoder, context: EmbedderContext) -> Embedder: ...

    def encoder_groups(self, lr: float) -> list[dict]:
        """Optimizer groups for the encoder's parameters (none when it stays frozen)."""
        return []

    def stage_shares(self) -> tuple[float, ...]:
        """Each stage's share of the trainer's budget (updates and update floor): the whole of it by default."""
        return (1.0,) * len(self.stages)

    def start_stage(self, stage: int) -> None:
        """Called when a stage starts, and again when a run resumes inside it."""

    def before_step(self, stage: int, step: int) -> None:
        """Called before update `step` (0-based, counted within the stage), e.g. to unfreeze a part."""

    def encoder_lr_factor(self, stage: int, step: int, horizon: Horizon) -> float:
        """The encoder groups' schedule: their rate at `step` of a stage spanning `horizon`, as a factor."""
        return 0.0


def parameter_groups(strategy: Strategy, model: nn.Module, lr: float) -> list[dict]:
    """The task model's trainable parameters as one group at `lr`, then the strategy's encoder groups.

    Every group keeps its base rate under "base_lr"; the trainer multiplies it by the schedule each step.
    """
    encoder = strategy.encoder_groups(lr)
    encoder_ids = {id(p) for group in encoder for p in group["params"]}
    task = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
    groups = [{"params": task, "lr": lr, "name": "task"}, *encoder]
    for group in groups:
        group["base_lr"] = group["lr"]
    return groups
