"""Any Hugging Face transformers encoder (BERT, RoBERTa, MiniLM, ...) as an encoder of words.

Each text's words are split into sub-word pieces; a text longer than the model's positions is read in windows
that overlap by `window_overlap` pieces, and each piece takes its vectors from the window where it sits
farthest from a cut edge. A word's vector at each layer is its first piece's (`pooling: first`, BERT's habit
for tagging) or the mean of its pieces (`pooling: mean`). The layers are the embeddings' output, then each
transformer layer's: L+1 of them, all offered to the scalar mix.
"""
from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from omegaconf import MISSING
from torch import nn

from ..config import check
from ..files import file_digest
from .base import Encoder, EncoderConfig, Tokens
from ..errors import EncoderError
from .pieces import PieceLayout

POOLINGS = ("first", "mean")
PACKAGE_PREFIX = "package:"  # package:NAME/FOLDER = FOLDER inside the installed Python package NAME
# What a model folder is read from (and fingerprinted by); the hub download fetches only these.
MODEL_FILES = ("*.json", "*.txt", "*.model", "*.safetensors")


@dataclass
class TransformerConfig(EncoderConfig):
    source: str = MISSING  # a hub id (bert-base-cased), a local model folder, or package:NAME/FOLDER
    revision: Optional[str] = None  # the hub revision (branch, tag or commit); null = the default branch
    pooling: str = "first"  # first | mean: a word's vector from its sub-word pieces
    # Pieces per window, special tokens included; null = what the model and its tokenizer allow (512 for BERT).
    max_pieces: Optional[int] = None
    window_overlap: int = 128  # pieces shared by consecutive windows of a long text

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.pooling in POOLINGS, "model.pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling}")
        check(self.max_pieces is None or self.max_pieces >= 3, "model.max_pieces",
              f"must be >= 3 or null, got {self.max_pieces}")
        check(self.window_overlap >= 0, "model.window_overlap", f"must be >= 0, got {self.window_overlap}")


def model_folder(config: TransformerConfig) -> Path:
    """A local folder holding the model: the one named, the packaged one, or the hub's snapshot (downloaded once,
    read from the Hugging Face cache after that, offline too)."""
    if config.source.startswith(PACKAGE_PREFIX):
        return packaged_folder(config.source[len(PACKAGE_PREFIX):])
    local = Path(config.source).expanduser()
    if local.is_dir() or config.source.startswith((".", "/", "~")):
        if not (local / "config.json").is_file():
            raise EncoderError(f"config key 'model.source': {local} is not a model folder (no config.json)")
        return local
    return hub_snapshot(config.source, config.revision)


def packaged_folder(spec: str) -> Path:
    package, _, folder = spec.partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        raise EncoderError(f"config key 'model.source': Python package '{package}' is not installed"
                           f" (pip install {package.replace('_', '-')})")
    path = Path(next(iter(found.submodule_search_locations))) / folder
    if not (path / "config.json").is_file():
        raise EncoderError(f"config key 'model.source': {path} is not a model folder (no config.json)")
    return path


def hub_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(MODEL_FILES)))
        if not any(path.glob("*.safetensors")):  # older repositories keep PyTorch pickles only
            path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=[*MODEL_FILES, "*.bin"]))
    except Exception as error:  # offline without a cached copy, an unknown id, a private repository
        raise EncoderError(f"config key 'model.source': '{repo_id}' is not a local folder and the Hugging Face hub"
                           f" could not provide it ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
                           ) from None
    return path


def folder_fingerprint(folder: Path, config: TransformerConfig, seed: int) -> str:
    """The model's files (weights, config, tokenizer) and the settings that shape its word vectors."""
    digest = hashlib.sha256(f"transformer:{config.pooling}:{config.max_pieces}:{config.window_overlap}".encode())
    for path in sorted(p for pattern in (*MODEL_FILES, "*.bin") for p in folder.glob(pattern)):
        if config.random_weights and path.suffix in (".safetensors", ".bin"):
            continue  # the weights are not read
        digest.update(f"{path.name}:{file_digest(path)}\n".encode())
    if config.random_weights:
        digest.update(f"random:{seed}".encode())
    return digest.hexdigest()


