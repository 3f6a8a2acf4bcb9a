"""feature_ensemble: the encoder is frozen; its layers are computed once (cached on disk) and a scalar mix of
them feeds the task model. Only the task model trains.

`mix` picks how the layers are combined (ELMo paper, Table 2): `learned` softmax weights (the default),
`average` (fixed equal weights), `top` (the top layer only) or `layer` (layer `strategy.layer` only,
0 = the bottom: ELMo's character encoder, a transformer's embeddings). An ablation must carry its own name, so its cells never share a folder with
the learned mix (`strategy=frozen_top`, `strategy=frozen_average`, `strategy=frozen_layer strategy.layer=1`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..config import check
from ..encoders import Encoder
from .base import EmbedderContext, FeatureCacheConfig, Strategy, StrategyConfig
from .embedder import Embedder, LayerMix
from .feature_cache import FeatureTable, load_or_compute

MIXES = ("learned", "average", "top", "layer")


@dataclass
class FeatureEnsembleConfig(StrategyConfig):
    mix: str = "learned"  # learned | average | top | layer
    layer: int = 0  # with mix=layer: the one layer used (0 = the bottom, L = the top layer)
    cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.mix in MIXES, "strategy.mix", f"must be one of {', '.join(MIXES)}, got {self.mix}")
        check(self.mix == "learned" or self.name != "feature_ensemble", "strategy.mix",
              f"mix={self.mix} is an ablation and needs its own strategy.name (e.g. strategy=frozen_{self.mix})")
        check(self.cache.dtype in ("float16", "float32"), "strategy.cache.dtype",
              f"must be float16 or float32, got {self.cache.dtype}")


def layer_mix(config: FeatureEnsembleConfig, num_layers: int) -> LayerMix:
    if config.mix == "layer" and not 0 <= config.layer < num_layers:
        raise ConfigError(f"config key 'strategy.layer': this encoder has layers 0..{num_layers - 1}, got {config.layer}")
    chosen = {"top": num_layers - 1, "layer": config.layer}.get(config.mix)
    return LayerMix(learned=config.mix == "learned", layer=chosen)


def cached_layers(encoder: Encoder, cache: FeatureCacheConfig, context: EmbedderContext) -> FeatureTable:
    """The frozen encoder's layers for every text of the run, from the cache or computed once; what they cost
    goes into the context."""
    encoder.requires_grad_(False)
    table, costs = load_or_compute(encoder.to(context.device), context.text_groups, cache.dir, cache.dtype,
                                   context.batch_tokens)
    context.feature_costs.extend(costs)
    return table


class FeatureEnsemble(Strategy):
    kind = "feature_ensemble"
    config_schema = FeatureEnsembleConfig
    stages = ("frozen",)

    @property
    def is_baseline(self) -> bool:
        # Peters et al.'s frozen encoder with a learned mix; its fixed-mix ablations are compared with it
        return self.name == self.kind

    def build_embedder(self, encoder: Encoder, context: EmbedderContext) -> Embedder:
        mix = layer_mix(self.config, encoder.num_layers)
        return Embedder(cached_layers(encoder, self.config.cache, context), encoder.num_layers, encoder.output_dim,
                        context.vocabulary, context.inputs, mix)
