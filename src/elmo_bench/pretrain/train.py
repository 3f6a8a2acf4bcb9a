"""Pretraining a biLM on plain text, resumable, ending in an allennlp-format export.

    corpus -> token windows -> held-out split -> vocabulary -> biLM + shared softmax -> Adam
    -> checkpoint every few minutes and every epoch -> held-out perplexity -> options.json,
       weights.hdf5, vocab.txt, model_card.{json,md}
"""
from __future__ import annotations

import json
import logging
import math
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..cell.atomic import save_torch, write_json
from ..cell.checkpoints import CheckpointMismatch, check_fits, read_checkpoint, set_aside
from ..config import Device
from ..errors import DataError
from ..elmo import BiLM, batch_to_ids, load_bilm, save_weights
from ..threads import set_threads
from ..batching import bucket_batches
from ..training import autocast, check_precision
from .batches import SentenceBatches, StreamBatches
from .config import LRDecay, PretrainConfig
from .corpus import corpus_files, sentences
from .language_model import BiLanguageModel
from .vocabulary import BOS, EOS, UNK, LMVocabulary, count_words

log = logging.getLogger(__name__)

Text = tuple[str, ...]


@dataclass
class PretrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # batches done in the current epoch
    train_seconds: float = 0.0
    tokens_seen: int = 0
    history: list[dict] = field(default_factory=list)


@dataclass
class CorpusSplit:
    train: list[Text]
    heldout: list[Text]


def split_corpus(config: PretrainConfig) -> CorpusSplit:
    paths = [Path(config.data_root) / p for p in config.corpus]
    texts = [t for t in sentences(paths, config.max_sentence_tokens) if t]
    order = np.random.default_rng(config.seed).permutation(len(texts))
    held = set(order[: config.heldout_sentences].tolist())
    return CorpusSplit([t for i, t in enumerate(texts) if i not in held], [texts[i] for i in sorted(held)])


def check_corpus(config: PretrainConfig, corpus: CorpusSplit) -> None:
    """Something to train on and something to score, checked before any file is written: an empty or one-window
    corpus would otherwise export an untrained model and leave a checkpoint that blocks the corrected rerun."""
    windows = len(corpus.train) + len(corpus.heldout)
    if not corpus.train:
        raise DataError(f"corpus {', '.join(config.corpus)} (under {config.data_root}): {windows} token windows, and"
                        f" heldout_sentences={config.heldout_sentences} holds out all of them; nothing is left to"
                        " train on (give more text, or a smaller heldout_sentences)")


def choose_device(device: Device) -> torch.device:
    if device == Device.auto:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device.value)


