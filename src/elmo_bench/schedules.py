"""Learning-rate schedules as a factor of the base rate at update t of a stage.

Used for the task model (trainer.schedule) and, separately, for a fine-tuned encoder (strategy.schedule), so
each side of the model has its own schedule and the task model's is the same in every strategy. Both decay over
one `Horizon`: the stage's planned updates, unless dev stopped improving and pulled the end in to where patience
will stop the run (ULMFiT decays to the floor by the last update; a span the run never reaches never decays).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Schedule


@dataclass(frozen=True)
class Horizon:
    """When a stage's schedules warm up and decay.

    The decay's progress q goes from 0 at the end of the warm-up to 1 at update `steps`, linearly (the last update
    of the stage, `steps - 1`, is one short of the floor, as it always was). Each pull
    (update u, last update e) bends it: from u on, q goes linearly from where it stood at u to 1 at update e. A pull
    only ever ends the decay sooner, so the rate never rises again after the warm-up.
    """

    steps: int  # the stage's planned updates
    warmup_base: int  # the updates a schedule's warmup_fraction is a share of
    pulls: tuple[tuple[int, int], ...] = ()  # (update, last update of the decay), in the order they came

    @property
    def end(self) -> int:
        """The update at which the decay reaches its floor."""
        return self.pulls[-1][1] if self.pulls else self.steps

    def warmup(self, fraction: float) -> int:
        return max(1, int(fraction * self.warmup_base))

    def pulled_in(self, step: int, last: int) -> Horizon:
        """The horizon with the decay ending at update `last` from update `step` on, if that is sooner."""
        return self if last >= self.end else Horizon(self.steps, self.warmup_base, (*self.pulls, (step, last)))

    def progress(self, step: int, warmup: int) -> float:
        """q at update `step` (0-based) for a schedule that warms up over `warmup` updates."""
        if not self.pulls:
            return min(1.0, max(0.0, (step - warmup) / max(1, self.steps - warmup)))
        earlier = Horizon(self.steps, self.warmup_base, self.pulls[:-1])
        start, last = self.pulls[-1]
        if step < start:
            return earlier.progress(step, warmup)
        if step >= last:
            return 1.0
        # From where q stood to 1, linearly: steeper than the earlier decay (whose q is convex in the step), so
        # the rate only falls faster.
        before = earlier.progress(start, warmup)
        return before + (1 - before) * (step - start) / (last - start)


def lr_factor(config: Any, horizon: Horizon, step: int) -> float:
    """The factor at update `step` (0-based); `config` has schedule, warmup_fraction and stlr_ratio.

    linear: (t + 1) / warm-up, then 1 - q down to 0. slanted_triangular (Howard & Ruder 2018): p rises linearly to
    1 over the warm-up, then falls as 1 - q; the factor (1 + p (ratio - 1)) / ratio goes from 1/ratio to 1 and back.
    During the warm-up a pull that already decays wins (the smaller of the two), so the rate never jumps up."""
    if config.schedule == Schedule.constant:
        return 1.0
    warmup = horizon.warmup(config.warmup_fraction)
    remaining = 1.0 - horizon.progress(step, warmup)
    if config.schedule == Schedule.linear:
        return min((step + 1) / warmup, remaining)
    p = min(step / warmup, remaining)
    return (1 + p * (config.stlr_ratio - 1)) / config.stlr_ratio
