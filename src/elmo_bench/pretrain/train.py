"""Pretraining a biLM on plain text, resumable, ending in an allennlp-format export.

    corpus -> token windows -> held-out split -> vocabulary -> biLM + shared softmax -> Adam
    -> checkpoint every few minutes and every epoch -> held-out perplexity -> options.json,
       weights.hdf5, vocab.txt, model_card.{json,md}
"""
from __future__ import annotations

import hashlib
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
from ..config import Device, Precision
from ..errors import DataError
from ..elmo import BiLM, batch_to_ids, load_bilm, save_weights
from ..threads import set_threads
from ..batching import bucket_batches
from ..training import autocast, check_precision, resolve_precision
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
    tokens_seen: int = 0  # words, boundaries not counted
    updates: int = 0  # optimizer steps over all epochs (the warm-up counts these)
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


def learning_rate(config: PretrainConfig, update: int, done: float) -> float:
    """The rate for update `update` (0-based) when a fraction `done` of the decay horizon's words is seen:
    `lr`, times a linear warm-up over the first `warmup_steps` updates, times (1 - done) under linear decay."""
    rate = config.lr * min(1.0, (update + 1) / config.warmup_steps) if config.warmup_steps else config.lr
    if config.lr_decay == LRDecay.linear:
        return rate * max(0.0, 1.0 - done)
    return rate


def choose_precision(config: PretrainConfig, device: torch.device) -> Precision:
    """`precision: null` is bf16 autocast on CUDA and fp32 elsewhere, so one command suits both machines."""
    if config.precision is None:
        return Precision.bf16 if device.type == "cuda" else Precision.fp32
    check_precision(device, config.precision, "precision")
    return resolve_precision(device, config.precision)  # auto: bf16 where the device has it natively


