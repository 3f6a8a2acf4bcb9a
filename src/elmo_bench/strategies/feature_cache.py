"""The frozen encoder's layers for a dataset, computed once and kept on disk.

A feature file is keyed by the encoder's fingerprint (its weights and settings), the storage dtype and the exact
set of texts, so a rerun of the same cell, or another cell over the same texts, never runs the encoder.
Files are written to a temporary name and renamed, so a killed run never leaves a half-written file
under a real key. Each file also keeps the encoder's fingerprint and its number of texts, and is checked
against the texts asked for (shapes, offsets) before use: an unreadable or mismatched file is reported and
rebuilt. It keeps what computing it cost (seconds, device), so every cell that reads it can report that
cost, whichever cell paid it.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..cell.atomic import save_torch
from ..batching import bucket_batches
from ..encoders import Encoder
from ..tasks.base import Tokens

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the stored layout or an encoder's maths change


@dataclass(frozen=True)
class FeatureCost:
    """What one cached split's features cost to compute, as measured by the cell that computed them."""

    split: str
    key: str  # the cache file's key: the same key is the same features, whoever computed them
    tokens: int
    seconds: float | None  # None for a file written before costs were recorded
    device: str | None
    computed_here: bool  # this cell ran the encoder (False: read from the cache)

    def record(self) -> dict:
        return {"split": self.split, "key": self.key, "tokens": self.tokens, "seconds": self.seconds,
                "device": self.device, "computed_here": self.computed_here}


