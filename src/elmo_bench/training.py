"""Training with early stopping on the dev metric, resumable from a checkpoint after every epoch.

Everything that decides the outcome (model, optimizer, schedule, RNG, early-stopping counters) is in
the checkpoint, so a run killed at any point and started again ends with the same metrics as one
that was never interrupted.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .atomic import save_torch
from .config import ConfigError, Optimizer, Precision, Schedule, TrainerConfig
from .elmo.batching import bucket_batches
from .tasks.base import Example, Task, TaskModel

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


def autocast(device: torch.device, precision: Precision):
    if precision == Precision.fp32:
        return contextlib.nullcontext()
    if precision == Precision.fp16 and device.type != "cuda":
        raise ConfigError("config key 'trainer.precision': fp16 needs CUDA; use bf16 on CPU")
    dtype = torch.bfloat16 if precision == Precision.bf16 else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def make_optimizer(groups: list[dict], config: TrainerConfig) -> torch.optim.Optimizer:
    if config.optimizer == Optimizer.sgd:
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    kind = torch.optim.AdamW if config.optimizer == Optimizer.adamw else torch.optim.Adam
    return kind(groups, lr=config.lr, weight_decay=config.weight_decay)


def lr_multiplier(config: TrainerConfig, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor at step t (0-based) for the configured schedule."""
    warmup = max(1, int(config.warmup_fraction * total_steps))

    def constant(step: int) -> float:
        return 1.0

    def linear(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    def slanted_triangular(step: int) -> float:
        # Howard & Ruder (2018): p rises linearly to 1 over `warmup` steps, then falls to 0.
        p = step / warmup if step < warmup else 1 - (step - warmup) / max(1, total_steps - warmup)
        return (1 + max(p, 0.0) * (config.stlr_ratio - 1)) / config.stlr_ratio

    return {Schedule.constant: constant, Schedule.linear: linear, Schedule.slanted_triangular: slanted_triangular}[
        config.schedule
    ]


def batches(task: Task, examples: Sequence[Example], max_tokens: int, seed: int | None) -> list[list[int]]:
    return bucket_batches([task.length(e) for e in examples], max_tokens, shuffle_seed=seed)


def predict(task: Task, model: TaskModel, examples: Sequence[Example], config: TrainerConfig, device) -> list:
    """Predictions in the order of `examples`."""
    model.eval()
    predictions: list = [None] * len(examples)
    with torch.no_grad(), autocast(device, config.precision):
        for batch in tqdm(batches(task, examples, config.eval_batch_tokens, None), desc="evaluate", leave=False):
            for index, predicted in zip(batch, model.predict([examples[i] for i in batch])):
                predictions[index] = predicted
    return predictions


class Trainer:
    def __init__(self, task: Task, model: TaskModel, groups: list[dict], config: TrainerConfig,
                 device: torch.device, seed: int, checkpoint: Path, regularizer: Callable[[], torch.Tensor]):
        self.task, self.model, self.config, self.device, self.seed = task, model, config, device, seed
        self.checkpoint = checkpoint
        self.regularizer = regularizer
        self.optimizer = make_optimizer(groups, config)
        self.scheduler = None
        self.progress = Progress()
        self.best_state: dict | None = None

    def fit(self, train: Sequence[Example], dev: Sequence[Example]) -> Progress:
        steps_per_epoch = len(batches(self.task, train, self.config.batch_tokens, 0))
        total = steps_per_epoch * self.config.max_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_multiplier(self.config, total))
        self._resume()
        gold_dev = [e.label for e in dev]
        while self.progress.epoch < self.config.max_epochs and self.progress.bad_epochs < self.config.patience:
            start = time.perf_counter()
            loss = self._train_epoch(train)
            elapsed = time.perf_counter() - start
            score = self.task.score(gold_dev, predict(self.task, self.model, dev, self.config, self.device))
            self._record_epoch(loss, score[self.task.metric], elapsed)
            self._save_checkpoint()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.progress

    def _train_epoch(self, train: Sequence[Example]) -> float:
        self.model.train()
        epoch = self.progress.epoch + 1
        order = batches(self.task, train, self.config.batch_tokens, self.seed * 1000 + epoch)
        total, bar = 0.0, tqdm(order, desc=f"epoch {epoch}", leave=False)
        for step, batch in enumerate(bar):
            with autocast(self.device, self.config.precision):
                loss = self.model.loss([train[i] for i in batch]) + self.regularizer()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step}; the last good checkpoint"
                    f" is kept at {self.checkpoint} (try a lower trainer.lr or trainer.grad_clip)"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / (step + 1):.4f}")
        return total / max(1, len(order))

    def _record_epoch(self, loss: float, dev_score: float, seconds: float) -> None:
        progress = self.progress
        progress.epoch += 1
        progress.train_seconds += seconds
        progress.history.append({"epoch": progress.epoch, "loss": loss, "dev": dev_score, "seconds": seconds})
        if dev_score > progress.best_score:
            progress.best_score, progress.best_epoch, progress.bad_epochs = dev_score, progress.epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        elif progress.epoch > self.config.min_epochs:
            # The first epochs never count against patience: on small data (and under a warm-up) the dev
            # score can sit at its floor for a few epochs before it starts to rise.
            progress.bad_epochs += 1
        log.info("epoch %d: loss %.4f, dev %s %.4f (best %.4f at epoch %d), %.1fs", progress.epoch, loss,
                 self.task.metric, dev_score, progress.best_score, progress.best_epoch, seconds)

    def _save_checkpoint(self) -> None:
        state = {
            "progress": vars(self.progress),
            "model": self.model.state_dict(),
            "best_model": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        save_torch(self.checkpoint, state)

    def _resume(self) -> None:
        if not self.checkpoint.is_file():
            return
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        self.progress = Progress(**state["progress"])
        self.model.load_state_dict(state["model"])
        self.best_state = state["best_model"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resumed from %s after epoch %d", self.checkpoint, self.progress.epoch)