def fingerprint(items: list) -> str:
    """A short sha256 of a word list or a list of lines, to check two runs score the same held-out text."""
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


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
    def __init__(self, config: PretrainConfig, command: str | None = None):
        self.config = config
        self.command = command or f"elmo-bench-pretrain name={config.name} (see conf/pretrain/config.yaml)"
        self.device = choose_device(config.device)
        self.precision = choose_precision(config, self.device)
        set_threads(config.threads)
        self.corpus = split_corpus(config)
        check_corpus(config, self.corpus)
        self.folder = Path(config.output_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self.folder / "checkpoint.pt"
        self.counts = count_words(self.corpus.train)
        self.vocab = LMVocabulary.build(self.counts, config.vocab_size, config.min_count)
        torch.manual_seed(config.seed)
        self.lm = BiLanguageModel(BiLM(config.shape.to_options()), len(self.vocab), config.num_samples,
                                  config.dropout).to(self.device)
        self.optimizer = torch.optim.Adam(self.lm.parameters(), lr=config.lr)
        self.batches = make_batches(config, self.corpus.train, self.vocab)
        self.horizon = config.max_tokens or config.max_epochs * self.batches.words(0)
        self.state = PretrainState()
        log.info("corpus: %d training lines (%d words), %d held-out lines (%d words, %s); vocabulary %d (%s);"
                 " decay horizon %d words", len(self.corpus.train), sum(self.counts.values()),
                 len(self.corpus.heldout), sum(map(len, self.corpus.heldout)), fingerprint(self.corpus.heldout),
                 len(self.vocab), fingerprint(self.vocab.words), self.horizon)
        self._resume()

    def run(self) -> dict:
        config = self.config
        while self.state.epoch < config.max_epochs and not self._out_of_budget():
            self._train_epoch()
            if self.state.step == 0:  # the epoch completed (not stopped by a budget)
                self._evaluate()
        self._evaluate()  # where a budget stopped it, so the curve ends at the exported model
        return self.export()

    def _train_epoch(self) -> None:
        state = self.state
        steps = self.batches.count(state.epoch)
        self.lm.train()
        last_save = time.perf_counter()
        bar = tqdm(range(state.step, steps), desc=f"pretrain epoch {state.epoch + 1}", unit="batch",
                   initial=state.step, total=steps, mininterval=30.0)  # 30 s: long runs write to a log file
        for step in bar:
            loss = self._update(step)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{state.tokens_seen / state.train_seconds:.0f}",
                            words=state.tokens_seen, refresh=False)
            if self._out_of_budget():
                break
            if self._due_for_evaluation():
                self._evaluate()
                self.lm.train()
                last_save = time.perf_counter()
            elif time.perf_counter() - last_save > self.config.checkpoint_seconds:
                self._save()
                last_save = time.perf_counter()
        if state.step >= steps:
            state.epoch, state.step = state.epoch + 1, 0
        self._save()

    def _update(self, step: int) -> float:
        """One optimizer step on batch `step` of the current epoch; returns its loss."""
        state, config = self.state, self.config
        start = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(config, state.updates, state.tokens_seen / self.horizon)
        with autocast(self.device, self.precision):
            loss, tokens = self.batches.loss(self.lm, state.epoch, step)
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at epoch {state.epoch + 1}, step {step}; "
                               f"last good checkpoint: {self.checkpoint}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.lm.parameters(), config.grad_clip)
        self.optimizer.step()
        state.step, state.updates = step + 1, state.updates + 1
        state.tokens_seen += tokens
        state.train_seconds += time.perf_counter() - start
        return loss.item()

    def _due_for_evaluation(self) -> bool:
        """True once per `eval_every_tokens` words: the last history entry lies in an earlier interval."""
        every = self.config.eval_every_tokens
        last = self.state.history[-1]["tokens_seen"] if self.state.history else 0
        return every is not None and self.state.tokens_seen // every > last // every

    def _evaluate(self) -> None:
        """Held-out perplexity into the history (it draws no random numbers, so a resumed run stays equal)."""
        state = self.state
        if state.history and state.history[-1]["tokens_seen"] == state.tokens_seen:
            return  # scored at this very point already (an interval that ended with the epoch)
        state.history.append({"epoch": state.epoch + state.step / max(1, self.batches.count(state.epoch)),
                              "tokens_seen": state.tokens_seen, "train_seconds": round(state.train_seconds, 1),
                              **self._perplexity()})
        log.info("%(tokens_seen)d words (epoch %(epoch).2f): held-out perplexity forward %(forward).1f,"
                 " backward %(backward).1f, mean %(mean).1f", state.history[-1])
        self._save()
        write_json(self.folder / "history.json", self._curve())  # the scaling table reads this, not the checkpoint

    def _curve(self) -> dict:
        """What a perplexity curve needs to be compared: the network, the held-out lines, the vocabulary."""
        return {"name": self.config.name, "parameters": sum(p.numel() for p in self.lm.bilm.parameters()),
                "architecture": self.lm.bilm.options.to_json(), "sequences": sequence_mode(self.config),
                "corpus": self._corpus_facts(), "vocabulary": self._vocabulary_facts(),
                "decay_horizon_tokens": self.horizon, "history": self.state.history}

    def _out_of_budget(self) -> bool:
        budget, state = self.config, self.state
        return ((budget.max_train_seconds is not None and state.train_seconds >= budget.max_train_seconds)
                or (budget.max_tokens is not None and state.tokens_seen >= budget.max_tokens))

    def _perplexity(self) -> dict:
        return heldout_perplexity(self.lm, self.vocab, self.corpus.heldout, self.config.batch_tokens)

    def _save(self) -> None:
        save_torch(self.checkpoint, {
            "state": asdict(self.state),
            "model": self.lm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,  # dropout, sampling
            "vocab": self.vocab.words,
            "batches": self.batches.state_dict(),
            "settings": self._settings(),
        })

    def _settings(self) -> dict:
        """The keys that make a run what it is, as plain values, to name any that a resume changed."""
        config = self.config
        keys = ("bptt_steps", "batch_tokens", "dropout", "lr", "warmup_steps", "lr_decay", "max_tokens", "max_epochs",
                "num_samples", "grad_clip", "seed")
        return {"shape": json.dumps(asdict(config.shape)), **{key: str(getattr(config, key)) for key in keys}}

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
        for key, value in saved.get("settings", {}).items():  # absent in checkpoints of older versions
            if self._settings().get(key) != value:
                log.warning("resumed with %s changed from %s to %s (the run goes on under the new value)",
                            key, value, self._settings().get(key))

    def _restore(self, saved: dict) -> None:
        """Check the parts against this run before changing anything, so a foreign file leaves no trace."""
        state = PretrainState(**saved["state"])
        check_fits(saved["model"], self.lm.state_dict(), "model")
        check_fits({"rng": saved["rng"]}, {"rng": torch.get_rng_state()}, "rng")
        self.optimizer.load_state_dict(saved["optimizer"])  # checks its groups before changing anything
        self.state = state
        self.lm.load_state_dict(saved["model"])
        torch.set_rng_state(saved["rng"].cpu())
        if saved.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu())
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

    def _corpus_facts(self) -> dict:
        return {"train_windows": len(self.corpus.train), "heldout_windows": len(self.corpus.heldout),
                "train_tokens": sum(self.counts.values()), "heldout_tokens": sum(map(len, self.corpus.heldout)),
                "heldout_fingerprint": fingerprint(self.corpus.heldout)}

    def _vocabulary_facts(self) -> dict:
        return {"size": len(self.vocab), "min_count": self.config.min_count,
                "fingerprint": fingerprint(self.vocab.words)}

    def _model_card(self) -> dict:
        config, state = self.config, self.state
        files = corpus_files([Path(config.data_root) / p for p in config.corpus])
        parameters = sum(p.numel() for p in self.lm.bilm.parameters())
        return {
            "name": config.name,
            "architecture": self.lm.bilm.options.to_json(),
            "parameters": parameters,
            "corpus": {"paths": list(config.corpus), "files": len(files), **self._corpus_facts()},
            "vocabulary": self._vocabulary_facts(),
            "training": {"epochs_completed": state.epoch, "steps_into_epoch": state.step,
                         "tokens_seen": state.tokens_seen, "train_seconds": round(state.train_seconds, 1),
                         "tokens_per_second": round(state.tokens_seen / max(state.train_seconds, 1e-9)),
                         "softmax": f"sampled ({config.num_samples})" if config.num_samples else "full",
                         "sequences": sequence_mode(config), "batch_tokens": config.batch_tokens,
                         "lr": config.lr, "warmup_steps": config.warmup_steps, "lr_decay": str(config.lr_decay),
                         "decay_horizon_tokens": self.horizon, "max_tokens": config.max_tokens,
                         "updates": state.updates, "dropout": config.dropout, "precision": str(self.precision),
                         "device": str(self.device), "threads": torch.get_num_threads(),
                         "seed": config.seed, "torch": torch.__version__,
                         "python": platform.python_version()},
            "heldout_perplexity": self._perplexity(),
            "unigram_perplexity": unigram_perplexity(self.counts, self.vocab, len(self.corpus.train),
                                                     self.corpus.heldout),
            "history": state.history,
            "command": self.command,
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
        f" decay {decay_text(training)}), dropout {training.get('dropout', 0.0):g}, {training['precision']}",
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
        *curve_lines(card["history"]),
    ])


def decay_text(training: dict) -> str:
    if training["lr_decay"] == "linear" and "decay_horizon_tokens" in training:
        return f"linear to zero at {training['decay_horizon_tokens']:,} words"
    return training["lr_decay"]


def curve_lines(history: list[dict]) -> list[str]:
    """The held-out perplexity curve as a Markdown table (entries of older runs lack the word count)."""
    rows = [h for h in history if "tokens_seen" in h]
    if not rows:
        return []
    return ["Held-out perplexity while training:", "", "| words seen | epoch | hours | forward | backward | mean |",
            "|---:|---:|---:|---:|---:|---:|",
            *(f"| {h['tokens_seen']:,} | {h['epoch']:.2f} | {h['train_seconds'] / 3600:.2f} | {h['forward']:.1f} |"
              f" {h['backward']:.1f} | {h['mean']:.1f} |" for h in rows), ""]


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
