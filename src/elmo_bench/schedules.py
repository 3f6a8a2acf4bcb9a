"""Learning-rate schedules as a factor of the base rate at update t of a budget of `total` updates.

Used for the task model (trainer.schedule) and, separately, for a fine-tuned biLM (strategy.schedule), so
each side of the model has its own schedule and the task model's is the same in every strategy.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config import Schedule


def lr_multiplier(config: Any, total_steps: int) -> Callable[[int], float]:
    """The factor at step t (0-based); `config` has schedule, warmup_fraction and stlr_ratio."""
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
