"""Training stage by stage with early stopping on the dev metric, resumable from a checkpoint written
at every dev evaluation.

Everything that decides the outcome (model, optimizer, stage and step counters, RNG, early-stopping
counters) is in the checkpoint; the learning rates and which encoder parts train are functions of the
stage and step, so a run killed at any point and started again ends with the same metrics as one
that was never interrupted.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .cell.atomic import save_torch
from .cell.checkpoints import CheckpointMismatch, check_fits, read_checkpoint, set_aside
from .errors import ConfigError, TrainingError
from .config import ClipGroups, Optimizer, Precision, ScheduleHorizon, TrainerConfig
from .batching import bucket_batches
from .schedules import Horizon, lr_factor
from .strategies.base import Strategy
from .tasks.base import Example, Task, TaskModel

log = logging.getLogger(__name__)


@dataclass
class Progress:
    stage: int = 0  # the strategy's stage being trained (index into Strategy.stages)
    stage_step: int = 0  # updates done in this stage
    stage_epoch: int = 0  # epochs done in this stage
    step: int = 0  # updates done in all stages
    epoch: int = 0  # epochs done in all stages (seeds each epoch's batch order)
    best_score: float = -math.inf
    best_step: int = 0
    best_epoch: int = 0
    bad_evals: int = 0  # dev evaluations of this stage without an improvement
    best_trend: float = -math.inf  # the best (smoothed) dev score patience compares with
    best_lr: dict = field(default_factory=dict)  # each group's rate and its share of the peak at best_step
    pulls: list = field(default_factory=list)  # this stage's Horizon.pulls: where dev plateaus pulled the decay in
    train_seconds: float = 0.0  # training updates only
    eval_seconds: float = 0.0  # scoring dev during training (with a live encoder it can cost an epoch)
    wall_seconds: float = 0.0  # the cell's whole wall time up to this checkpoint, over every attempt
    cpu_seconds: float = 0.0  # the same in CPU time of the process (every thread)
    history: list[dict] = field(default_factory=list)  # one entry per dev evaluation
    stages: list[dict] = field(default_factory=list)  # one entry per finished stage


@dataclass
class Attempt:
    """What a cell has cost so far: its earlier attempts up to the checkpoint resumed from (work after an
    attempt's last checkpoint is redone, not counted), plus this attempt since it started."""

    wall_start: float = field(default_factory=time.perf_counter)
    cpu_start: float = field(default_factory=time.process_time)
    earlier_wall: float = 0.0
    earlier_cpu: float = 0.0

    def wall(self) -> float:
        return self.earlier_wall + time.perf_counter() - self.wall_start

    def cpu(self) -> float:
        """CPU seconds of this process, every thread (on 1 thread, at most the wall time)."""
        return self.earlier_cpu + time.process_time() - self.cpu_start


@dataclass(frozen=True)
class Budget:
    """One stage's updates and dev-evaluation cadence, for a training set of `steps_per_epoch` batches."""

    steps_per_epoch: int
    steps: int  # updates in the stage unless early stopping ends it
    min_steps: int  # updates before early stopping may act
    eval_epochs: int  # epochs between dev evaluations

    @classmethod
    def plan(cls, config: TrainerConfig, steps_per_epoch: int) -> Budget:
        per_epoch = max(1, steps_per_epoch)
        floor_epochs = math.ceil(config.min_steps / per_epoch)
        if floor_epochs > config.max_epochs:  # a small training set: said, since it overrides a key the user set
            log.warning("trainer.min_steps=%d needs %d epochs of %d batches, more than trainer.max_epochs=%d:"
                        " trainer.min_steps wins (trainer.min_steps=0 lets trainer.max_epochs bound the run)",
                        config.min_steps, floor_epochs, per_epoch, config.max_epochs)
        epochs = max(config.max_epochs, floor_epochs)
        steps = epochs * per_epoch if config.max_steps is None else min(epochs * per_epoch, config.max_steps)
        return cls(per_epoch, steps, min(config.min_steps, steps), max(1, math.ceil(config.eval_steps / per_epoch)))

    def split(self, shares: Sequence[float]) -> list[Budget]:
        """One budget per stage: stage i gets shares[i] of the updates and of the update floor. Shares that sum
        to 1 divide this budget exactly (two_stage trains as many updates as finetune); a share of 1 per stage
        gives every stage the whole budget."""
        def parts(total: int) -> list[int]:
            ends = [round(total * end) for end in itertools.accumulate(shares)]
            return [end - start for start, end in zip([0, *ends], ends)]

        return [Budget(self.steps_per_epoch, max(1, steps), min(floor, max(1, steps)), self.eval_epochs)
                for steps, floor in zip(parts(self.steps), parts(self.min_steps))]


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that compute bf16 natively


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Elsewhere bf16 is emulated: a bf16 matrix
    product ran ~50x slower than fp32 on an AVX2-only CPU. Unknown (no /proc/cpuinfo) counts as no."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(device: torch.device, precision: Precision) -> Precision:
    """The precision a run computes in: `auto` is bf16 where the device has it natively, else fp32; bf16 asked for
    on a CPU without it runs, with a warning (slow)."""
    native = cpu_has_native_bf16() if device.type == "cpu" else device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == Precision.auto:
        return Precision.bf16 if native else Precision.fp32
    if precision == Precision.bf16 and not native:
        log.warning("trainer.precision=bf16 on a %s without native bf16 (%s): emulated, many times slower than fp32",
                    device.type, "/proc/cpuinfo lists none of " + ", ".join(CPU_BF16_FLAGS)
                    if device.type == "cpu" else "torch.cuda.is_bf16_supported() is false")
    return precision


def check_precision(device: torch.device, precision: Precision, key: str = "trainer.precision") -> None:
    if precision == Precision.fp16 and device.type != "cuda":
        raise ConfigError(f"config key '{key}': fp16 needs CUDA; use bf16 on CPU")


def autocast(device: torch.device, precision: Precision):
    """Mixed precision around a forward pass: the parameters (master weights) and optimizer stay fp32."""
    if precision == Precision.fp32:
        return contextlib.nullcontext()
    check_precision(device, precision)
    if precision == Precision.auto:
        raise ValueError("trainer.precision=auto must be resolved (resolve_precision) before autocast")
    dtype = torch.bfloat16 if precision == Precision.bf16 else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def make_optimizer(groups: list[dict], config: TrainerConfig) -> torch.optim.Optimizer:
    if config.optimizer == Optimizer.sgd:
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    kind = torch.optim.AdamW if config.optimizer == Optimizer.adamw else torch.optim.Adam
    return kind(groups, lr=config.lr, weight_decay=config.weight_decay)


def batches(task: Task, examples: Sequence[Example], max_tokens: int, seed: int | None) -> list[list[int]]:
    return bucket_batches([task.length(e) for e in examples], max_tokens, shuffle_seed=seed)


def evaluation_batches(task: Task, examples: Sequence[Example], max_tokens: int) -> list[list[int]]:
    return bucket_batches([task.length(e) for e in examples], max_tokens,
                          order_keys=[task.evaluation_order(e) for e in examples])


def predict(task: Task, model: TaskModel, examples: Sequence[Example], config: TrainerConfig, device) -> list:
    """Predictions in the order of `examples`. Under inference_mode: no autograd records or version counters (a
    tensor made here cannot enter a later backward pass, and nothing made here is kept)."""
    model.eval()
    predictions: list = [None] * len(examples)
    with torch.inference_mode(), autocast(device, config.precision):
        for batch in tqdm(evaluation_batches(task, examples, config.eval_batch_tokens), desc="evaluate", leave=False):
            for index, predicted in zip(batch, model.predict([examples[i] for i in batch])):
                predictions[index] = predicted
    return predictions


CORRELATIONS = ("pearson", "spearman")  # metrics whose sampling error is Fisher's, not a proportion's


def standard_error(metric: str, score: float, examples: int) -> float:
    """The sampling standard error of a dev score (0-1 units) on `examples` examples: a proportion's
    sqrt(s (1 - s) / n), or for a correlation (1 - r^2) / sqrt(n - 1). For span F1 or token accuracy it treats the
    examples (sentences, questions) as the units, which errs on the large side."""
    if metric in CORRELATIONS:
        return (1 - min(1.0, score * score)) / math.sqrt(max(1, examples - 1))
    share = min(1.0, max(0.0, score))
    return math.sqrt(share * (1 - share) / max(1, examples))


def min_gain(min_delta: float | str, metric: str, best: float, examples: int) -> float:
    """The dev gain over `best` that resets patience: min_delta, or with `auto` one standard error at `best`."""
    if min_delta != "auto":
        return float(min_delta)
    return standard_error(metric, best, examples) if math.isfinite(best) else 0.0


def patience_step(best: float, score: float, bad_evals: int, needed: float) -> tuple[float, int]:
    """Patience after one evaluation: (the best score so far, evaluations without a gain above `needed`).
    A smaller gain still raises the best score, so noise cannot keep a run going on a plateau."""
    return max(best, score), 0 if score - best > needed else bad_evals + 1


class Trainer:
    """Trains the strategy's stages one after the other; each stage gets the budget and early stopping.

    Before every update the task group's rate follows `trainer.schedule` over the stage's budget and the
    encoder groups' rates follow the strategy's; the strategy may also unfreeze an encoder part. The model with
    the best dev score over all stages is kept; a stage starts from the best model of the stage before.
    """

    def __init__(self, task: Task, model: TaskModel, strategy: Strategy, groups: list[dict], config: TrainerConfig,
                 device: torch.device, seed: int, checkpoint: Path, regularizer: Callable[[], torch.Tensor],
                 attempt: Attempt | None = None):
        self.task, self.model, self.strategy, self.config = task, model, strategy, config
        self.device, self.seed, self.checkpoint, self.regularizer = device, seed, checkpoint, regularizer
        self.optimizer = make_optimizer(groups, config)
        self.progress = Progress()
        self.best_state: dict | None = None
        self.attempt = Attempt() if attempt is None else attempt
        self.warmup_base: int | None = None  # set by fit
        self.dev_examples = 0  # set by fit: min_delta=auto scales with it

    def fit(self, train: Sequence[Example], dev: Sequence[Example]) -> Progress:
        whole = Budget.plan(self.config, len(batches(self.task, train, self.config.batch_tokens, 0)))
        budgets = whole.split(self.strategy.stage_shares())
        # The warm-up is a share of the whole run's updates (patience) so that every arm warms the encoder up
        # over as many updates, whatever the stage it tunes in; or of the stage's own (budget, the old recipe).
        self.warmup_base = whole.steps if self.config.schedule_horizon == ScheduleHorizon.patience else None
        self.dev_examples = len(dev)
        self._resume()
        while self.progress.stage < len(self.strategy.stages):
            budget = budgets[self.progress.stage]
            self.strategy.start_stage(self.progress.stage)
            self._train_stage(train, dev, budget)
            self._finish_stage()
        return self.progress

    def _train_stage(self, train: Sequence[Example], dev: Sequence[Example], budget: Budget) -> None:
        progress, gold_dev = self.progress, [e.label for e in dev]
        losses, seconds = [], 0.0
        while progress.stage_step < budget.steps and not self._patience_spent(budget):
            start = time.perf_counter()
            losses += self._train_epoch(train, budget)
            seconds += time.perf_counter() - start
            if progress.stage_epoch % budget.eval_epochs == 0 or progress.stage_step >= budget.steps:
                start = time.perf_counter()
                score = self.task.score(gold_dev, predict(self.task, self.model, dev, self.config, self.device))
                progress.eval_seconds += time.perf_counter() - start
                self._record_evaluation(sum(losses) / max(1, len(losses)), score[self.task.metric], seconds)
                self._pull_in(budget)
                self._save_checkpoint()
                losses, seconds = [], 0.0

    def _patience_spent(self, budget: Budget) -> bool:
        return self.progress.bad_evals >= self.config.patience and self.progress.stage_step >= budget.min_steps

    def _train_epoch(self, train: Sequence[Example], budget: Budget) -> list[float]:
        self.model.train()
        progress = self.progress
        order = batches(self.task, train, self.config.batch_tokens, self.seed * 1000 + progress.epoch + 1)
        order = order[: budget.steps - progress.stage_step]  # the budget may end inside an epoch
        losses, bar = [], tqdm(order, desc=f"epoch {progress.epoch + 1}", leave=False)
        for batch in bar:
            self._before_step(budget)
            with autocast(self.device, self.config.precision):
                loss = self.model.loss([train[i] for i in batch]) + self.regularizer()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"non-finite loss ({loss.item()}) at epoch {progress.epoch + 1}, step {progress.step}; the last"
                    f" good checkpoint is kept at {self.checkpoint} (try a lower trainer.lr or trainer.grad_clip)"
                )
            self._update(loss)
            progress.step, progress.stage_step = progress.step + 1, progress.stage_step + 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses) / len(losses):.4f}")
        progress.epoch, progress.stage_epoch = progress.epoch + 1, progress.stage_epoch + 1
        return losses

    def _update(self, loss: torch.Tensor) -> None:
        """One optimizer step; with clip_groups=separate the task model's gradient norm and the encoder's are
        each clipped to grad_clip, so a large encoder gradient never shrinks the task model's step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            groups = self.optimizer.param_groups
            task = [p for g in groups if g["name"] == "task" for p in g["params"]]
            encoder = [p for g in groups if g["name"] != "task" for p in g["params"]]
            for parameters in ([task + encoder] if self.config.clip_groups == ClipGroups.joint else [task, encoder]):
                torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip)
        self.optimizer.step()

    def horizon(self, budget: Budget) -> Horizon:
        """What this stage's schedules span now (schedules.py)."""
        return Horizon(budget.steps, self.warmup_base or budget.steps, tuple(map(tuple, self.progress.pulls)))

    def _before_step(self, budget: Budget) -> None:
        """Each group's rate for this update; the strategy may change which encoder parts train."""
        stage, step = self.progress.stage, self.progress.stage_step
        self.strategy.before_step(stage, step)
        horizon = self.horizon(budget)
        task_factor = lr_factor(self.config, horizon, step)
        encoder_factor = self.strategy.encoder_lr_factor(stage, step, horizon)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * (task_factor if group["name"] == "task" else encoder_factor)

    def _pull_in(self, budget: Budget) -> None:
        """After a dev evaluation without a gain (schedule_horizon=patience): the schedules reach their floor on the
        last update before patience would stop the stage if dev never gained again (never later than before)."""
        progress = self.progress
        if self.config.schedule_horizon != ScheduleHorizon.patience or progress.bad_evals == 0:
            return
        every = budget.eval_epochs * budget.steps_per_epoch  # updates between evaluations
        stop = max(progress.stage_step + max(0, self.config.patience - progress.bad_evals) * every,
                   math.ceil(budget.min_steps / every) * every)  # patience acts only after min_steps
        horizon = self.horizon(budget).pulled_in(progress.stage_step, min(stop, budget.steps) - 1)
        progress.pulls = [list(pull) for pull in horizon.pulls]

    def _record_evaluation(self, loss: float, dev_score: float, seconds: float) -> None:
        progress = self.progress
        progress.train_seconds += seconds
        rates = {group["name"]: group["lr"] for group in self.optimizer.param_groups}
        progress.history.append({"stage": self.strategy.stages[progress.stage], "epoch": progress.epoch,
                                 "step": progress.step, "loss": loss, "dev": dev_score, "seconds": seconds,
                                 "lr": rates})
        needed = min_gain(self.config.min_delta, self.task.metric, progress.best_trend, self.dev_examples)
        progress.best_trend, progress.bad_evals = patience_step(progress.best_trend, self._trend(), progress.bad_evals,
                                                                needed)
        if dev_score > progress.best_score:
            progress.best_score, progress.best_step, progress.best_epoch = dev_score, progress.step, progress.epoch
            progress.best_lr = {group["name"]: {"lr": group["lr"], "of_peak": group["lr"] / group["base_lr"]}
                                for group in self.optimizer.param_groups}
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        log.info("%s epoch %d, step %d: loss %.4f, dev %s %.4f (best %.4f at step %d), %.1fs",
                 self.strategy.stages[progress.stage], progress.epoch, progress.step, loss, self.task.metric,
                 dev_score, progress.best_score, progress.best_step, seconds)

    def _trend(self) -> float:
        """The mean of this stage's last `smooth_evals` dev scores (fewer at the stage's start)."""
        stage = self.strategy.stages[self.progress.stage]
        scores = [entry["dev"] for entry in self.progress.history if entry["stage"] == stage]
        recent = scores[-self.config.smooth_evals:]
        return sum(recent) / len(recent)

    def _finish_stage(self) -> None:
        """Record the stage, go on from the best model so far, and checkpoint the switch."""
        progress = self.progress
        stage_scores = [h["dev"] for h in progress.history if h["stage"] == self.strategy.stages[progress.stage]]
        progress.stages.append({"stage": self.strategy.stages[progress.stage], "end_epoch": progress.epoch,
                                "end_step": progress.step, "steps": progress.stage_step,
                                "best_dev": max(stage_scores, default=None)})
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        progress.stage, progress.stage_step, progress.stage_epoch, progress.bad_evals = progress.stage + 1, 0, 0, 0
        progress.pulls = []
        self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        self.progress.wall_seconds, self.progress.cpu_seconds = self.attempt.wall(), self.attempt.cpu()
        state = {
            "progress": vars(self.progress),
            "model": self.model.state_dict(),
            "best_model": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        save_torch(self.checkpoint, state)

    def _resume(self) -> None:
        # Everything is read onto the CPU: the RNG state must stay there, and load_state_dict copies
        # parameters and optimizer state onto the model's device (a CPU run may resume on a GPU and back).
        state = read_checkpoint(self.checkpoint)
        if state is None:
            return
        try:
            self._restore(state)
        except (CheckpointMismatch, KeyError, TypeError, ValueError) as error:
            # Nothing was changed yet (see _restore), so training starts as if there were no file.
            set_aside(self.checkpoint, f"does not fit this run ({error})")
            return
        log.info("resumed from %s after step %d (%s stage)", self.checkpoint, self.progress.step,
                 self.strategy.stages[min(self.progress.stage, len(self.strategy.stages) - 1)])

    def _restore(self, state: dict) -> None:
        """Check every part against this run before changing anything, so a foreign file leaves no trace."""
        progress, cuda_rng = Progress(**state["progress"]), state["cuda_rng"]
        check_fits(state["model"], self.model.state_dict(), "model")
        if state["best_model"] is not None:
            check_fits(state["best_model"], self.model.state_dict(), "best_model")
        check_fits({"rng": state["rng"]}, {"rng": torch.get_rng_state()}, "rng")
        self.optimizer.load_state_dict(state["optimizer"])  # checks its groups before changing anything
        self.progress = progress
        self.attempt.earlier_wall, self.attempt.earlier_cpu = progress.wall_seconds, progress.cpu_seconds
        self.model.load_state_dict(state["model"])
        self.best_state = state["best_model"]
        torch.set_rng_state(state["rng"])
        if cuda_rng is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_rng)
