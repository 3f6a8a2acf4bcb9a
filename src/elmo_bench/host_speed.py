"""How fast the machine runs a fixed piece of biLM-like work, timed inside each run.

A run's seconds say as much about the host as about the strategy: the first 148 updates of one cell took 2.9x
longer on a slower host of the same type on a later day, though its large matrix multiplies ran as fast. Each
run times this fixed workload at its start and end, with its own device and threads, so the report can tell
when two strategies' runs met hosts of different speed and put their cost ratio on an equal footing. On a CPU the
workload's time is this process's CPU time, not the wall clock: a neighbour that takes the core now and then
delays a run without making the host slower, and on 2 cores shared by 3 busy processes the wall-clock timing
of the same workload moved 2.0x between repeats against 1.5x for CPU time (ten timings, best of 5 each). A
neighbour that thrashes the shared caches does slow the work, and shows in both. On a GPU it is the wall clock
after synchronising.

The workload is one forward and backward pass of a projected LSTM shaped like the shipped cpu-small biLM's
layers (512 cells, 128-dimensional projection) over a batch of 32 sentences of 25 tokens: small matrix
multiplies and many element-wise steps, the operations a tagger's run spends its time on. The best of a few
repeats is kept, after a warm-up pass. It draws its weights under a forked random state, so a run's own
random draws (and therefore its scores) are the same with or without it.
"""
from __future__ import annotations

import time
import warnings

import torch

WORKLOAD = "lstm512p128 b32x25 fwd+bwd, best of 5, process CPU time on cpu"
REPEATS = 5


def _clock(device: torch.device) -> float:
    """CPU seconds of this process on a CPU; on a GPU, the wall clock once its queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter()
    return time.process_time()


def reference_seconds(device: torch.device) -> float:
    """Seconds the reference workload takes on `device` with the current thread count (best of REPEATS)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(128, 512, proj_size=128, batch_first=True).to(device)
        inputs = torch.randn(32, 25, 128).to(device)
    best = float("inf")
    for repeat in range(REPEATS + 1):  # the first pass warms up allocators and kernels, and is not kept
        start = _clock(device)
        lstm.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN": known, harmless
            warnings.simplefilter("ignore", UserWarning)
            outputs, _ = lstm(inputs)
        outputs.square().sum().backward()
        if repeat:
            best = min(best, _clock(device) - start)
    return best


def record(device: torch.device, start_seconds: float) -> dict:
    """The host_speed entry of result.json: the workload, its device and threads, and its time at the run's
    start (`start_seconds`, measured then) and now, at its end."""
    return {"workload": WORKLOAD, "device": device.type, "threads": torch.get_num_threads(),
            "seconds": [round(start_seconds, 5), round(reference_seconds(device), 5)]}
