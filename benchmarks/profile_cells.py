"""Where one update's time goes, per task family and strategy (issue 55).

    python benchmarks/profile_cells.py                          # NER, POS, SST-5, STS-B on cpu-small; SQuAD on fixture
    python benchmarks/profile_cells.py --cells ner:feature_ensemble:1000 --updates 30 --json out/profile.json
    python benchmarks/profile_cells.py --precision bf16         # the same under CPU bf16 autocast

Every time is CPU seconds of the process (`time.process_time`; one thread), so neighbours on a shared machine
do not count. Each cell is built as the runner builds it (data, encoder, features from the cache), then trained for `--updates`
updates by the Trainer itself (after `--warmup` untimed ones), with timers around its parts:

| part | what |
|---|---|
| batching | bucketing the epoch's batches and gathering the batch's examples (per epoch, spread over its updates) |
| features | feature_ensemble: reading the cached layers of the batch's texts (gather, dtype conversion, mask) |
| encoder fwd / bwd | finetune: the live biLM's forward; its backward is what remains of `backward()` once every layer's gradient has reached the biLM's outputs |
| head fwd / bwd | the task model (scalar mix, BiLSTM, CRF, attention, pooling, loss) forward; backward up to the biLM's outputs |
| crf fwd / bwd | within head: the CRF's log-likelihood (forward algorithm) and its backward (until the emissions' gradient) |
| optimizer | gradient clipping and the optimizer's step |
| other | the rest of the update: zero_grad, loss.item(), the regulariser, the progress bar |

finetune runs with `strategy.unfreeze_steps=0` (every biLM part trains from the first update: a study cell's
state after its first 100 updates) unless `--gradual`. The data are `$ELMO_BENCH_DATA` as bench_cells.py's `bench_data` copies them (STS-B's control character
replaced). Dev scoring (`predict` on dev, at most `--dev-examples` examples, scaled to the whole dev set) and process
start-up (a fresh interpreter importing elmo_bench's runner, and building the cell) are reported beside.
FLOPs per update come from `torch.utils.flop_counter.FlopCounterMode` over one update (matrix products only, as
that counter counts; oneDNN off while counting, since its fused LSTM has no formula: the FLOPs the LSTMs do,
padding inside a batch included where the code runs it); "% of mm peak" divides the update's achieved rate by this machine's fp32 `torch.mm` rate
(2048², best of 5, the same thread count), measured at the start and the end of the run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

DEFAULT_CELLS = [f"{task}:{strategy}:{size}" for task in ("ner", "pos", "sst5", "stsb", "squad")
                 for strategy in ("feature_ensemble", "finetune") for size in (100, 1000)]
FIXTURE_TASKS = ("squad",)  # cpu-small's SQuAD dev/test features and scoring take minutes per cell on 2 cores
PARTS = ("batching", "features", "encoder_fwd", "head_fwd", "crf_fwd", "encoder_bwd", "head_bwd", "crf_bwd",
         "optimizer", "other")


def now() -> float:
    """CPU seconds of this process (one thread: the time the core worked for it), not the wall clock: on a shared
    machine a neighbour that takes the core would otherwise count as this code's time."""
    return time.process_time()


