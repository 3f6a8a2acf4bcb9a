"""The decision guide: per task family, which strategy to pick at which training size, and at what cost.

It says only what the tests support: a strategy is named better or worse than the baseline only where its
Holm-adjusted verdict says so. Elsewhere the row is *not resolved*, and the guide says which differences the
design could not have detected (the minimum detectable effect at 80% power), then names the cheapest strategy
not shown worse as a choice by cost, never as a shown tie; run times from hosts that were not timed against each
other are said to be so. Crossover sizes are the observed Δ's sign changes, labelled descriptive: no test.
Published figures play no part.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .bootstrap import Crossover
from .formats import DASH, format_crossover, format_interval
from .table import Comparison, Row, report_baseline

# Test points (the metric ×100) by which the best strategy must beat the task's trivial baseline (result.json's
# `floor`) for a row to count as learned; below that the row is "neither learns", whatever the intervals say.
FLOOR_MARGIN = 5.0


def decision_guide(rows: list[Row], crossovers: dict[tuple, Crossover]) -> list[str]:
    lines = ["## Decision guide", "",
             "Generated from the tests above and nothing else (the published figures play no part). A strategy "
             f"is named better or worse than {report_baseline(rows)} only where its Holm-adjusted p < 0.05. Elsewhere the row is "
             "not resolved: differences below its minimum detectable effect (80% power at Holm's first-step level) "
             "are not excluded, and the cheapest strategy not shown worse is named as a choice by cost alone.",
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
            lines += [f"  - {strategy}'s observed Δ stays above 0 from (descriptive, not a test): "
                      f"{format_crossover(found)}" for (*key, strategy), found in crossovers.items()
                      if tuple(key) == curve]
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
    if row.baseline not in row.sides:
        return f"no {row.baseline} run, nothing to compare."
    if not row.comparisons:
        return f"only {row.baseline} ran, nothing to compare."
    if not compared:
        return "no comparison with an interval (see the section on comparisons without one)."
    better = sorted((s for s, c in compared.items() if c.winner == s), key=lambda s: -compared[s].delta)
    worse = [s for s, c in compared.items() if c.winner == row.baseline]
    candidates = [row.baseline] + [s for s in compared if s not in worse]
    # Seconds on the baseline's footing: a strategy whose runs met a slower host is not taken for a dearer one.
    cheapest = min(candidates, key=lambda strategy: row.sides[strategy].run_seconds
                   / (1.0 if strategy == row.baseline else compared[strategy].host_factor))
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
    worse_note = "".join(f" {s} is worse: {_tested(compared[s])}." for s in found.worse)
    if found.better:
        best = compared[found.better[0]]
        return (f"**{found.better[0]}** is better than {row.baseline} by {_tested(best)}, at {_times(best)} its run "
                f"time.{worse_note}")
    unresolved = "; ".join(f"{s} {format_interval(compared[s].main)}{_undetected(compared[s])}"
                           for s in compared if s not in found.worse)
    shown = (f"not resolved, no strategy is shown better than {row.baseline}"
             + (f" ({unresolved})" if unresolved else ""))
    cheapest = found.cheapest
    if cheapest != row.baseline:
        cheapest += f" ({_times(compared[cheapest])})"
    return f"{shown}. Cheapest of those not shown worse: {cheapest}, a choice by cost, not a shown tie.{worse_note}"


def _tested(comparison: Comparison) -> str:
    return f"{format_interval(comparison.main)} (Holm p {comparison.p_adjusted:.3g})"


def _undetected(comparison: Comparison) -> str:
    """What a not-resolved comparison could not have found."""
    if comparison.mde is None:
        return ""
    return (f", differences below {comparison.mde:.1f} points are not excluded ({comparison.mde_unadjusted:.1f} "
            "before Holm)")


def headline(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """The answer in one table: a line per task and encoder, a column per training size. Each cell names the
    strategy shown better (bold, with its Δ [95% CI] and run-time ratio) or, where none is, says so and names the
    cheapest not shown worse, with the strongest other strategy's Δ and what the row could not detect; then any
    strategy shown worse."""
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
        return f"{row.baseline} only" if list(row.sides) == [row.baseline] else DASH
    compared = found.compared
    if found.better:
        cell = _evidence(f"**{found.better[0]}**", compared[found.better[0]])
    elif found.cheapest != row.baseline:
        chosen = compared[found.cheapest]
        cell = f"{_evidence(found.cheapest, chosen)} (cheapest); none shown better{_undetected_short(chosen)}"
    else:
        others = [s for s in compared if s not in found.worse]
        strongest = max(others, key=lambda s: compared[s].delta, default=None)
        cell = f"{row.baseline} (cheapest); none shown better" + ("" if strongest is None else (
            f" (best: {_evidence(strongest, compared[strongest])}{_undetected_short(compared[strongest])})"))
    return cell + "".join(f"; {s} worse: {format_interval(compared[s].main)}" for s in found.worse)


def _evidence(name: str, comparison: Comparison) -> str:
    return f"{name} {format_interval(comparison.main)}, {_times(comparison)}"


def _undetected_short(comparison: Comparison) -> str:
    return "" if comparison.mde is None else f"; below {comparison.mde:.1f} not excluded"


def _times(comparison: Comparison) -> str:
    """The run-time ratio, saying where it was levelled for the hosts or where the hosts were not timed."""
    if comparison.cost_ratio is None:
        return DASH
    if comparison.host_adjusted_ratio is not None:
        return f"{comparison.cost_ratio:.1f}× host-adjusted"
    return f"{comparison.cost_ratio:.1f}×" + ("" if comparison.hosts_timed else " (hosts not timed)")
