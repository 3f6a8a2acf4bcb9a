"""two_stage: feature extraction first, then fine-tuning ("first concatenate, then fine-tune"; LP-FT,
Kumar et al. 2022).

Stage "frozen" trains the task model on the cached frozen layers, exactly as feature_ensemble, until dev
stops improving (or the budget ends). The best task model of that stage is restored, the encoder goes live
and stage "finetune" continues from it with the fine-tuning recipe (strategy keys as in finetune), with
patience of its own. The stages share the trainer's budget (`frozen_share` of the updates for the first, the
rest for the second), so two_stage trains as many updates as finetune and feature_ensemble: a gain is not bought
with more training. `frozen_share: null` gives each stage the whole budget (LP-FT's habit; twice the updates).
A random head no longer pushes large gradients into the encoder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..config import check
from ..encoders import Encoder
from .base import EmbedderContext, FeatureCacheConfig
from .embedder import LayerSource, LiveLayers, StagedLayers
from .feature_ensemble import cached_layers
from .finetune import Finetune, FinetuneConfig


@dataclass
class TwoStageConfig(FinetuneConfig):
    cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)  # the frozen stage's layers
    frozen_share: Optional[float] = 0.5  # the frozen stage's share of the budget, the rest tunes; null = both whole

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.frozen_share is None or 0 < self.frozen_share < 1, "strategy.frozen_share",
              f"must be in (0, 1) or null, got {self.frozen_share}")


class TwoStage(Finetune):
    """finetune whose encoder is frozen, and read from the feature cache, during a first stage."""

    kind = "two_stage"
    config_schema = TwoStageConfig
    stages = ("frozen", "finetune")
    tuned_stage = 1

    def layer_source(self, encoder: Encoder, context: EmbedderContext) -> LayerSource:
        self.layers = StagedLayers(LiveLayers(encoder), cached_layers(encoder, self.config.cache, context))
        return self.layers

    def stage_shares(self) -> tuple[float, ...]:
        share = self.config.frozen_share
        return (1.0, 1.0) if share is None else (share, 1.0 - share)

    def start_stage(self, stage: int) -> None:
        self.layers.use_cache = stage < self.tuned_stage
        super().start_stage(stage)
