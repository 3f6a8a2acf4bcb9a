"""The architecture of a biLM, read from an allennlp/bilm-tf `options.json`.

Only the keys that define the network are read; training leftovers (`n_tokens_vocab`, `batch_size`,
`dropout`, ...) are ignored, as allennlp and bilm-tf do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ACTIVATIONS = ("relu", "tanh")


class OptionsError(ValueError):
    """An options.json that does not describe a usable biLM."""


@dataclass(frozen=True)
class CharCNNOptions:
    embedding_dim: int
    filters: tuple[tuple[int, int], ...]  # (width, n_filters) per convolution
    n_highway: int
    n_characters: int = 262
    max_characters_per_token: int = 50
    activation: str = "relu"

    @property
    def n_filters(self) -> int:
        return sum(n for _, n in self.filters)


@dataclass(frozen=True)
class LSTMOptions:
    dim: int  # memory cell size per direction
    projection_dim: int  # projected hidden size = per-direction output size
    n_layers: int
    cell_clip: float | None = None
    proj_clip: float | None = None
    use_skip_connections: bool = True


@dataclass(frozen=True)
class BiLMOptions:
    char_cnn: CharCNNOptions
    lstm: LSTMOptions

    @property
    def output_dim(self) -> int:
        return 2 * self.lstm.projection_dim

    @property
    def num_layers(self) -> int:
        """Number of output layers: the token layer plus one per LSTM layer."""
        return self.lstm.n_layers + 1

    def to_json(self) -> dict:
        cnn, lstm = self.char_cnn, self.lstm
        return {
            "char_cnn": {
                "embedding": {"dim": cnn.embedding_dim},
                "filters": [list(f) for f in cnn.filters],
                "n_highway": cnn.n_highway,
                "n_characters": cnn.n_characters,
                "max_characters_per_token": cnn.max_characters_per_token,
                "activation": cnn.activation,
            },
            "lstm": {
                "dim": lstm.dim,
                "projection_dim": lstm.projection_dim,
                "n_layers": lstm.n_layers,
                "cell_clip": lstm.cell_clip,
                "proj_clip": lstm.proj_clip,
                "use_skip_connections": lstm.use_skip_connections,
            },
        }


def _require(section: dict, key: str, where: str):
    if key not in section:
        raise OptionsError(f"{where}: missing key '{key}'")
    return section[key]


def _clip(value) -> float | None:
    # allennlp and bilm-tf treat absent, null and 0 alike: no clipping.
    return float(value) if value else None


def parse_options(raw: dict, source: str = "options") -> BiLMOptions:
    """Build `BiLMOptions` from the parsed JSON, naming `source` and the key in every error."""
    cnn = _require(raw, "char_cnn", source)
    lstm = _require(raw, "lstm", source)
    embedding = _require(cnn, "embedding", f"{source} char_cnn")
    activation = cnn.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise OptionsError(f"{source}: char_cnn.activation is '{activation}', expected one of {ACTIVATIONS}")
    filters = tuple((int(w), int(n)) for w, n in _require(cnn, "filters", f"{source} char_cnn"))
    if not filters:
        raise OptionsError(f"{source}: char_cnn.filters is empty")
    n_characters = int(cnn.get("n_characters", 262))
    if n_characters != 262:
        # 261 is the training-time value; inference needs the extra padding row (ELMO_FORMAT.md §3).
        raise OptionsError(f"{source}: char_cnn.n_characters is {n_characters}, expected 262 at inference")
    max_chars = int(cnn.get("max_characters_per_token", 50))
    if max_chars != 50:
        # The char-id scheme (and every released model) fixes 50 ids per token.
        raise OptionsError(f"{source}: char_cnn.max_characters_per_token is {max_chars}, only 50 is supported")
    char_cnn = CharCNNOptions(
        embedding_dim=int(_require(embedding, "dim", f"{source} char_cnn.embedding")),
        filters=filters,
        n_highway=int(_require(cnn, "n_highway", f"{source} char_cnn")),
        n_characters=n_characters,
        max_characters_per_token=max_chars,
        activation=activation,
    )
    lstm_options = LSTMOptions(
        dim=int(_require(lstm, "dim", f"{source} lstm")),
        projection_dim=int(_require(lstm, "projection_dim", f"{source} lstm")),
        n_layers=int(_require(lstm, "n_layers", f"{source} lstm")),
        cell_clip=_clip(lstm.get("cell_clip")),
        proj_clip=_clip(lstm.get("proj_clip")),
        use_skip_connections=bool(lstm.get("use_skip_connections", False)),
    )
    return BiLMOptions(char_cnn=char_cnn, lstm=lstm_options)


def read_options(path: str | Path) -> BiLMOptions:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))  # utf-8, with or without a byte-order mark
    except FileNotFoundError:
        raise OptionsError(f"options file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise OptionsError(f"{path}: not valid JSON ({error})") from None
    return parse_options(raw, str(path))
