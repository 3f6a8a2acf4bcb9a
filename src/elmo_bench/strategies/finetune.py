"""finetune: the biLM trains with the task model, under its own recipe.

The recipe that made ELMo fine-tuning work ("To Tune or Not to Tune?", Peters, Ruder & Smith 2019; ULMFiT,
Howard & Ruder 2018), applied to the biLM's parameter groups only:
- its own rate: the top part learns at `trainer.lr * bilm_lr_factor`;
- discriminative rates: each part below gets `layer_lr_decay` times the rate of the part above
  (0.38, allennlp's default; ULMFiT's 1/2.6);
- its own schedule over the stage's budget (slanted triangular: warm-up over 10%, then linear decay);
- gradual unfreezing: the top LSTM layer trains first and one more part below joins every
  `unfreeze_steps` updates (50; 0 = every part from the first update);
- optional weight decay and a frozen character encoder.
The task model keeps the trainer's recipe, exactly as in feature_ensemble.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..config import Schedule, check, check_schedule
from ..elmo import BiLM
from ..schedules import lr_multiplier
from .base import EmbedderContext, Strategy, StrategyConfig
from .embedder import ElmoEmbedder, LayerMix, LayerSource, LiveLayers


@dataclass
class FinetuneConfig(StrategyConfig):
    bilm_lr_factor: float = 0.1  # the top biLM part's rate = trainer.lr * this
    layer_lr_decay: float = 0.38  # each part below the top gets this factor more; 1 = one rate for all
    schedule: Schedule = Schedule.slanted_triangular  # the biLM groups' schedule over the stage's budget
    warmup_fraction: float = 0.1
    stlr_ratio: float = 32.0
    weight_decay: float = 0.0  # on the biLM groups (L2 with adam/sgd, decoupled with adamw)
    # Gradual unfreezing: one more part below the top every N updates; 0 = all parts from the first update.
    # ULMFiT's habit; on dev at 200 sentences it tied with 0 (results/fair_protocol/README.md).
    unfreeze_steps: int = 50
    freeze_char_encoder: bool = False  # the character encoder never trains

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.bilm_lr_factor > 0, "strategy.bilm_lr_factor", f"must be > 0, got {self.bilm_lr_factor}")
        check(0 < self.layer_lr_decay <= 1, "strategy.layer_lr_decay", f"must be in (0, 1], got {self.layer_lr_decay}")
        check(self.weight_decay >= 0, "strategy.weight_decay", f"must be >= 0, got {self.weight_decay}")
        check(self.unfreeze_steps >= 0, "strategy.unfreeze_steps", f"must be >= 0, got {self.unfreeze_steps}")
        check_schedule(self, "strategy")


class BiLMTuning:
    """The fine-tuning recipe over the biLM's parts (bottom to top), for any strategy that tunes it."""

    def __init__(self, config: FinetuneConfig, parts: list[nn.Module]):
        self.config = config
        self.parts = parts
        self.trainable = [not (config.freeze_char_encoder and index == 0) for index in range(len(parts))]
        self._schedule = None

    def groups(self, lr: float) -> list[dict]:
        """One group per part that may train; the top part is depth 0."""
        top = len(self.parts) - 1
        return [{"params": list(part.parameters()), "name": f"bilm_depth{top - index}",
                 "lr": lr * self.config.bilm_lr_factor * self.config.layer_lr_decay ** (top - index),
                 "weight_decay": self.config.weight_decay}
                for index, part in enumerate(self.parts) if self.trainable[index]]

    def unfreeze(self, step: int) -> None:
        """The parts that train at update `step`: all, or (gradual unfreezing) the top 1 + step // N."""
        every = self.config.unfreeze_steps
        count = len(self.parts) if every == 0 else 1 + step // every
        for index, part in enumerate(self.parts):
            part.requires_grad_(self.trainable[index] and index >= len(self.parts) - count)

    def freeze(self) -> None:
        for part in self.parts:
            part.requires_grad_(False)

    def lr_factor(self, step: int, total: int) -> float:
        if self._schedule is None or self._schedule[0] != total:  # built once per stage budget
            self._schedule = (total, lr_multiplier(self.config, total))
        return self._schedule[1](step)


class Finetune(Strategy):
    """The biLM is live in every stage at or after `tuned_stage` and frozen before it (two_stage: stage 1)."""

    kind = "finetune"
    config_schema = FinetuneConfig
    stages = ("finetune",)
    tuned_stage = 0

    def build_embedder(self, bilm: BiLM, context: EmbedderContext) -> ElmoEmbedder:
        self.tuning = BiLMTuning(self.config, bilm.parts())
        return ElmoEmbedder(self.layer_source(bilm.to(context.device), context), bilm.num_layers, bilm.output_dim,
                            context.vocabulary, context.inputs, LayerMix())

    def layer_source(self, bilm: BiLM, context: EmbedderContext) -> LayerSource:
        return LiveLayers(bilm)

    def bilm_groups(self, lr: float) -> list[dict]:
        return self.tuning.groups(lr)

    def start_stage(self, stage: int) -> None:
        if stage >= self.tuned_stage:
            self.tuning.unfreeze(0)
        else:
            self.tuning.freeze()

    def before_step(self, stage: int, step: int) -> None:
        if stage >= self.tuned_stage:
            self.tuning.unfreeze(step)

    def bilm_lr_factor(self, stage: int, step: int, total: int) -> float:
        return self.tuning.lr_factor(step, total) if stage >= self.tuned_stage else 0.0
