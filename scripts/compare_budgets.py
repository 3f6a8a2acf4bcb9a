"""What a longer budget changed: the cells of a capped study beside the same cells run until patience ended them.

    python scripts/compare_budgets.py results/study_cpu results/study_converge

For each task x size x strategy both folders hold, over the seeds both hold: the mean test score under each
budget, the mean updates, how many runs early stopping ended (the rest hit a cap) and the most dev points a run
still gained over its last third (a run a cap ended on a plateau gained little). A second table puts the
strategies' mean gap to feature_ensemble under each budget side by side. Descriptive only: the intervals and
tests come from `elmo-bench-report` on each folder.
"""
from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path
from statistics import mean

from elmo_bench.cell.layout import RESULT_FILE, cell_folders
from elmo_bench.cell.result import CellResult
from elmo_bench.cell.identity import ADDED_KEYS

Cell = tuple[str, int, str]  # task, training size, strategy


def load_runs(folder: Path) -> dict[tuple[Cell, int], dict]:
    """Every finished run under `folder`, by (task, size, strategy) and seed."""
    runs = {}
    for path in sorted(cell / RESULT_FILE for cell in cell_folders(folder) if (cell / RESULT_FILE).is_file()):
        result = CellResult.read(path).to_json()
        runs[(result["task"], result["train_size"], result["strategy"]), result["seed"]] = result
    return runs


def ended_by_patience(result: dict) -> bool:
    """Whether early stopping ended the run: the trainer's count replayed over the history (each stage starts
    it afresh; a dev gain above `min_delta`, 0 for runs recorded before the knob, resets it) reached `patience`."""
    trainer = result["config"]["trainer"]
    min_delta = trainer.get("min_delta", ADDED_KEYS["trainer.min_delta"])
    best, bad_evals, stage = -math.inf, 0, None
    for entry in result["history"]:
        if entry["stage"] != stage:
            stage, bad_evals = entry["stage"], 0
        bad_evals = 0 if entry["dev"] - best > min_delta else bad_evals + 1
        best = max(best, entry["dev"])
    return bad_evals >= trainer["patience"]


def late_dev_gain(result: dict) -> float:
    """Dev points gained over the last third of training: the last evaluation's score minus that of the last
    evaluation at or before two thirds of the updates (0 when there is none)."""
    history = result["history"]
    earlier = [entry["dev"] for entry in history if entry["step"] <= 2 * result["steps"] / 3]
    return 100 * (history[-1]["dev"] - earlier[-1]) if earlier else 0.0


def paired(short: dict, long: dict) -> dict[Cell, list[tuple[dict, dict]]]:
    """The runs of each cell that both budgets hold, seed by seed; twins must have trained on the same subset."""
    pairs = defaultdict(list)
    for (cell, seed), result in sorted(long.items()):
        if (cell, seed) in short:
            twin = short[cell, seed]
            if twin.get("train_subset_digest") != result.get("train_subset_digest"):
                raise SystemExit(f"{'/'.join(map(str, cell))} seed {seed}: the two budgets trained on different "
                                 "subsets (train_subset_digest differs); these are not twins")
            pairs[cell].append((twin, result))
    return dict(pairs)


def budget_rows(pairs: dict[Cell, list[tuple[dict, dict]]]) -> list[str]:
    rows = ["| task | n | strategy | seeds | test, capped | test, longer | change | updates | ended by patience "
            "| most dev gained in the last third |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (task, size, strategy), runs in sorted(pairs.items()):
        short_test, long_test = mean(s["test"] for s, _ in runs), mean(l["test"] for _, l in runs)
        updates = f"{mean(s['steps'] for s, _ in runs):,.0f} → {mean(l['steps'] for _, l in runs):,.0f}"
        stopped = f"{sum(ended_by_patience(s) for s, _ in runs)} → {sum(ended_by_patience(l) for _, l in runs)}"
        late = f"{max(late_dev_gain(s) for s, _ in runs):+.2f} → {max(late_dev_gain(l) for _, l in runs):+.2f}"
        rows.append(f"| {task} | {size:,d} | {strategy} | {len(runs)} | {short_test:.2f} | {long_test:.2f} "
                    f"| {long_test - short_test:+.2f} | {updates} | {stopped} of {len(runs)} | {late} |")
    return rows


def gap_rows(pairs: dict[Cell, list[tuple[dict, dict]]]) -> list[str]:
    """Each strategy's mean test gap to feature_ensemble, over the seeds all four runs share."""
    rows = ["| task | n | strategy | seeds | gap, capped | gap, longer |", "|---|---|---|---|---|---|"]
    for (task, size, strategy), runs in sorted(pairs.items()):
        if strategy == "feature_ensemble":
            continue
        baseline = {s["seed"]: (s, l) for s, l in pairs.get((task, size, "feature_ensemble"), [])}
        shared = [(s, l, *baseline[s["seed"]]) for s, l in runs if s["seed"] in baseline]
        if not shared:
            continue
        short_gap = mean(s["test"] - base_s["test"] for s, _, base_s, _ in shared)
        long_gap = mean(l["test"] - base_l["test"] for _, l, _, base_l in shared)
        rows.append(f"| {task} | {size:,d} | {strategy} | {len(shared)} | {short_gap:+.2f} | {long_gap:+.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capped", type=Path, help="the study's folder of runs under the shorter budget")
    parser.add_argument("longer", type=Path, help="the same cells under the longer budget")
    args = parser.parse_args()
    pairs = paired(load_runs(args.capped), load_runs(args.longer))
    if not pairs:
        raise SystemExit(f"no run of {args.longer} has a twin (task, size, strategy, seed) in {args.capped}")
    print("\n".join(budget_rows(pairs) + [""] + gap_rows(pairs)))


if __name__ == "__main__":
    main()