def mm_peak(size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of one `torch.mm` of two size² matrices, best of `repeats`, with the current threads."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work) -> float:
    start = now()
    work()
    return now() - start


@dataclass
class Clock:
    """Seconds per part, summed over the timed updates."""

    seconds: dict = field(default_factory=lambda: defaultdict(float))
    active: bool = False
    backward_start: float = 0.0
    marks: dict = field(default_factory=dict)

    def add(self, part: str, seconds: float) -> None:
        if self.active:
            self.seconds[part] += seconds

    def mark(self, name: str) -> None:
        """The latest time a gradient reached `name` during this backward pass."""
        self.marks[name] = now()


class TimedLayers(torch.nn.Module):
    """Wraps the embedder's layer source: times it, and marks when the gradients reach its outputs."""

    def __init__(self, source, clock: Clock, part: str):
        super().__init__()
        self.source, self.clock, self.part = source, clock, part

    def forward(self, texts):
        start = now()
        layers, mask = self.source(texts)
        self.clock.add(self.part, now() - start)
        for layer in layers:
            if layer.requires_grad:
                layer.register_hook(lambda grad: self.clock.mark("layers"))
        return layers, mask


def instrument(cell, trainer, clock: Clock) -> None:
    """Timers around the trainer's parts (instance attributes only: the modules' code is untouched)."""
    from elmo_bench import training

    embedder = cell.embedder
    live = isinstance(embedder.layers, torch.nn.Module)
    embedder.layers = TimedLayers(embedder.layers, clock, "encoder_fwd" if live else "features")
    crf = getattr(cell.model, "crf", None)
    if crf is not None:
        likelihood = crf.log_likelihood

        def timed_likelihood(emissions, tags, mask):
            start = now()
            out = likelihood(emissions, tags, mask)
            clock.add("crf_fwd", now() - start)
            if emissions.requires_grad:
                emissions.register_hook(lambda grad: clock.mark("emissions"))
            return out
        crf.log_likelihood = timed_likelihood
    step = trainer.optimizer.step

    def timed_step(*args, **kwargs):
        start = now()
        out = step(*args, **kwargs)
        clock.add("optimizer", now() - start)
        return out
    trainer.optimizer.step = timed_step
    clip = torch.nn.utils.clip_grad_norm_

    def timed_clip(*args, **kwargs):
        start = now()
        out = clip(*args, **kwargs)
        clock.add("optimizer", now() - start)
        return out
    torch.nn.utils.clip_grad_norm_ = timed_clip
    batches = training.batches

    def timed_batches(*args, **kwargs):
        start = now()
        out = batches(*args, **kwargs)
        clock.add("batching", now() - start)
        return out
    training.batches = timed_batches
    loss = cell.model.loss

    def timed_loss(examples):
        start = now()
        out = loss(examples)
        clock.add("forward", now() - start)
        return out
    cell.model.loss = timed_loss
    _time_backward(clock)


def _time_backward(clock: Clock) -> None:
    backward = torch.Tensor.backward

    def timed_backward(self, *args, **kwargs):
        clock.marks = {}
        start = now()
        out = backward(self, *args, **kwargs)
        end = now()
        reached = clock.marks.get("layers", end)
        clock.add("head_bwd", reached - start)
        clock.add("encoder_bwd", end - reached)
        if "emissions" in clock.marks:
            clock.add("crf_bwd", clock.marks["emissions"] - start)
        return out
    torch.Tensor.backward = timed_backward


def update_flops(cell, trainer, batches_counted: int = 3) -> tuple[float, float]:
    """(all, encoder) FLOPs of one update (forward and backward), the mean over the first batches of an epoch."""
    from torch.utils.flop_counter import FlopCounterMode

    from elmo_bench.training import autocast, batches

    order = batches(cell.task, cell.train, trainer.config.batch_tokens, 0)[:batches_counted]
    counter = FlopCounterMode(display=False)
    # oneDNN's fused LSTM kernel has no FLOP formula: counted on the native kernel, which runs as matrix products
    with counter, torch.backends.mkldnn.flags(enabled=False):
        for batch in order:
            with autocast(trainer.device, trainer.config.precision):
                loss = cell.model.loss([cell.train[i] for i in batch])
            loss.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    encoder = sum(counter.get_flop_counts().get("Embedder.layers", {}).values())  # the live encoder (finetune)
    return counter.get_total_flops() / len(order), encoder / len(order)


def config_for(cell_spec: str, args: argparse.Namespace):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from runs import make_config

    task, strategy, size = cell_spec.split(":")
    model = "model=fixture" if task in FIXTURE_TASKS and args.model is None else f"model={args.model or 'cpu-small'}"
    overrides = [f"task={task}", f"strategy={strategy}", model, f"data.train_size={size}", "data.use_hub=false",
                 f"trainer.precision={args.precision}", f"trainer.threads={args.threads}",
                 f"output_dir={args.scratch}", f"data.root={args.data_root}", *args.override]
    if strategy == "finetune" and not args.gradual:  # the steady state after gradual unfreezing: every part trains
        overrides.append("strategy.unfreeze_steps=0")
    return make_config(overrides)


def profile_cell(cell_spec: str, args: argparse.Namespace) -> dict:
    from elmo_bench.cell.runner import build, resolve_device
    from elmo_bench.schedules import lr_multiplier
    from elmo_bench.training import Budget, Trainer, batches, predict

    config = config_for(cell_spec, args)
    device = resolve_device(config.trainer.device)
    start = now()
    cell = build(config, device)
    build_seconds = now() - start
    checkpoint = Path(args.scratch) / "profile_checkpoint.pt"
    trainer = Trainer(cell.task, cell.model, cell.strategy, cell.groups, config.trainer, device, config.seed,
                      checkpoint, regularizer=lambda: config.inputs.mix_l2 * cell.embedder.mix_penalty())
    flops, encoder_flops = update_flops(cell, trainer)
    if args.flops_only:
        return {"cell": cell_spec, "gflop_per_update": flops / 1e9, "encoder_gflop_per_update": encoder_flops / 1e9}
    clock = Clock()
    instrument(cell, trainer, clock)
    per_epoch = len(batches(cell.task, cell.train, config.trainer.batch_tokens, 0))
    total = args.warmup + args.updates
    trainer.task_schedule = lr_multiplier(config.trainer, total)
    cell.strategy.start_stage(0)
    budget = Budget(per_epoch, total, 0, 1)
    while trainer.progress.stage_step < args.warmup:
        trainer._train_epoch(cell.train, Budget(per_epoch, args.warmup, 0, 1))
    clock.active, done, start = True, trainer.progress.stage_step, now()
    padded, real = [], []
    while trainer.progress.stage_step < total:
        trainer._train_epoch(cell.train, budget)
    update_seconds = (now() - start) / (trainer.progress.stage_step - done)
    clock.active = False
    for batch in batches(cell.task, cell.train, config.trainer.batch_tokens, 1):
        lengths = [cell.task.length(cell.train[i]) for i in batch]
        padded.append(len(batch) * max(lengths))
        real.append(sum(lengths))
    dev = cell.splits.dev[: args.dev_examples]
    start = now()
    predicted = predict(cell.task, cell.model, dev, config.trainer, device)
    cell.task.score([e.label for e in dev], predicted)
    dev_seconds = (now() - start) * len(cell.splits.dev) / len(dev)
    return summarise(cell_spec, config, clock, update_seconds, trainer.progress.stage_step - done, flops,
                     encoder_flops, dev_seconds, build_seconds, per_epoch, padded, real, len(cell.splits.dev))


def summarise(cell_spec, config, clock, update_seconds, updates, flops, encoder_flops, dev_seconds, build_seconds,
              per_epoch, padded, real, dev_size) -> dict:
    parts = {part: clock.seconds.get(part, 0.0) / updates for part in PARTS}
    head_fwd = clock.seconds["forward"] / updates - parts["features"] - parts["encoder_fwd"]
    parts["head_fwd"] = head_fwd
    named = sum(v for k, v in parts.items() if not k.startswith("crf") and k != "other")
    parts["other"] = max(0.0, update_seconds - named)
    return {"cell": cell_spec, "model": config.model.label, "precision": str(config.trainer.precision),
            "threads": torch.get_num_threads(), "seconds_per_update": update_seconds, "parts": parts,
            "gflop_per_update": flops / 1e9, "encoder_gflop_per_update": encoder_flops / 1e9,
            "updates_per_epoch": per_epoch, "padded_tokens_per_batch": statistics.mean(padded),
            "real_tokens_per_batch": statistics.mean(real), "dev_examples": dev_size,
            "dev_eval_seconds": dev_seconds, "build_seconds": build_seconds}


def startup_seconds() -> float:
    """CPU seconds of a fresh interpreter importing the runner (what every cell of a sweep pays when run as its own
    process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import elmo_bench.cli, elmo_bench.cell.runner"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def table(rows: list[dict], peak: float) -> str:
    head = ("| cell | model | s/update | tokens (real/padded) | " + " | ".join(PARTS)
            + " | GFLOP/update | % of mm peak | dev eval s | build s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        parts = row["parts"]
        shares = " | ".join(f"{parts[p]:.3f} ({100 * parts[p] / row['seconds_per_update']:.0f}%)" for p in PARTS)
        rate = row["gflop_per_update"] / row["seconds_per_update"]
        lines.append(f"| {row['cell']} | {row['model']} | {row['seconds_per_update']:.3f} | "
                     f"{row['real_tokens_per_batch']:.0f}/{row['padded_tokens_per_batch']:.0f} | {shares} | "
                     f"{row['gflop_per_update']:.2f} | {100 * rate / peak:.0f}% | {row['dev_eval_seconds']:.1f} | "
                     f"{row['build_seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default=",".join(DEFAULT_CELLS), help="task:strategy:size, comma-separated")
    parser.add_argument("--model", default=None, help="every cell's model (default cpu-small, fixture for SQuAD)")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dev-examples", type=int, default=400, help="dev examples scored (time scaled to all)")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gradual", action="store_true",
                        help="finetune as configured (gradual unfreezing: the first 50 updates train the top part only)")
    parser.add_argument("--flops-only", action="store_true", help="count each cell's FLOPs per update, time nothing")
    parser.add_argument("--scratch", default="outputs/profile_cells")
    parser.add_argument("--json", default=None)
    parser.add_argument("override", nargs="*", help="extra Hydra overrides for every cell")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from bench_cells import bench_data

    shared = Path(os.environ.get("ELMO_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    args.data_root = bench_data(shared, Path(args.scratch).resolve() / "data", None)
    if args.flops_only:
        rows = [profile_cell(spec, args) for spec in args.cells.split(",")]
        print(json.dumps(rows, indent=1))
        return
    peak_start = mm_peak()
    startup = startup_seconds()
    rows = []
    for spec in args.cells.split(","):
        rows.append(profile_cell(spec, args))
        print(json.dumps(rows[-1]), flush=True)
    peak = max(peak_start, mm_peak())
    print(f"fp32 mm peak: {peak_start:.1f} GFLOP/s at the start, {peak:.1f} best; process start-up {startup:.1f} s;"
          f" torch {torch.__version__}, {args.threads} thread(s), precision {args.precision}\n")
    print(table(rows, peak))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"mm_peak_gflops": peak, "startup_seconds": startup, "cells": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
