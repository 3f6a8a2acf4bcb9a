"""The decision guide: per task family, which strategy to pick at which training size, and at what cost.

It says only what the intervals support: a strategy is recommended over the baseline only where its verdict
(Holm-adjusted) names it better; otherwise the cheapest strategy not shown worse is named, with how large a
difference the interval still allows. Published figures play no part.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .bootstrap import Crossover
from .formats import DASH, format_crossover, format_interval
from .table import BASELINE, Comparison, Row

# Test points (the metric ×100) by which the best strategy must beat the task's trivial baseline (result.json's
# `floor`) for a row to count as learned; below that the row is "neither learns", whatever the intervals say.
FLOOR_MARGIN = 5.0


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


@dataclass(frozen=True)
class Verdicts:
    """What a row's intervals say: the strategies shown better than the baseline (largest Δ first), those shown
    worse, and the cheapest of the strategies not shown worse (the baseline included)."""

    compared: dict[str, Comparison]
    better: list[str]
    worse: list[str]
    cheapest: str


def verdicts(row: Row) -> Verdicts | str:
    """The row's verdicts, or why it has none."""
    compared = {strategy: comparison for strategy, comparison in row.comparisons.items() if comparison.main}
    if BASELINE not in row.sides:
        return f"no {BASELINE} run, nothing to compare."
    if not row.comparisons:
        return f"only {BASELINE} ran, nothing to compare."
    if not compared:
        return "no comparison with an interval (see the section on comparisons without one)."
    better = sorted((s for s, c in compared.items() if c.winner == s), key=lambda s: -compared[s].delta)
    worse = [s for s, c in compared.items() if c.winner == BASELINE]
    candidates = [BASELINE] + [s for s in compared if s not in worse]
    # Seconds on the baseline's footing: a strategy whose runs met a slower host is not taken for a dearer one.
    cheapest = min(candidates, key=lambda strategy: row.sides[strategy].run_seconds
                   / (1.0 if strategy == BASELINE else compared[strategy].host_factor))
    return Verdicts(compared, better, worse, cheapest)


def neither_learns(row: Row) -> str | None:
    """Why no strategy of the row learned, where the best of them is within FLOOR_MARGIN of the trivial baseline."""
    floors = [side.floor for side in row.sides.values() if side.floor is not None]
    best = max(row.sides, key=lambda strategy: row.sides[strategy].test_mean)
    if not floors or row.sides[best].test_mean >= max(floors) + FLOOR_MARGIN:
        return None
    return (f"neither learns: the best, {best} ({row.sides[best].test_mean:.1f}), is within {FLOOR_MARGIN:g} points"
            f" of the trivial baseline ({max(floors):.1f})")


def _advice(row: Row) -> str:
    if (floor_note := neither_learns(row)) is not None:
        return f"**{floor_note}**."
    found = verdicts(row)
    if isinstance(found, str):
        return found
    compared = found.compared
    worse_note = "".join(f" {s} is worse: {format_interval(compared[s].main)}{_borderline(compared[s])}."
                         for s in found.worse)
    if found.better:
        best = compared[found.better[0]]
        return (f"**{found.better[0]}** is better than {BASELINE} by {format_interval(best.main)}{_borderline(best)}, "
                f"at {_times(best)} its run time.{worse_note}")
    unresolved = ", ".join(f"{s} {format_interval(compared[s].main)}" for s in compared if s not in found.worse)
    shown = f"no strategy is shown better than {BASELINE} ({unresolved})" if unresolved else (
        f"no strategy is shown better than {BASELINE}")
    return f"{shown}. Pick **{found.cheapest}**, the cheapest of those not shown worse.{worse_note}"


def headline(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """The answer in one table: a line per task and encoder, a column per training size. Each cell names the
    strategy to pick (bold where an interval shows it better than the baseline, else the cheapest not shown worse)
    and the evidence: the winner's Δ [95% CI] and run-time ratio, or where none won, the strongest other
    strategy's, then any strategy shown worse."""
    sizes = sorted({row.train_size for row in rows})
    by_curve: dict[tuple, dict[int, Row]] = defaultdict(dict)
    for row in rows:
        by_curve[row.curve][row.train_size] = row
    header = ["task", "metric", "encoder", *(f"n={size:,d}" for size in sizes)]
    lines = [[task, metric, model, *(_headline_cell(by_size.get(size)) for size in sizes)]
             for (task, _, metric, model), by_size in sorted(by_curve.items())]
    return header, lines


def _headline_cell(row: Row | None) -> str:
    if row is None:
        return DASH
    if neither_learns(row) is not None:
        return "neither learns"
    found = verdicts(row)
    if isinstance(found, str):
        return f"{BASELINE} only" if list(row.sides) == [BASELINE] else DASH
    compared = found.compared
    if found.better:
        cell = _evidence(f"**{found.better[0]}**", compared[found.better[0]])
    elif found.cheapest != BASELINE:
        cell = _evidence(found.cheapest, compared[found.cheapest]) + "; none better"
    else:
        others = [s for s in compared if s not in found.worse]
        strongest = max(others, key=lambda s: compared[s].delta, default=None)
        cell = f"{BASELINE}; none better" + ("" if strongest is None else
                                             f" (best: {_evidence(strongest, compared[strongest])})")
    return cell + "".join(f"; {s} worse: {format_interval(compared[s].main)}" for s in found.worse)


def _evidence(name: str, comparison: Comparison) -> str:
    return f"{name} {format_interval(comparison.main)}, {_times(comparison)}"


def _borderline(comparison: Comparison) -> str:
    return " (borderline: the resampling alone could flip it)" if comparison.borderline else ""


def _times(comparison: Comparison) -> str:
    if comparison.cost_ratio is None:
        return DASH
    return f"{comparison.cost_ratio:.1f}×" + (" host-adjusted" if comparison.host_adjusted_ratio is not None else "")
