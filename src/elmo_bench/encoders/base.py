"""What an encoder is to the strategies, the feature cache and the runner.

    layers, mask = encoder(texts)        # texts: word tokens; L+1 layers of (B, T, D) per word, mask (B, T)

An encoder turns word-tokenised texts into one vector per word at each of its L+1 layers (layer 0 is what it
reads before any context: ELMo's character encoder, a transformer's embeddings). It names its parts from bottom
to top, so fine-tuning recipes (discriminative rates, gradual unfreezing, frozen parts) address them without
knowing what is inside, and it carries a fingerprint that keys its frozen features in the cache.

Adding an encoder: a module with an `Encoder` subclass (its schema as a class attribute, its `load`), listed in
`encoders.ENCODERS`, plus one YAML file in conf/model/.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn

from ..config import check_path_part, model_label

Tokens = tuple[str, ...]


@dataclass
class EncoderConfig:
    name: str = MISSING  # the run folder's model part and result.json's "model"
    random_weights: bool = False  # ablation: the same network untrained (initialised under the run's seed)

    def __post_init__(self) -> None:
        check_path_part(self.name, "model.name")

    @property
    def label(self) -> str:
        """The encoder's name in run folders and results."""
        return model_label(self.name, self.random_weights)

    def public_record(self, record: dict) -> dict:
        """This config as config.json and result.json store it: an encoder whose keys may hold credentials (a URL
        with user:password) scrubs them here."""
        return record


class Encoder(nn.Module, ABC):
    kind: str  # the schema's name in conf/: model/<kind>_schema
    config_schema: type
    # what loading this encoder's files may raise with a message the user can act on (reported in one line)
    user_errors: tuple[type[Exception], ...] = ()

    def __init__(self, fingerprint: str):
        super().__init__()
        self.fingerprint = fingerprint  # identifies the weights and everything else that shapes the layers

    @classmethod
    @abstractmethod
    def load(cls, config: EncoderConfig, seed: int) -> Encoder:
        """The encoder `config` names; with random_weights, initialised under `seed`."""

    @property
    @abstractmethod
    def num_layers(self) -> int:
        """L + 1: the layers the scalar mix sees."""

    @property
    @abstractmethod
    def output_dim(self) -> int:
        """D: the size of each layer's word vectors."""

    @abstractmethod
    def parts(self) -> list[nn.Module]:
        """The encoder from bottom to top; parameters outside every part never train."""

    @abstractmethod
    def forward(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """texts -> L+1 layers (B, T, D), zero at padding, and the (B, T) bool mask; T = the longest text."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_trainable(self, trainable: Sequence[bool]) -> None:
        """Freeze or unfreeze by part, bottom to top; whatever lies outside the parts stays frozen."""
        parts = self.parts()
        if len(trainable) != len(parts):
            raise ValueError(f"{type(self).__name__} has {len(parts)} parts, got {len(trainable)} flags")
        self.requires_grad_(False)
        for part, flag in zip(parts, trainable):
            part.requires_grad_(flag)
