"""ELMo's biLM as an encoder: characters -> a character CNN (layer 0) -> L biLSTM layers, each [forward; backward]."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import MISSING
from torch import nn

from ..elmo import BiLM, OptionsError, SourceError, WeightsError, batch_to_ids, load_bilm, read_options
from ..elmo.download import public_url
from ..elmo.sources import is_url, resolve
from ..files import file_digest
from .base import Encoder, EncoderConfig, Tokens


@dataclass
class ElmoConfig(EncoderConfig):
    options_file: str = MISSING  # allennlp's options.json: a local path or http(s) URL
    weight_file: str = MISSING  # its weights.hdf5 (not read with random_weights)

    def public_record(self, record: dict) -> dict:
        return record | {key: public_url(record[key]) for key in ("options_file", "weight_file")
                         if is_url(record.get(key) or "")}


def bilm_fingerprint(options_file: str | Path, weight_file: str | Path) -> str:
    return hashlib.sha256(f"{file_digest(options_file)}:{file_digest(weight_file)}".encode()).hexdigest()


class ElmoEncoder(Encoder):
    kind = "elmo"
    config_schema = ElmoConfig
    user_errors = (OptionsError, SourceError, WeightsError)

    def __init__(self, bilm: BiLM, fingerprint: str):
        super().__init__(fingerprint)
        self.bilm = bilm

    @classmethod
    def load(cls, config: ElmoConfig, seed: int) -> ElmoEncoder:
        options_file = str(resolve(config.options_file))
        if config.random_weights:
            torch.manual_seed(seed)
            fingerprint = hashlib.sha256(f"random:{seed}:{file_digest(options_file)}".encode()).hexdigest()
            return cls(BiLM(read_options(options_file)).eval(), fingerprint)
        weight_file = str(resolve(config.weight_file))
        return cls(load_bilm(options_file, weight_file), bilm_fingerprint(options_file, weight_file))

    @property
    def num_layers(self) -> int:
        return self.bilm.num_layers

    @property
    def output_dim(self) -> int:
        return self.bilm.output_dim

    def parts(self) -> list[nn.Module]:
        return self.bilm.parts()

    def forward(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        return self.bilm(batch_to_ids(texts).to(self.bilm.bos_ids.device))
