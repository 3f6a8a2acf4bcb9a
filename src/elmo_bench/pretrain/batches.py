"""The two ways to cut a corpus into training batches (`bptt_steps` in conf/pretrain/).

- `SentenceBatches` (bptt_steps: null): each line is its own sequence, <S> w_1 .. w_n </S>, read from
  a zero LSTM state; lines of similar length are batched together. This is exactly how the biLM is
  used downstream (stateless, one sentence at a time).
- `StreamBatches` (bptt_steps: T): truncated backpropagation through time, as bilm-tf trains. Each
  epoch the lines are shuffled, wrapped in <S> .. </S>, concatenated into one stream and cut into B
  parallel rows; batch k is steps [kT, kT+T) of every row. The forward LM reads the rows left to
  right and the backward LM reads them right to left, each starting from the LSTM state it ended
  the previous window with (no gradient crosses windows), so context runs across sentences.
"""
from __future__ import annotations

import numpy as np
import torch

from ..elmo import batch_to_ids
from ..batching import bucket_batches
from .language_model import BiLanguageModel, CarriedStates
from .vocabulary import BOS, EOS, UNK, LMVocabulary

Text = tuple[str, ...]


class SentenceBatches:
    def __init__(self, texts: list[Text], vocab: LMVocabulary, batch_tokens: int, seed: int):
        self.texts, self.vocab, self.batch_tokens, self.seed = texts, vocab, batch_tokens, seed
        self._epoch, self._order = -1, []

    def count(self, epoch: int) -> int:
        return len(self._batches(epoch))

    def _batches(self, epoch: int) -> list[list[int]]:
        if epoch != self._epoch:
            lengths = [len(t) + 2 for t in self.texts]
            self._epoch, self._order = epoch, bucket_batches(lengths, self.batch_tokens, self.seed + epoch)
        return self._order

    def words(self, epoch: int) -> int:
        """Words (boundaries not counted) that the epoch's batches hold."""
        return sum(len(t) for t in self.texts)

    def loss(self, lm: BiLanguageModel, epoch: int, step: int) -> tuple[torch.Tensor, int]:
        """The mean loss of batch `step` of `epoch` and the number of words in it."""
        chunk = [self.texts[i] for i in self._batches(epoch)[step]]
        return lm.loss(chunk, self.vocab.encode(chunk)), sum(len(t) for t in chunk)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class StreamBatches:
    def __init__(self, texts: list[Text], vocab: LMVocabulary, batch_tokens: int, steps: int, seed: int):
        # Token types: the softmax vocabulary first, so a type id below len(vocab) is its softmax id.
        types = {word: i for i, word in enumerate(vocab.words)}
        pieces = [np.array([BOS, *(types.setdefault(w, len(types)) for w in text), EOS], dtype=np.int32)
                  for text in texts]
        self.flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        self.bounds = np.cumsum([0] + [len(p) for p in pieces])
        self.type_words = list(types)
        self.softmax_id = np.where(np.arange(len(types)) < len(vocab), np.arange(len(types)), UNK)
        self.rows, self.steps, self.seed = batch_tokens // steps, steps, seed
        self.carried: CarriedStates | None = None
        self._epoch, self._stream = -1, np.zeros((0, 0), dtype=np.int32)

    def count(self, epoch: int) -> int:
        return max(0, (self._rows_of(epoch).shape[1] - 1) // self.steps)

    def _rows_of(self, epoch: int) -> np.ndarray:
        """The epoch's stream as (rows, length) type ids."""
        if epoch != self._epoch:
            order = np.random.default_rng(self.seed + epoch).permutation(len(self.bounds) - 1)
            stream = np.concatenate([self.flat[self.bounds[i] : self.bounds[i + 1]] for i in order])
            length = len(stream) // self.rows
            self._epoch, self._stream = epoch, stream[: self.rows * length].reshape(self.rows, length)
        return self._stream

    def words(self, epoch: int) -> int:
        """Words (type ids past <S>, so not boundaries) in the part of the epoch's stream its windows read."""
        return int(np.count_nonzero(self._rows_of(epoch)[:, : self.count(epoch) * self.steps] > BOS))

    def windows(self, epoch: int, step: int) -> np.ndarray:
        """(2, rows, T + 1) type ids: the forward window and the backward one, each in its reading order."""
        rows = self._rows_of(epoch)
        start = step * self.steps
        return np.stack([rows[:, start : start + self.steps + 1],
                         rows[:, ::-1][:, start : start + self.steps + 1]])

    def loss(self, lm: BiLanguageModel, epoch: int, step: int) -> tuple[torch.Tensor, int]:
        if step == 0:
            self.carried = None  # a new epoch is a new stream
        window = self.windows(epoch, step)
        inputs, targets = window[..., :-1], window[..., 1:]
        loss, self.carried = lm.stream_loss(self.char_ids(inputs), torch.from_numpy(self.softmax_id[targets]),
                                            self.carried)
        # words read, as SentenceBatches counts them (boundaries left out), so tokens seen compare across modes
        return loss, int(np.count_nonzero(inputs[0] > BOS))

    def char_ids(self, type_ids: np.ndarray) -> torch.Tensor:
        """(..., 50) char ids of a type-id array, encoding each distinct type once."""
        distinct, inverse = np.unique(type_ids, return_inverse=True)
        table = batch_to_ids([[self.type_words[i] for i in distinct]])[0]
        return table[torch.from_numpy(inverse.reshape(type_ids.shape))]

    def state_dict(self) -> dict:
        return {"carried": self.carried}

    def load_state_dict(self, state: dict) -> None:
        self.carried = state.get("carried")
