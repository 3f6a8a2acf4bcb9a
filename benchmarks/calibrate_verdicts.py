"""False-positive rate and power of verdict procedures on simulated studies matched to a study's rows.

    python benchmarks/calibrate_verdicts.py                         # the table: 2,000 studies per cell
    python benchmarks/calibrate_verdicts.py --studies 500 --seeds 3
    python benchmarks/calibrate_verdicts.py --estimate /tmp/study   # the profiles, from an extracted study

Per task of the study, with its family (calibration.PROFILES), number of seeds K and procedure
(calibration.PROCEDURES): the share of simulated studies whose p < 0.05, with true difference 0 (the
false-positive rate, FPR: at most 6% is the bar) and 0.5, 1 and 2 points (power). Each cell is its own seeded
set of studies, so the table is the same on every run. --estimate reads a study folder whose predictions are extracted (tar xzf predictions.tar.gz -C
<copy>, never inside results/) and prints each task's mean variances, the numbers PROFILES holds.
"""
from __future__ import annotations

import argparse
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from elmo_bench.report.calibration import ALPHA, PROCEDURES, PROFILES, Profile, rejection_rate
from elmo_bench.report.load import keep_newest_per_cell, load_runs
from elmo_bench.report.table import BASELINE, TEST, RunScores, score_runs

EFFECTS = (0.5, 1.0, 2.0)
FPR_BAR = 0.06


def table(studies: int, seed_counts: list[int], procedures: list[str]) -> list[str]:
    header = ["task (family)", "K", "procedure", "FPR", *(f"power {effect:g}" for effect in EFFECTS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for profile in PROFILES:
        for seeds in seed_counts:
            for name in procedures:
                rates = [rejection_rate(PROCEDURES[name], profile, seeds, effect, studies)
                         for effect in (0.0, *EFFECTS)]
                flag = "" if rates[0] <= FPR_BAR else " ✗"
                lines.append(f"| {profile.task} ({profile.family}) | {seeds} | {name} | {100 * rates[0]:.1f}%{flag} | "
                             + " | ".join(f"{100 * rate:.1f}%" for rate in rates[1:]) + " |")
    return lines


def estimate(folder: Path, resamples: int) -> list[Profile]:
    """Per task, the mean variance parts over its comparisons (main metric, pairs of seeds both ran)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs, left_out = load_runs([folder])
        runs = keep_newest_per_cell(runs, left_out)
    scores = score_runs(runs, resamples)
    arms: dict[tuple, dict[str, dict[int, RunScores]]] = defaultdict(lambda: defaultdict(dict))
    family_of = {}
    for run in runs:
        arms[run.row][run.strategy][run.seed] = scores[(run.path, TEST)]
        family_of[run.task] = run.family
    parts: dict[str, list[tuple[float, float, float, int]]] = defaultdict(list)
    for row, by_strategy in sorted(arms.items()):
        for strategy, own in sorted(by_strategy.items()):
            seeds = sorted(own.keys() & by_strategy.get(BASELINE, {}).keys())
            if strategy == BASELINE or len(seeds) < 2:
                continue
            metric = row[2]
            pairs = [(own[seed], by_strategy[BASELINE][seed]) for seed in seeds]
            observed = np.array([mine.full[metric] - theirs.full[metric] for mine, theirs in pairs])
            covariance = np.cov(np.stack([mine.resampled[metric] - theirs.resampled[metric] for mine, theirs in pairs]))
            shared = (covariance.sum() - np.trace(covariance)) / (len(seeds) * (len(seeds) - 1))
            per_seed = np.trace(covariance) / len(seeds) - shared
            parts[row[0]].append((observed.var(ddof=1) - per_seed, per_seed, shared, pairs[0][0].units))
    return [Profile(task, family_of[task], max(float(np.mean([p[0] for p in found])), 0.0),
                    float(np.mean([p[1] for p in found])), max(float(np.mean([p[2] for p in found])), 0.0),
                    int(np.median([p[3] for p in found])))
            for task, found in sorted(parts.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000, help="simulated studies per cell (default 2,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10], help="seed counts K (default 3 5 10)")
    parser.add_argument("--procedures", nargs="+", default=list(PROCEDURES), choices=list(PROCEDURES),
                        metavar="NAME", help="procedures to run (default: all)")
    parser.add_argument("--estimate", type=Path, help="print the profiles of this extracted study folder instead")
    parser.add_argument("--resamples", type=int, default=2000, help="test-unit resamples for --estimate")
    args = parser.parse_args()
    if args.estimate:
        for profile in estimate(args.estimate, args.resamples):
            print(f"    Profile({profile.task!r}, {profile.family!r}, {profile.seed_variance:.3f}, "
                  f"{profile.unit_variance:.3f}, {profile.shared_variance:.3f}, {profile.units}),")
        return
    print(f"Share of {args.studies:,d} simulated studies per cell with p < {ALPHA}: FPR at true Δ = 0 (bar "
          f"{100 * FPR_BAR:.0f}%, ✗ above it), power at true Δ of {', '.join(f'{e:g}' for e in EFFECTS)} points.\n")
    print("\n".join(table(args.studies, args.seeds, args.procedures)))


if __name__ == "__main__":
    main()