def texts_key(fingerprint: str, dtype: str, texts: Sequence[Tokens]) -> str:
    digest = hashlib.sha256(f"v{FORMAT_VERSION}:{fingerprint}:{dtype}".encode())
    for text in texts:
        digest.update(b"\x1e" + "\x1f".join(text).encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()[:32]


class FeatureTable:
    """All layers of a set of texts: features (tokens, L+1, D) and each text's offset."""

    def __init__(self, texts: list[Tokens], features: torch.Tensor, offsets: torch.Tensor):
        self.texts, self.features, self.offsets = texts, features, offsets
        self.row = {text: i for i, text in enumerate(texts)}
        self.lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)

    @classmethod
    def concatenate(cls, tables: list[FeatureTable]) -> FeatureTable:
        if len(tables) == 1:
            return tables[0]
        shifts = torch.tensor([0] + [len(t.features) for t in tables[:-1]]).cumsum(0)
        return cls(
            [text for table in tables for text in table.texts],
            torch.cat([table.features for table in tables]),
            torch.cat([table.offsets + shift for table, shift in zip(tables, shifts)]),
        )

    def __call__(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        rows = torch.tensor([self._row(text) for text in texts], dtype=torch.long)
        lengths = self.lengths[rows]
        width = int(lengths.max()) if len(texts) else 0
        positions = torch.arange(width).unsqueeze(0)  # (1, T)
        mask = positions < lengths.unsqueeze(1)  # (B, T)
        index = (self.offsets[rows].unsqueeze(1) + positions).clamp(max=max(len(self.features) - 1, 0))
        gathered = self.features[index].float() * mask[..., None, None]  # (B, T, L+1, D)
        return list(gathered.unbind(dim=2)), mask

    def _row(self, text: Tokens) -> int:
        try:
            return self.row[text]
        except KeyError:
            raise KeyError(f"text not in the feature cache: {' '.join(text)[:80]!r}") from None


def token_bounds(texts: Sequence[Tokens]) -> torch.Tensor:
    """(len(texts) + 1,) each text's first feature row, then the total number of rows."""
    return torch.tensor([0] + [len(t) for t in texts], dtype=torch.long).cumsum(0)


def compute_features(encoder: Encoder, texts: list[Tokens], dtype: torch.dtype, batch_tokens: int) -> tuple:
    """Run the frozen encoder over `texts` in length-bucketed batches -> (features, offsets)."""
    lengths = [len(t) for t in texts]
    offsets = token_bounds(texts)
    features = torch.zeros(int(offsets[-1]), encoder.num_layers, encoder.output_dim, dtype=dtype)
    encoder.eval()
    with torch.no_grad(), tqdm(total=int(offsets[-1]), unit="tok", desc="encoder features") as bar:
        for batch in bucket_batches(lengths, batch_tokens):
            layers, mask = encoder([texts[i] for i in batch])
            stacked = torch.stack(layers, dim=2)[mask].to("cpu", dtype)  # (tokens, L+1, D)
            start = 0
            for i in batch:
                features[offsets[i] : offsets[i + 1]] = stacked[start : start + lengths[i]]
                start += lengths[i]
            bar.update(start)
    return features, offsets[:-1]


def load_or_compute(
    encoder: Encoder,
    text_groups: Mapping[str, Sequence[Tokens]],
    cache_dir: str | Path,
    dtype_name: str,
    batch_tokens: int,
) -> tuple[FeatureTable, list[FeatureCost]]:
    """One table over all groups and what each group's features cost; each group (e.g. a split) is cached in
    its own file, so cells that share a dev or test set share its features even when their training subsets
    differ."""
    tables, costs = [], []
    for split, texts in text_groups.items():
        table, cost = _group_table(encoder, split, sorted(set(texts)), Path(cache_dir).expanduser(), dtype_name,
                                   batch_tokens)
        tables.append(table)
        costs.append(cost)
    return FeatureTable.concatenate(tables), costs


def _group_table(encoder: Encoder, split: str, unique: list[Tokens], cache_dir: Path, dtype_name: str,
                 batch_tokens: int) -> tuple[FeatureTable, FeatureCost]:
    fingerprint = encoder.fingerprint
    key = texts_key(fingerprint, dtype_name, unique)
    path = cache_dir / f"{key}.pt"
    tokens = sum(len(text) for text in unique)
    dtype = getattr(torch, dtype_name)
    stored = _stored_features(path, fingerprint, unique, (encoder.num_layers, encoder.output_dim), dtype)
    if stored is not None:
        log.info("encoder features read from %s", path)
        cost = FeatureCost(split, key, tokens, stored.get("seconds"), stored.get("device"), computed_here=False)
        return FeatureTable(unique, stored["features"], stored["offsets"]), cost
    start = time.perf_counter()
    features, offsets = compute_features(encoder, unique, dtype, batch_tokens)
    cost = FeatureCost(split, key, tokens, round(time.perf_counter() - start, 3), str(encoder.device),
                       computed_here=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(path, {"features": features, "offsets": offsets, "seconds": cost.seconds, "device": cost.device,
                      "fingerprint": fingerprint, "texts": len(unique)})
    return FeatureTable(unique, features, offsets), cost


def _stored_features(path: Path, fingerprint: str, texts: list[Tokens], layer_shape: tuple[int, int],
                     dtype: torch.dtype) -> dict | None:
    """The file's contents when they are this encoder's features of exactly `texts`; else None, with a warning."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file must never stop a run: rebuild it
        log.warning("feature cache %s is unreadable (%s); recomputing", path, error)
        return None
    problem = _mismatch(stored, fingerprint, texts, layer_shape, dtype)
    if problem is not None:
        log.warning("feature cache %s %s; recomputing", path, problem)
        return None
    return stored


def _mismatch(stored, fingerprint: str, texts: list[Tokens], layer_shape: tuple[int, int],
              dtype: torch.dtype) -> str | None:
    """Why the stored features cannot serve `texts` (a key collision, a foreign or older file), or None."""
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return "does not record this encoder's fingerprint"
    if stored.get("texts") != len(texts):
        return f"holds {stored.get('texts')} texts, not {len(texts)}"
    bounds = token_bounds(texts)
    features, offsets = stored.get("features"), stored.get("offsets")
    expected = (int(bounds[-1]), *layer_shape)
    if not isinstance(features, torch.Tensor):
        return "holds no feature tensor"
    if tuple(features.shape) != expected or features.dtype != dtype:
        return f"holds features {tuple(features.shape)} {features.dtype}, the texts need {expected} {dtype}"
    if not isinstance(offsets, torch.Tensor) or not torch.equal(offsets, bounds[:-1]):
        return "holds offsets that do not match the texts' lengths"
    return None
