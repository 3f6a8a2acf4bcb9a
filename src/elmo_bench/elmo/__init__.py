"""A PyTorch ELMo that reads allennlp's weight format and reproduces its outputs.

    from elmo_bench.elmo import load_bilm, batch_to_ids, ScalarMix
    bilm = load_bilm(options_file, weight_file)          # paths or http(s) URLs
    layers, mask = bilm(batch_to_ids([["I", "saw", "a", "saw"], ["Hi"]]))
"""
from __future__ import annotations

import os

from .bilm import BiLM
from .char_ids import batch_to_ids, token_to_char_ids
from .options import BiLMOptions, OptionsError, read_options
from .scalar_mix import ScalarMix
from .sources import OFFICIAL_MODELS, SourceError, resolve
from .weights import WeightsError, load_weights, save_weights


def load_bilm(options_file: str | os.PathLike, weight_file: str | os.PathLike, stateful: bool = False) -> BiLM:
    """Build a biLM from an allennlp-format options.json + weights.hdf5 pair (local paths or URLs)."""
    bilm = BiLM(read_options(resolve(options_file)), stateful=stateful)
    load_weights(bilm, resolve(weight_file))
    return bilm.eval()


def load_pretrained(name: str, stateful: bool = False) -> BiLM:
    """One of the official models by name: small, medium, original, original_5.5b."""
    if name not in OFFICIAL_MODELS:
        raise KeyError(f"unknown pretrained biLM '{name}'; known: {', '.join(OFFICIAL_MODELS)}")
    model = OFFICIAL_MODELS[name]
    return load_bilm(model.options_url, model.weights_url, stateful=stateful)


__all__ = [
    "BiLM",
    "BiLMOptions",
    "OFFICIAL_MODELS",
    "OptionsError",
    "ScalarMix",
    "SourceError",
    "WeightsError",
    "batch_to_ids",
    "load_bilm",
    "load_pretrained",
    "load_weights",
    "read_options",
    "save_weights",
    "token_to_char_ids",
]
