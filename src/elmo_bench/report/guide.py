"""The decision guide: per task family, which strategy to pick at which training size, and at what cost.

It says only what the intervals support: a strategy is recommended over the baseline only where its verdict
(Holm-adjusted) names it better; otherwise the cheapest strategy not shown worse is named, with how large a
difference the interval still allows. Published figures play no part.
"""
from __future__ import annotations

from collections import defaultdict

from .bootstrap import Crossover
from .formats import DASH, format_crossover, format_interval
from .table import BASELINE, Comparison, Row


def decision_guide(rows: list[Row], crossovers: dict[tuple, Crossover]) -> list[str]:
    lines = ["## Decision guide", "",
             "Generated from the intervals above and nothing else (the published figures play no part). A strategy "
             f"is recommended over {BASELINE} only where its Holm-adjusted interval clears 0; elsewhere the "
             "cheapest strategy not shown worse is named, with the largest difference its interval still allows.",
             ""]
    by_family: dict[str, dict[tuple, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_family[row.family][row.curve].append(row)
    for family, curves in sorted(by_family.items()):
        lines += [f"### {family}", ""]
        for curve, curve_rows in sorted(curves.items()):
            task, dataset, metric, model = curve
            lines.append(f"- **{task}** ({dataset}, {metric}, encoder {model})")
            lines += [f"  - n={row.train_size:,d}: {_advice(row)}" for row in curve_rows]
            lines += [f"  - {strategy} overtakes {BASELINE} for good from: {format_crossover(found)}"
                      for (*key, strategy), found in crossovers.items() if tuple(key) == curve]
        lines.append("")
    return lines


def _advice(row: Row) -> str:
    compared = {strategy: comparison for strategy, comparison in row.comparisons.items() if comparison.main}
    if BASELINE not in row.sides:
        return f"no {BASELINE} run, nothing to compare."
    if not row.comparisons:
        return f"only {BASELINE} ran, nothing to compare."
    if not compared:
        return "no comparison with an interval (see the section on comparisons without one)."
    better = sorted((s for s, c in compared.items() if c.winner == s), key=lambda s: -compared[s].delta)
    worse = [s for s, c in compared.items() if c.winner == BASELINE]
    worse_note = "".join(f" {s} is worse: {format_interval(compared[s].main)}{_borderline(compared[s])}."
                         for s in worse)
    if better:
        best = compared[better[0]]
        return (f"**{better[0]}** is better than {BASELINE} by {format_interval(best.main)}{_borderline(best)}, at "
                f"{_times(best)} its run time.{worse_note}")
    candidates = [BASELINE] + [s for s in compared if s not in worse]
    cheapest = min(candidates, key=lambda strategy: row.sides[strategy].run_seconds)
    unresolved = ", ".join(f"{s} {format_interval(compared[s].main)}" for s in compared if s not in worse)
    shown = f"no strategy is shown better than {BASELINE} ({unresolved})" if unresolved else (
        f"no strategy is shown better than {BASELINE}")
    return f"{shown}. Pick **{cheapest}**, the cheapest of those not shown worse.{worse_note}"


def _borderline(comparison: Comparison) -> str:
    return " (borderline: the resampling alone could flip it)" if comparison.borderline else ""


def _times(comparison: Comparison) -> str:
    return DASH if comparison.seconds_ratio is None else f"{comparison.seconds_ratio:.1f}×"
