"""allennlp/bilm-tf `weights.hdf5` <-> `BiLM` parameters (ELMO_FORMAT.md §1.2-1.3).

Every array is read and written in the file's own TF layout; only convolution kernels change layout
(TF (1, width, E, n) <-> PyTorch (n, E, width)) and dense kernels are transposed into nn.Linear.
The LSTM keeps TF's gate order and row-vector layout, so its arrays are used as they are.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import torch

from ..cell.atomic import atomic_open
from .bilm import BiLM


class WeightsError(ValueError):
    """A weights file that cannot be read into the model."""


# Each entry: hdf5 dataset name, the parameter, file array -> parameter layout, and back.
Mapping = tuple[str, torch.Tensor, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _identity(array: np.ndarray) -> np.ndarray:
    return array


def _transpose(array: np.ndarray) -> np.ndarray:
    return array.T


def _conv_from_tf(array: np.ndarray) -> np.ndarray:  # (1, w, E, n) -> (n, E, w)
    return array[0].transpose(2, 1, 0)


def _conv_to_tf(array: np.ndarray) -> np.ndarray:
    return array.transpose(2, 1, 0)[None]


def _embedding_from_file(array: np.ndarray) -> np.ndarray:  # (261, E) -> (262, E), row 0 = padding
    return np.concatenate([np.zeros((1, array.shape[1]), array.dtype), array])


def _embedding_to_file(array: np.ndarray) -> np.ndarray:
    return array[1:]


def _mappings(bilm: BiLM) -> Iterator[Mapping]:
    encoder = bilm.char_encoder
    yield "char_embed", encoder.char_embedding.weight, _embedding_from_file, _embedding_to_file
    for i, conv in enumerate(encoder.convolutions):
        yield f"CNN/W_cnn_{i}", conv.weight, _conv_from_tf, _conv_to_tf
        yield f"CNN/b_cnn_{i}", conv.bias, _identity, _identity
    for k, highway in enumerate(encoder.highways):
        yield f"CNN_high_{k}/W_carry", highway.carry.weight, _transpose, _transpose
        yield f"CNN_high_{k}/b_carry", highway.carry.bias, _identity, _identity
        yield f"CNN_high_{k}/W_transform", highway.transform.weight, _transpose, _transpose
        yield f"CNN_high_{k}/b_transform", highway.transform.bias, _identity, _identity
    yield "CNN_proj/W_proj", encoder.projection.weight, _transpose, _transpose
    yield "CNN_proj/b_proj", encoder.projection.bias, _identity, _identity
    for direction in range(2):
        for index, layer in enumerate(bilm.lstm.layers):
            prefix = f"RNN_{direction}/RNN/MultiRNNCell/Cell{index}/LSTMCell"
            yield f"{prefix}/W_0", _LSTMKernel(layer, direction), _identity, _identity
            yield f"{prefix}/B", layer.bias[direction], _identity, _identity
            yield f"{prefix}/W_P_0", layer.weight_proj[direction], _identity, _identity


class _LSTMKernel:
    """The fused file kernel W_0 = [W_ih; W_hh] (rows: input first) of one layer and direction."""

    def __init__(self, layer, direction: int):
        self.layer, self.direction = layer, direction

    @property
    def shape(self) -> tuple[int, int]:
        ih = self.layer.weight_ih[self.direction]
        return ih.shape[0] + self.layer.weight_hh.shape[1], ih.shape[1]

    def numpy(self) -> np.ndarray:
        ih, hh = self.layer.weight_ih[self.direction], self.layer.weight_hh[self.direction]
        return torch.cat([ih, hh]).detach().cpu().numpy()

    def copy_(self, value: torch.Tensor) -> None:
        n_input = self.layer.weight_ih.shape[1]
        self.layer.weight_ih[self.direction].copy_(value[:n_input])
        self.layer.weight_hh[self.direction].copy_(value[n_input:])


def load_weights(bilm: BiLM, path: str | Path) -> None:
    """Copy every array of the weights file into `bilm`, checking names and shapes."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise WeightsError(f"cannot read weights file {path} (truncated or not HDF5?): {error}") from None
    with handle, torch.no_grad():
        for name, target, from_file, to_file in _mappings(bilm):
            if name not in handle:
                raise WeightsError(f"{path}: dataset '{name}' is missing")
            expected = to_file(np.empty(tuple(target.shape), dtype=np.float32)).shape
            if handle[name].shape != expected:
                raise WeightsError(
                    f"{path}: dataset '{name}' has shape {handle[name].shape},"
                    f" the options file implies {expected}"
                )
            try:
                array = from_file(np.asarray(handle[name], dtype=np.float32))
            except OSError as error:
                raise WeightsError(f"{path}: cannot read dataset '{name}' (truncated file?): {error}") from None
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)))
    bilm.token_encoder.clear_cache()


def save_weights(bilm: BiLM, path: str | Path) -> None:
    """Write `bilm` as an allennlp-format weights file (atomically: tmp file, then rename)."""
    path = Path(path)
    with atomic_open(path) as out, h5py.File(out, "w") as handle:
        for name, source, _, to_file in _mappings(bilm):
            value = source.numpy() if isinstance(source, _LSTMKernel) else source.detach().cpu().numpy()
            handle.create_dataset(name, data=np.ascontiguousarray(to_file(value), dtype=np.float32))
