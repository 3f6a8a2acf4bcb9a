"""The two ways a task model can use the biLM.

feature_ensemble: the biLM is frozen; its layers are computed once (cached) and only the scalar mix,
    the word embeddings and the head train, all at the trainer's learning rate.
finetune: the biLM's parameters join the task model at `lr * bilm_lr_factor`, optionally with
    discriminative rates (each part below the top LSTM layer gets `layer_lr_decay` times the rate of
    the part above) and a frozen character encoder.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import StrategyConfig, StrategyName
from ..elmo import BiLM
from ..tasks.base import Tokens
from .embedder import ElmoEmbedder, LiveLayers, WordVocabulary
from .feature_cache import load_or_compute


@dataclass
class BiLMFiles:
    options_file: str
    weight_file: str
    fingerprint: str  # identifies the weights in feature-cache keys


def build_embedder(
    strategy: StrategyConfig,
    bilm: BiLM,
    files: BiLMFiles,
    text_groups: Iterable[Iterable[Tokens]],
    vocabulary: WordVocabulary | None,
    word_dim: int,
    batch_tokens: int,
    device: torch.device,
) -> ElmoEmbedder:
    """The embedder for `strategy`; `text_groups` (one per split) are all texts the run embeds."""
    if strategy.name == StrategyName.feature_ensemble:
        bilm.requires_grad_(False)
        layers = load_or_compute(
            bilm.to(device), files.fingerprint, text_groups, strategy.cache_dir, strategy.cache_dtype, batch_tokens, device
        )
    else:
        bilm.requires_grad_(True)
        bilm.set_trainable(char_encoder=not strategy.freeze_char_encoder, lstm_layers=True)
        layers = LiveLayers(bilm)
    return ElmoEmbedder(
        layers, bilm.num_layers, bilm.output_dim, vocabulary, word_dim, strategy.layer_norm, strategy.dropout
    )


def bilm_depths(bilm: BiLM) -> list[tuple[int, nn.Module]]:
    """(distance from the top, part) for the char encoder and each LSTM layer, top layer = 0."""
    parts = [bilm.char_encoder, *bilm.lstm.layers]
    return [(len(parts) - 1 - i, part) for i, part in enumerate(parts)]


def parameter_groups(strategy: StrategyConfig, model: nn.Module, lr: float) -> list[dict]:
    """Optimizer groups: the task model at `lr`; under finetune, each biLM part at its own rate."""
    bilm_ids: set[int] = set()
    groups = []
    bilm = next((m for m in model.modules() if isinstance(m, BiLM)), None)
    if strategy.name == StrategyName.finetune and bilm is not None:
        for depth, part in bilm_depths(bilm):
            params = [p for p in part.parameters() if p.requires_grad]
            bilm_ids.update(id(p) for p in part.parameters())
            if params:
                rate = lr * strategy.bilm_lr_factor * strategy.layer_lr_decay**depth
                groups.append({"params": params, "lr": rate, "name": f"bilm_depth{depth}"})
    task_params = [p for p in model.parameters() if p.requires_grad and id(p) not in bilm_ids]
    return [{"params": task_params, "lr": lr, "name": "task"}, *groups]