class TransformerEncoder(Encoder):
    kind = "transformer"
    config_schema = TransformerConfig

    def __init__(self, model: nn.Module, tokenizer, config: TransformerConfig, fingerprint: str):
        super().__init__(fingerprint)
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = config.pooling
        self._parts = nn.ModuleList(transformer_parts(model))
        self.prefix, self.suffix = special_pieces(tokenizer)
        self.window = self._window_pieces(config.max_pieces)
        self.overlap = min(config.window_overlap, self.window - 1)
        # The piece of a word the tokenizer turns into nothing (a lone control character or zero-width space).
        self.unknown_piece = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
        self.set_trainable([True] * len(self._parts))

    @classmethod
    def load(cls, config: TransformerConfig, seed: int) -> TransformerEncoder:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        folder = model_folder(config)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            if getattr(tokenizer, "add_prefix_space", None) is False:  # byte-level BPE (RoBERTa) reading words
                tokenizer = AutoTokenizer.from_pretrained(folder, add_prefix_space=True)
            if config.random_weights:
                torch.manual_seed(seed)
                model = AutoModel.from_config(AutoConfig.from_pretrained(folder))
            else:
                model = AutoModel.from_pretrained(folder)
        except (OSError, ValueError, KeyError) as error:
            raise EncoderError(f"config key 'model.source': cannot read the model in {folder}"
                               f" ({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None
        if not getattr(tokenizer, "is_fast", False):
            raise EncoderError(f"config key 'model.source': {folder} has no fast tokenizer (tokenizer.json), which"
                               " word pooling needs to map pieces to words")
        return cls(model.eval(), tokenizer, config, folder_fingerprint(folder, config, seed))

    def _window_pieces(self, max_pieces: int | None) -> int:
        """Text pieces per window: the model's positions (or max_pieces) less the special tokens."""
        limits = [getattr(self.model.config, "max_position_embeddings", None), self.tokenizer.model_max_length,
                  max_pieces]
        limit = min(int(x) for x in limits if x is not None and x > 0)
        content = limit - len(self.prefix) - len(self.suffix)
        if content < 1:
            raise EncoderError(f"config key 'model.max_pieces': {limit} pieces leave no room beside the special tokens")
        return content

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers + 1

    @property
    def output_dim(self) -> int:
        return self.model.config.hidden_size

    def parts(self) -> list[nn.Module]:
        return list(self._parts)

    def word_pieces(self, texts: Sequence[Tokens]) -> list[list[list[int]]]:
        """Each text's words as lists of piece ids (a word the tokenizer drops gets the unknown piece)."""
        nonempty = [i for i, text in enumerate(texts) if text]
        encoded = self.tokenizer([list(texts[i]) for i in nonempty], is_split_into_words=True,
                                 add_special_tokens=False, verbose=False)  # long texts are windowed, not cut
        result: list[list[list[int]]] = [[] for _ in texts]
        for row, i in enumerate(nonempty):
            words: list[list[int]] = [[] for _ in texts[i]]
            for piece, word in zip(encoded["input_ids"][row], encoded.word_ids(row)):
                if word is not None:
                    words[word].append(piece)
            result[i] = [pieces or [self.unknown_piece] for pieces in words]
        return result

    def forward(self, texts: Sequence[Tokens]) -> tuple[list[torch.Tensor], torch.Tensor]:
        layout = PieceLayout.build(self.word_pieces(texts), self.window, self.overlap, self.pooling)
        device = self.device
        width = max((len(w) for w in layout.windows), default=0) + len(self.prefix) + len(self.suffix)
        batch = len(texts)
        steps = max((len(t) for t in texts), default=0)
        mask = torch.arange(steps).unsqueeze(0) < torch.tensor([len(t) for t in texts]).unsqueeze(1)
        if not layout.windows:  # every text is empty
            zeros = torch.zeros(batch, steps, self.output_dim, device=device)
            return [zeros] * self.num_layers, mask.to(device)
        ids = torch.full((len(layout.windows), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for row, pieces in enumerate(layout.windows):
            with_specials = [*self.prefix, *pieces, *self.suffix]
            ids[row, : len(with_specials)] = torch.tensor(with_specials)
            attention[row, : len(with_specials)] = 1
        hidden = self.model(input_ids=ids.to(device), attention_mask=attention.to(device),
                            output_hidden_states=True).hidden_states  # L+1 of (windows, width, D)
        source = torch.tensor(layout.source_rows, device=device) * width + len(self.prefix) + torch.tensor(
            layout.source_positions, device=device)
        target = torch.tensor(layout.target_texts, device=device) * steps + torch.tensor(layout.target_words,
                                                                                         device=device)
        weight = torch.tensor(layout.weights, device=device)
        layers = []
        for states in hidden:
            pieces = states.reshape(-1, states.shape[-1])[source] * weight.to(states.dtype).unsqueeze(1)
            words = pieces.new_zeros(batch * steps, states.shape[-1]).index_add_(0, target, pieces)
            layers.append(words.view(batch, steps, -1))
        return layers, mask.to(device)


def special_pieces(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one text ([CLS] and [SEP]; <s> and </s>)."""
    encoded = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    ids, words = encoded["input_ids"][0], encoded.word_ids(0)
    inside = [i for i, word in enumerate(words) if word is not None]
    return ids[: inside[0]], ids[inside[-1] + 1 :]


def transformer_parts(model: nn.Module) -> list[nn.Module]:
    """The embeddings module, then each transformer layer, found by shape rather than by architecture name."""
    embeddings = getattr(model, "embeddings", None)
    count = model.config.num_hidden_layers
    stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == count]
    if embeddings is None or not stacks:
        raise EncoderError(f"{type(model).__name__}: cannot find its embeddings module and its {count} layers")
    return [embeddings, *stacks[0]]
