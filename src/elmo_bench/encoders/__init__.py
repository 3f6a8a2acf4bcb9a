"""Encoders: word-tokenised texts -> L+1 layers of word vectors (see base.py). Adding an encoder: a module with an
`Encoder` subclass, listed in ENCODERS, plus its YAML file in conf/model/."""
from __future__ import annotations

from .base import Encoder, EncoderConfig
from .elmo import ElmoEncoder
from .transformer import TransformerEncoder

ENCODERS: list[type[Encoder]] = [ElmoEncoder, TransformerEncoder]


def encoder_schemas() -> dict[str, type]:
    return {encoder.kind: encoder.config_schema for encoder in ENCODERS}


def load_encoder(config: EncoderConfig, seed: int) -> Encoder:
    for encoder in ENCODERS:
        if type(config) is encoder.config_schema:
            return encoder.load(config, seed)
    raise TypeError(f"no encoder takes a {type(config).__name__} config")


def user_errors() -> tuple[type[Exception], ...]:
    """Every encoder's own error types whose messages say what to change."""
    return tuple(error for encoder in ENCODERS for error in encoder.user_errors)


__all__ = ["ENCODERS", "Encoder", "EncoderConfig", "encoder_schemas", "load_encoder", "user_errors"]
