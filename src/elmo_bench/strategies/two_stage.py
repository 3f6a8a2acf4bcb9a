"""two_stage: feature extraction first, then fine-tuning ("first concatenate, then fine-tune"; LP-FT,
Kumar et al. 2022).

Stage "frozen" trains the task model on the cached frozen layers, exactly as feature_ensemble, until dev
stops improving (or the budget ends). The best task model of that stage is restored, the biLM goes live
and stage "finetune" continues from it with the fine-tuning recipe (strategy keys as in finetune), with a
budget and patience of its own. A random head no longer pushes large gradients into the biLM.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..elmo import BiLM
from .base import EmbedderContext, FeatureCacheConfig, Strategy
from .embedder import ElmoEmbedder, LayerMix, LiveLayers, StagedLayers
from .feature_ensemble import cached_layers
from .finetune import BiLMTuning, FinetuneConfig

FROZEN, FINETUNE = 0, 1


@dataclass
class TwoStageConfig(FinetuneConfig):
    cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)  # the frozen stage's layers


class TwoStage(Strategy):
    kind = "two_stage"
    config_schema = TwoStageConfig
    stages = ("frozen", "finetune")

    def build_embedder(self, bilm: BiLM, context: EmbedderContext) -> ElmoEmbedder:
        self.tuning = BiLMTuning(self.config, bilm.parts())
        self.layers = StagedLayers(LiveLayers(bilm), cached_layers(bilm, self.config.cache, context))
        return ElmoEmbedder(self.layers, bilm.num_layers, bilm.output_dim, context.vocabulary, context.inputs,
                            LayerMix())

    def bilm_groups(self, lr: float) -> list[dict]:
        return self.tuning.groups(lr)

    def start_stage(self, stage: int) -> None:
        self.layers.use_cache = stage == FROZEN
        if stage == FROZEN:
            self.tuning.freeze()
        else:
            self.tuning.unfreeze(0)

    def before_step(self, stage: int, step: int) -> None:
        if stage == FINETUNE:
            self.tuning.unfreeze(step)

    def bilm_lr_factor(self, stage: int, step: int, total: int) -> float:
        return self.tuning.lr_factor(step, total) if stage == FINETUNE else 0.0
