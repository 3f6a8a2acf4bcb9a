"""two_stage: feature extraction first, then fine-tuning ("first concatenate, then fine-tune"; LP-FT,
Kumar et al. 2022).

Stage "frozen" trains the task model on the cached frozen layers, exactly as feature_ensemble, until dev
stops improving (or the budget ends). The best task model of that stage is restored, the encoder goes live
and stage "finetune" continues from it with the fine-tuning recipe (strategy keys as in finetune), with a
budget and patience of its own. A random head no longer pushes large gradients into the encoder.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..encoders import Encoder
from .base import EmbedderContext, FeatureCacheConfig
from .embedder import LayerSource, LiveLayers, StagedLayers
from .feature_ensemble import cached_layers
from .finetune import Finetune, FinetuneConfig


@dataclass
class TwoStageConfig(FinetuneConfig):
    cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)  # the frozen stage's layers


class TwoStage(Finetune):
    """finetune whose encoder is frozen, and read from the feature cache, during a first stage."""

    kind = "two_stage"
    config_schema = TwoStageConfig
    stages = ("frozen", "finetune")
    tuned_stage = 1

    def layer_source(self, encoder: Encoder, context: EmbedderContext) -> LayerSource:
        self.layers = StagedLayers(LiveLayers(encoder), cached_layers(encoder, self.config.cache, context))
        return self.layers

    def start_stage(self, stage: int) -> None:
        self.layers.use_cache = stage < self.tuned_stage
        super().start_stage(stage)
