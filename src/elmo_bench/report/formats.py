"""How intervals and crossover sizes are written, the same in the table, the guide and the CSV."""
from __future__ import annotations

import math

from .bootstrap import CONFIDENCE, Crossover, Interval

DASH = "—"
LEVEL = f"{round(100 * CONFIDENCE)}%"


def format_interval(interval: Interval) -> str:
    return f"{interval.delta:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"


def format_size(value: float, sizes: tuple[int, ...]) -> str:
    """A crossover size: 0 and infinity are the ends of the measured range."""
    if value == 0:
        return f"≤ {sizes[0]:,d}"
    if math.isinf(value):
        return f"> {sizes[-1]:,d}"
    return f"{value:,.0f}"


def format_crossover(found: Crossover) -> str:
    """The estimate and its interval, e.g. "≈ 1,300 [≤ 200, > 8,000]"."""
    if found.estimate == 0:
        estimate = f"at or below {found.sizes[0]:,d} (ahead at every size)"
    elif math.isinf(found.estimate):
        estimate = f"none in the measured range (not ahead at {found.sizes[-1]:,d})"
    else:
        estimate = f"≈ {found.estimate:,.0f}"
    interval = f"[{format_size(found.low, found.sizes)}, {format_size(found.high, found.sizes)}]"
    if found.low == 0 and math.isinf(found.high):
        return f"{estimate}, but {interval}: the measured sizes do not locate it"
    return f"{estimate} {interval}"
