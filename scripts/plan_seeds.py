"""Seeds as a planned axis: the sweep commands that add seeds where a comparison is not resolved and could not
have been.

    python scripts/plan_seeds.py results/study_converge --target 1.0 --cap 10 --experiment study_converge

Reads <study>/report/comparison.csv (elmo-bench-report writes it). A comparison needs seeds when its 95% interval
straddles 0 and its minimum detectable effect (80% power at Holm's first-step level, as the report states it)
is above --target points. For each such comparison the number of seeds K' is the smallest, up to --cap, whose
MDE at the same variances reaches the target: SE'² = (seed variance)·K/K' + shared test variance, df K' − 1 (the
report's df can be lower where the shared test part dominates, so K' is then a floor). One command per task and
size lists seeds 1..K' for the baseline and the strategies that need them: cells already done are skipped by the
sweep, so the command is resumable and can be rerun as it stands.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from elmo_bench.report.inference import minimum_detectable_effect
from elmo_bench.report.table import SIGNIFICANCE_LEVEL


@dataclass(frozen=True)
class Need:
    task: str
    train_size: int
    strategy: str
    baseline: str
    seeds: int  # now
    mde: float  # now
    planned: int  # K'
    planned_mde: float


def planned_seeds(line: dict, level: float, target: float, cap: int) -> tuple[int, float]:
    """The smallest K' in (K, cap] whose MDE reaches `target`, or cap, and that MDE."""
    seeds = int(line["pairs"].split(";")[0])
    seed_part, shared = float(line["seed_variance"]) * seeds, float(line["shared_test_variance"])
    mde = math.inf
    for planned in range(seeds + 1, cap + 1):
        mde = minimum_detectable_effect(math.sqrt(seed_part / planned + shared), planned - 1, level)
        if mde <= target:
            return planned, mde
    return cap, mde


def needs(comparison_csv: Path, target: float, cap: int) -> list[Need]:
    lines = list(csv.DictReader(comparison_csv.open(encoding="utf-8")))
    tested = [line for line in lines if line.get("p_holm")]
    level = SIGNIFICANCE_LEVEL / max(len(tested), 1)
    found = []
    for line in tested:
        straddles = float(line["ci_low"]) <= 0 <= float(line["ci_high"])
        if straddles and float(line["mde"]) > target and int(line["pairs"].split(";")[0]) < cap:
            planned, planned_mde = planned_seeds(line, level, target, cap)
            found.append(Need(line["task"], int(line["train_size"]), line["strategy"], line["baseline"],
                              int(line["pairs"].split(";")[0]), float(line["mde"]), planned, planned_mde))
    return found


def commands(found: list[Need], experiment: str | None, overrides: list[str]) -> list[str]:
    by_cell: dict[tuple[str, int], list[Need]] = defaultdict(list)
    for need in found:
        by_cell[(need.task, need.train_size)].append(need)
    lines = []
    for (task, size), group in sorted(by_cell.items()):
        strategies = sorted({group[0].baseline} | {need.strategy for need in group})
        seeds = max(need.planned for need in group)
        parts = ["elmo-bench -m", *([f"+experiment={experiment}"] if experiment else []), f"task={task}",
                 f"data.train_size={size}", f"strategy={','.join(strategies)}",
                 f"seed={','.join(str(seed) for seed in range(1, seeds + 1))}", *overrides]
        lines.append(" ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a study folder with report/comparison.csv")
    parser.add_argument("--target", type=float, default=1.0, help="the detectable effect wanted, points (default 1)")
    parser.add_argument("--cap", type=int, default=10, help="at most this many seeds per row (default 10)")
    parser.add_argument("--experiment", help="the +experiment the study ran, e.g. study_converge")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="added to every command, e.g. output_dir=outputs/study_converge")
    args = parser.parse_args(argv)
    comparison_csv = args.study / "report" / "comparison.csv"
    if not comparison_csv.is_file():
        print(f"plan_seeds: {comparison_csv} not found; run elmo-bench-report {args.study} first", file=sys.stderr)
        return 2
    found = needs(comparison_csv, args.target, args.cap)
    for need in found:
        print(f"# {need.task} n={need.train_size:,d} {need.strategy}: MDE {need.mde:.2f} with {need.seeds} seeds -> "
              f"{need.planned_mde:.2f} with {need.planned}")
    print("\n".join(commands(found, args.experiment, args.override)) or "# every row is resolved or below the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
