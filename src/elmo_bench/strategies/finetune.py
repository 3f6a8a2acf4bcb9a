"""finetune: the encoder trains with the task model, under its own recipe.

The recipe that made fine-tuning pretrained encoders work ("To Tune or Not to Tune?", Peters, Ruder & Smith
2019; ULMFiT, Howard & Ruder 2018), applied to the encoder's parameter groups only, part by part
(`Encoder.parts()`: ELMo's character encoder then each LSTM layer; a transformer's embeddings then each layer):
- its own rate: the top part learns at `trainer.lr * encoder_lr_factor`;
- discriminative rates: each part below gets `layer_lr_decay` times the rate of the part above
  (0.38, allennlp's default; ULMFiT's 1/2.6);
- its own schedule over the stage's horizon (slanted triangular: warm-up over 10% of the run's planned updates,
  then linear decay to the floor where the run ends: trainer.schedule_horizon, schedules.py);
- gradual unfreezing: the top part trains first and one more part below joins every
  `unfreeze_steps` updates (50; 0 = every part from the first update);
- optional weight decay, and `frozen_parts` bottom parts that never train.
The task model keeps the trainer's recipe, exactly as in feature_ensemble.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..config import Schedule, check, check_schedule
from ..encoders import Encoder
from ..schedules import Horizon, lr_factor
from .base import EmbedderContext, Strategy, StrategyConfig
from .embedder import Embedder, LayerMix, LayerSource, LiveLayers


@dataclass
class FinetuneConfig(StrategyConfig):
    encoder_lr_factor: float = 0.1  # the top encoder part's rate = trainer.lr * this
    layer_lr_decay: float = 0.38  # each part below the top gets this factor more; 1 = one rate for all
    schedule: Schedule = Schedule.slanted_triangular  # the encoder groups' schedule over the stage's budget
    warmup_fraction: float = 0.1
    stlr_ratio: float = 32.0
    weight_decay: float = 0.0  # on the encoder groups (L2 with adam/sgd, decoupled with adamw)
    # Gradual unfreezing: one more part below the top every N updates; 0 = all parts from the first update.
    # ULMFiT's habit; on dev at 200 sentences it tied with 0 (results/fair_protocol/README.md).
    unfreeze_steps: int = 50
    frozen_parts: int = 0  # bottom parts that never train (1 = ELMo's character encoder, a transformer's embeddings)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.encoder_lr_factor > 0, "strategy.encoder_lr_factor", f"must be > 0, got {self.encoder_lr_factor}")
        check(0 < self.layer_lr_decay <= 1, "strategy.layer_lr_decay", f"must be in (0, 1], got {self.layer_lr_decay}")
        check(self.weight_decay >= 0, "strategy.weight_decay", f"must be >= 0, got {self.weight_decay}")
        check(self.unfreeze_steps >= 0, "strategy.unfreeze_steps", f"must be >= 0, got {self.unfreeze_steps}")
        check(self.frozen_parts >= 0, "strategy.frozen_parts", f"must be >= 0, got {self.frozen_parts}")
        check_schedule(self, "strategy")


class EncoderTuning:
    """The fine-tuning recipe over the encoder's parts (bottom to top), for any strategy that tunes it."""

    def __init__(self, config: FinetuneConfig, encoder: Encoder):
        self.config = config
        self.encoder = encoder
        self.parts = encoder.parts()
        if config.frozen_parts >= len(self.parts):
            raise ConfigError(f"config key 'strategy.frozen_parts': this encoder has {len(self.parts)} parts, so at"
                             f" most {len(self.parts) - 1} may stay frozen, got {config.frozen_parts}")
        self.trainable = [index >= config.frozen_parts for index in range(len(self.parts))]

    def groups(self, lr: float) -> list[dict]:
        """One group per part that may train; the top part is depth 0."""
        top = len(self.parts) - 1
        return [{"params": list(part.parameters()), "name": f"encoder_depth{top - index}",
                 "lr": lr * self.config.encoder_lr_factor * self.config.layer_lr_decay ** (top - index),
                 "weight_decay": self.config.weight_decay}
                for index, part in enumerate(self.parts) if self.trainable[index]]

    def unfreeze(self, step: int) -> None:
        """The parts that train at update `step`: all, or (gradual unfreezing) the top 1 + step // N."""
        every = self.config.unfreeze_steps
        count = len(self.parts) if every == 0 else 1 + step // every
        self.encoder.set_trainable([self.trainable[index] and index >= len(self.parts) - count
                                    for index in range(len(self.parts))])

    def freeze(self) -> None:
        self.encoder.set_trainable([False] * len(self.parts))

    def lr_factor(self, step: int, horizon: Horizon) -> float:
        return lr_factor(self.config, horizon, step)


class Finetune(Strategy):
    """The encoder is live in every stage at or after `tuned_stage` and frozen before it (two_stage: stage 1)."""

    kind = "finetune"
    config_schema = FinetuneConfig
    stages = ("finetune",)
    tuned_stage = 0

    def build_embedder(self, encoder: Encoder, context: EmbedderContext) -> Embedder:
        self.tuning = EncoderTuning(self.config, encoder)
        return Embedder(self.layer_source(encoder.to(context.device), context), encoder.num_layers,
                        encoder.output_dim, context.vocabulary, context.inputs, LayerMix())

    def layer_source(self, encoder: Encoder, context: EmbedderContext) -> LayerSource:
        return LiveLayers(encoder)

    def encoder_groups(self, lr: float) -> list[dict]:
        return self.tuning.groups(lr)

    def start_stage(self, stage: int) -> None:
        if stage >= self.tuned_stage:
            self.tuning.unfreeze(0)
        else:
            self.tuning.freeze()

    def before_step(self, stage: int, step: int) -> None:
        if stage >= self.tuned_stage:
            self.tuning.unfreeze(step)

    def encoder_lr_factor(self, stage: int, step: int, horizon: Horizon) -> float:
        return self.tuning.lr_factor(step, horizon) if stage >= self.tuned_stage else 0.0