def learning_rate(config: PretrainConfig, step: int, total_steps: int) -> float:
    """The rate for global step `step` (0-based) of `total_steps`: linear warm-up to `lr`, then constant
    or a linear decay that would reach zero after the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_decay == LRDecay.linear:
        return config.lr * max(0.0, (total_steps - step) / max(1, total_steps - config.warmup_steps))
    return config.lr


def sequence_mode(config: PretrainConfig) -> str:
    return f"truncated BPTT, {config.bptt_steps} steps" if config.bptt_steps else "one line at a time"


def make_batches(config: PretrainConfig, texts: list[Text], vocab: LMVocabulary) -> SentenceBatches | StreamBatches:
    if config.bptt_steps is None:
        return SentenceBatches(texts, vocab, config.batch_tokens, config.seed)
    return StreamBatches(texts, vocab, config.batch_tokens, config.bptt_steps, config.seed)


def heldout_perplexity(lm: BiLanguageModel, vocab: LMVocabulary, texts: list[Text], batch_tokens: int) -> dict:
    """Full-softmax perplexity of the forward LM, the backward LM and their mean (on log scale)."""
    lm.eval()
    total, count = torch.zeros(2, dtype=torch.float64), 0
    with torch.no_grad():
        for batch in bucket_batches([len(t) + 2 for t in texts], batch_tokens):
            chunk = [texts[i] for i in batch]
            nll, n = lm.direction_nll(chunk, vocab.encode(chunk))
            total += nll.double().cpu()
            count += n
    forward, backward = (total / count).tolist()
    return {"forward": math.exp(forward), "backward": math.exp(backward), "mean": math.exp((forward + backward) / 2)}


def unigram_perplexity(counts: Counter, vocab: LMVocabulary, train_sentences: int, heldout: list[Text]) -> float:
    """Perplexity of an add-one unigram model over the same vocabulary and targets (the baseline)."""
    unigram = np.ones(len(vocab))
    for word, count in counts.items():
        unigram[vocab.index.get(word, UNK)] += count
    unigram[EOS] += train_sentences
    unigram[BOS] += train_sentences
    log_p = np.log(unigram / unigram.sum())
    # The forward LM predicts w_1..w_n, </S>; the backward LM <S>, w_1..w_n: score both.
    targets = [vocab.index.get(w, UNK) for text in heldout for w in text]
    nll = -(2 * log_p[targets].sum() + len(heldout) * (log_p[EOS] + log_p[BOS]))
    return float(math.exp(nll / (2 * (len(targets) + len(heldout)))))


class Pretrainer:
    def __init__(self, config: PretrainConfig):
        self.config = config
        self.device = choose_device(config.device)
        check_precision(self.device, config.precision, "precision")
        set_threads(config.threads)
        self.corpus = split_corpus(config)
        check_corpus(config, self.corpus)
        self.folder = Path(config.output_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self.folder / "checkpoint.pt"
        self.counts = count_words(self.corpus.train)
        self.vocab = LMVocabulary.build(self.counts, config.vocab_size, config.min_count)
        torch.manual_seed(config.seed)
        self.lm = BiLanguageModel(BiLM(config.shape.to_options()), len(self.vocab), config.num_samples).to(self.device)
        self.optimizer = torch.optim.Adam(self.lm.parameters(), lr=config.lr)
        self.batches = make_batches(config, self.corpus.train, self.vocab)
        self.state = PretrainState()
        self._resume()

    def run(self) -> dict:
        config = self.config
        while self.state.epoch < config.max_epochs and not self._out_of_time():
            self._train_epoch()
            if self.state.step == 0:  # the epoch completed (not stopped by the time budget)
                self.state.history.append({"epoch": self.state.epoch, **self._perplexity()})
                log.info("epoch %(epoch)d: held-out perplexity forward %(forward).1f, backward %(backward).1f,"
                         " mean %(mean).1f", self.state.history[-1])
                self._save()
        return self.export()

    def _train_epoch(self) -> None:
        config, state = self.config, self.state
        steps = self.batches.count(state.epoch)
        total_steps = steps * config.max_epochs
        self.lm.train()
        last_save = time.perf_counter()
        bar = tqdm(range(state.step, steps), desc=f"pretrain epoch {state.epoch + 1}", unit="batch")
        for step in bar:
            start = time.perf_counter()
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(config, state.epoch * steps + step, total_steps)
            with autocast(self.device, config.precision):
                loss, tokens = self.batches.loss(self.lm, state.epoch, step)
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at epoch {state.epoch + 1}, step {step}; "
                                   f"last good checkpoint: {self.checkpoint}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.lm.parameters(), config.grad_clip)
            self.optimizer.step()
            state.step = step + 1
            state.tokens_seen += tokens
            state.train_seconds += time.perf_counter() - start
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{state.tokens_seen / state.train_seconds:.0f}")
            if self._out_of_time():
                break
            if time.perf_counter() - last_save > config.checkpoint_seconds:
                self._save()
                last_save = time.perf_counter()
        if state.step >= steps:
            state.epoch, state.step = state.epoch + 1, 0
        self._save()

    def _out_of_time(self) -> bool:
        budget = self.config.max_train_seconds
        return budget is not None and self.state.train_seconds >= budget

    def _perplexity(self) -> dict:
        return heldout_perplexity(self.lm, self.vocab, self.corpus.heldout, self.config.batch_tokens)

    def _save(self) -> None:
        save_torch(self.checkpoint, {
            "state": asdict(self.state),
            "model": self.lm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "vocab": self.vocab.words,
            "batches": self.batches.state_dict(),
        })

    def _resume(self) -> None:
        saved = read_checkpoint(self.checkpoint, map_location=self.device)
        if saved is None:
            return
        if "vocab" in saved and saved["vocab"] != self.vocab.words:
            raise DataError(f"{self.checkpoint} was trained with another vocabulary (the corpus, vocab_size or"
                            " min_count changed): to start afresh, delete it or set another name (or output_dir);"
                            " to resume it, restore the corpus and config it was started with")
        try:
            self._restore(saved)
        except (CheckpointMismatch, KeyError, TypeError, ValueError) as error:
            set_aside(self.checkpoint, f"does not fit this run ({error})")  # nothing was changed yet
            return
        log.info("resumed %s at epoch %d, step %d", self.checkpoint, self.state.epoch, self.state.step)

    def _restore(self, saved: dict) -> None:
        """Check the parts against this run before changing anything, so a foreign file leaves no trace."""
        state = PretrainState(**saved["state"])
        check_fits(saved["model"], self.lm.state_dict(), "model")
        check_fits({"rng": saved["rng"]}, {"rng": torch.get_rng_state()}, "rng")
        self.optimizer.load_state_dict(saved["optimizer"])  # checks its groups before changing anything
        self.state = state
        self.lm.load_state_dict(saved["model"])
        torch.set_rng_state(saved["rng"].cpu())
        self.batches.load_state_dict(saved.get("batches", {}))  # absent in checkpoints of older versions

    def export(self) -> dict:
        """Write options.json, weights.hdf5, vocab.txt and the model card; check they load back equal."""
        folder = self.folder / "export"
        folder.mkdir(exist_ok=True)
        bilm = self.lm.bilm
        write_json(folder / "options.json", bilm.options.to_json())
        save_weights(bilm, folder / "weights.hdf5")
        self.vocab.save(folder / "vocab.txt")
        card = self._model_card()
        write_json(folder / "model_card.json", card)
        (folder / "model_card.md").write_text(render_card(card), encoding="utf-8")
        check_round_trip(bilm, folder, self.corpus.heldout[:16])
        return card

    def _model_card(self) -> dict:
        config, state = self.config, self.state
        files = corpus_files([Path(config.data_root) / p for p in config.corpus])
        parameters = sum(p.numel() for p in self.lm.bilm.parameters())
        return {
            "name": config.name,
            "architecture": self.lm.bilm.options.to_json(),
            "parameters": parameters,
            "corpus": {"paths": list(config.corpus), "files": len(files),
                       "train_windows": len(self.corpus.train), "heldout_windows": len(self.corpus.heldout),
                       "train_tokens": sum(self.counts.values()),
                       "heldout_tokens": sum(len(t) for t in self.corpus.heldout)},
            "vocabulary": {"size": len(self.vocab), "min_count": config.min_count},
            "training": {"epochs_completed": state.epoch, "steps_into_epoch": state.step,
                         "tokens_seen": state.tokens_seen, "train_seconds": round(state.train_seconds, 1),
                         "tokens_per_second": round(state.tokens_seen / max(state.train_seconds, 1e-9)),
                         "softmax": f"sampled ({config.num_samples})" if config.num_samples else "full",
                         "sequences": sequence_mode(config), "batch_tokens": config.batch_tokens,
                         "lr": config.lr, "warmup_steps": config.warmup_steps, "lr_decay": str(config.lr_decay),
                         "precision": str(config.precision),
                         "device": str(self.device), "threads": torch.get_num_threads(),
                         "seed": config.seed, "torch": torch.__version__,
                         "python": platform.python_version()},
            "heldout_perplexity": self._perplexity(),
            "unigram_perplexity": unigram_perplexity(self.counts, self.vocab, len(self.corpus.train),
                                                     self.corpus.heldout),
            "history": state.history,
            "command": f"elmo-bench-pretrain name={config.name} (see conf/pretrain/config.yaml)",
        }


def render_card(card: dict) -> str:
    ppl, training, corpus = card["heldout_perplexity"], card["training"], card["corpus"]
    return "\n".join([
        f"# biLM `{card['name']}`",
        "",
        f"ELMo-architecture biLM ({card['parameters']:,} parameters) pretrained with elmo-bench.",
        "",
        f"- corpus: {', '.join(corpus['paths'])} ({corpus['files']} files, {corpus['train_tokens']:,} training"
        f" tokens, {corpus['heldout_tokens']:,} held-out tokens in {corpus['heldout_windows']:,} random lines)",
        f"- vocabulary: {card['vocabulary']['size']:,} words (min count {card['vocabulary']['min_count']})",
        f"- training: {training['tokens_seen']:,} tokens seen ({training['epochs_completed']} full epochs"
        f" + {training['steps_into_epoch']} steps), {training['train_seconds']:.0f} s at"
        f" {training['tokens_per_second']:,} tokens/s on {training['device']}, {training['softmax']} softmax,"
        f" {training['sequences']}, Adam lr {training['lr']:g} (warm-up {training['warmup_steps']} steps,"
        f" decay {training['lr_decay']})",
        f"- held-out perplexity: forward {ppl['forward']:.1f}, backward {ppl['backward']:.1f},"
        f" mean {ppl['mean']:.1f}; add-one unigram baseline {card['unigram_perplexity']:.1f}",
        f"- command: `{card['command']}`",
        "",
        "Architecture (options.json):",
        "",
        "```json",
        json.dumps(card["architecture"], indent=2),
        "```",
        "",
    ])


def check_round_trip(bilm: BiLM, folder: Path, texts: list[Text]) -> None:
    """The exported files must load back into a biLM with the same outputs."""
    reloaded = load_bilm(folder / "options.json", folder / "weights.hdf5")
    bilm.eval()
    ids = batch_to_ids(texts)
    with torch.no_grad():
        original, _ = bilm.cpu()(ids)
        loaded, _ = reloaded(ids)
    worst = max((a - b).abs().max().item() for a, b in zip(original, loaded))
    if worst > 1e-5:
        raise RuntimeError(f"exported biLM differs from the trained one by {worst}")
