"""Typed configuration of `elmo-bench-pretrain` (conf/pretrain/)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from ..config import Choice, Device, Precision, check, check_path_part, check_seed
from ..elmo.options import CharCNNOptions, BiLMOptions, LSTMOptions


@dataclass
class ShapeConfig:
    """The network; defaults are a CPU-sized ELMo: slimmer char-CNN, LSTM cell 512, projection 128."""

    char_embedding_dim: int = 16
    filters: list = field(default_factory=lambda: [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256]])
    n_highway: int = 1
    activation: str = "relu"
    lstm_dim: int = 512
    projection_dim: int = 128
    n_layers: int = 2
    cell_clip: float = 3.0
    proj_clip: float = 3.0
    use_skip_connections: bool = True

    def to_options(self) -> BiLMOptions:
        return BiLMOptions(
            char_cnn=CharCNNOptions(self.char_embedding_dim, tuple((int(w), int(n)) for w, n in self.filters),
                                    self.n_highway, activation=self.activation),
            lstm=LSTMOptions(self.lstm_dim, self.projection_dim, self.n_layers, self.cell_clip, self.proj_clip,
                             self.use_skip_connections),
        )


class LRDecay(Choice):
    none = "none"
    linear = "linear"  # to zero at the decay horizon: max_tokens, else the end of max_epochs


@dataclass
class PretrainConfig:
    name: str = "cpu-small"
    corpus: list = field(default_factory=list)  # files or folders, relative to data_root
    data_root: str = "${oc.env:ELMO_BENCH_DATA,data}"
    output_dir: str = "pretrained/${name}"  # checkpoints and the exported model
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    vocab_size: int = 40000  # softmax vocabulary, specials included
    min_count: int = 3
    num_samples: Optional[int] = 2048  # sampled-softmax negatives; null = full softmax
    max_sentence_tokens: int = 50  # longer lines are cut into windows of this size
    # null: each line is its own sequence from a zero state (as the biLM is used downstream);
    # T: truncated BPTT over the concatenated lines in windows of T steps, state carried (bilm-tf: 20)
    bptt_steps: Optional[int] = None
    heldout_sentences: int = 2000  # drawn at random (seeded) from the corpus, never trained on
    batch_tokens: int = 2000
    lr: float = 1e-3  # Adam
    warmup_steps: int = 0  # linear warm-up from zero
    lr_decay: LRDecay = LRDecay.none
    grad_clip: float = 1.0
    dropout: float = 0.0  # on each LSTM layer's input and the top output (bilm-tf: 0.1)
    max_epochs: int = 1
    # stop (and export) after this many words seen; the linear decay reaches zero here, so a run cut short only
    # by max_train_seconds would never finish its decay: give long runs a token budget they will reach
    max_tokens: Optional[int] = None
    max_train_seconds: Optional[float] = None  # stop (and export) after this much training time
    eval_every_tokens: Optional[int] = None  # held-out perplexity into the history this often (null: per epoch)
    checkpoint_seconds: float = 300.0
    precision: Optional[Precision] = None  # null: bf16 autocast on CUDA, fp32 on CPU
    device: Device = Device.auto
    threads: Optional[int] = None  # CPU threads; null = the CPUs this process may use (elmo_bench/threads.py)
    seed: int = 0

    def __post_init__(self) -> None:
        check_path_part(self.name, "name")
        check(self.threads is None or self.threads >= 1, "threads", f"must be >= 1 or null, got {self.threads}")
        check(bool(self.corpus), "corpus", "name at least one file or folder")
        check(self.vocab_size > 3, "vocab_size", f"must be > 3, got {self.vocab_size}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.max_epochs >= 1, "max_epochs", f"must be >= 1, got {self.max_epochs}")
        check(self.num_samples is None or self.num_samples >= 1, "num_samples", "must be >= 1 or null")
        check(self.bptt_steps is None or self.bptt_steps >= 1, "bptt_steps", "must be >= 1 or null")
        check(self.bptt_steps is None or self.batch_tokens >= self.bptt_steps, "batch_tokens",
              f"must hold at least one window of bptt_steps ({self.bptt_steps}), got {self.batch_tokens}")
        check(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")
        check(self.max_tokens is None or self.max_tokens >= 1, "max_tokens",
              f"must be >= 1 or null, got {self.max_tokens}")
        check(self.eval_every_tokens is None or self.eval_every_tokens >= 1, "eval_every_tokens",
              f"must be >= 1 or null, got {self.eval_every_tokens}")
        check(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        check(self.heldout_sentences >= 1, "heldout_sentences", "must be >= 1")
        check(self.shape.activation in ("relu", "tanh"), "shape.activation", "must be relu or tanh")
        check_seed(self.seed, "seed")


def register_pretrain_schema() -> None:
    ConfigStore.instance().store(name="pretrain_schema", node=PretrainConfig)
