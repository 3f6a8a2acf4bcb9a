"""The study's per-cell costs, measured: seconds per update, per dev evaluation and for features, from the
one-epoch cells of `+experiment=study_cost`, and each study cell projected from them.

    elmo-bench -m +experiment=study_cost hydra/launcher=parallel       # the measurement (a few dozen cells)
    python benchmarks/study_costs.py outputs/study_cost [--max-epochs 30 --min-steps 300 --max-steps N
                                                         --eval-steps 50 --seeds 3]
    python benchmarks/study_costs.py --spent results/study_cpu       # what the finished cells did cost
    python benchmarks/study_costs.py --spent results/study_converge --speedup out/bench_cells.json

A study cell's projection is an upper bound (no early stopping): its planned updates times the measured seconds
per update, plus one dev evaluation per `eval_steps` updates (whole epochs), plus features and the final
scoring as measured. Prints a Markdown table per cell and the grid's total. With --spent, it reads a study's
finished cells instead and tells where their time went, per task and strategy, with each strategy's cost as a
ratio to feature_ensemble's. With --speedup (bench_cells.py's JSON: old/new ratios measured in one run), it adds
what those cells would cost with the new code: their updates divided by the measured update ratio of their task and
strategy, dev scoring and the rest (mostly the final predictions) by the measured dev-scoring ratio, features as
they were; a task or strategy the benchmark lacks takes the mean over what it has (marked).
"""
from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

from elmo_bench.cell.layout import RESULT_FILE, cell_folders
from elmo_bench.cell.result import CellResult


def measured(result: dict) -> dict[str, float]:
    """What one probe cell spent, per unit of work. Features are what computing them cost whoever paid (the cache
    files record it): the training subset's are the cell's own, the dev and test sets' are shared by every cell of
    the task (counted once in the total)."""
    evaluations = max(1, len(result["history"]))
    overhead = result["wall_seconds"] - result["train_seconds"] - result["eval_seconds"] - result["feature_seconds"]
    features = {cost["split"]: cost["seconds"] or 0.0 for cost in result["feature_cost"]}
    return {"update": result["train_seconds"] / max(1, result["steps"]),
            "evaluation": result["eval_seconds"] / evaluations, "features": features.pop("train", 0.0),
            "shared_features": sum(features.values()), "final": max(0.0, overhead), "steps_per_epoch": result["steps"]}


def projected(cost: dict[str, float], strategy: str, args: argparse.Namespace) -> tuple[int, int, float]:
    """(updates, dev evaluations, seconds) of one study cell under the study's budget."""
    per_epoch = max(1, int(cost["steps_per_epoch"]))
    updates = max(args.max_epochs, math.ceil(args.min_steps / per_epoch)) * per_epoch
    updates = updates if args.max_steps is None else min(updates, args.max_steps)
    eval_every = max(1, math.ceil(args.eval_steps / per_epoch)) * per_epoch
    evaluations = math.ceil(updates / eval_every) + (1 if strategy == "two_stage" else 0)  # a stage ends in one
    return updates, evaluations, (updates * cost["update"] + evaluations * cost["evaluation"] + cost["features"]
                                  + cost["final"])


def fill_missing(cells: dict, sizes: list[int]) -> None:
    """A cell the probe did not reach takes its task and strategy's costs at the nearest measured size, with the
    updates per epoch scaled by size (batches hold a fixed number of tokens); two_stage missing everywhere mixes
    feature_ensemble's and finetune's costs half and half (its default frozen_share). Marked as projected."""
    for task in sorted({task for task, _, _ in cells}):
        for size in sizes:
            for strategy in ("feature_ensemble", "finetune", "two_stage"):
                if (task, size, strategy) in cells:
                    continue
                measured_sizes = [s for t, s, k in cells if t == task and k == strategy and "from" not in cells[t, s, k]]
                if measured_sizes:
                    near = min(measured_sizes, key=lambda s: abs(math.log(s / size)))
                    cost = dict(cells[(task, near, strategy)])
                    cost["steps_per_epoch"] = round(cost["steps_per_epoch"] * size / near)
                    cost["features"] *= size / near
                    cost["from"] = f"n={near:,d}"
                elif (task, size, "feature_ensemble") in cells and (task, size, "finetune") in cells:
                    frozen, tuned = cells[(task, size, "feature_ensemble")], cells[(task, size, "finetune")]
                    cost = {key: (frozen[key] + tuned[key]) / 2 for key in ("update", "evaluation", "final")}
                    cost |= {"features": frozen["features"], "shared_features": frozen["shared_features"],
                             "steps_per_epoch": tuned["steps_per_epoch"], "from": "mix"}
                else:
                    continue
                cells[(task, size, strategy)] = cost


PARTS = ("train_seconds", "eval_seconds", "feature_seconds")  # the rest of a cell's wall time is loading and scoring


def speedups(path: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(task, strategy) -> (update ratio, dev-scoring ratio), old/new, each the geometric mean over the sizes that
    bench_cells.py measured."""
    ratios: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for cell, value in json.loads(path.read_text(encoding="utf-8"))["summary"]["cells"].items():
        task, strategy, _ = cell.split(":")
        old_eval, new_eval = value["dev_eval"]
        ratios[(task, strategy)].append((value["update"][2], old_eval / new_eval))
    return {key: tuple(geometric_mean([pair[i] for pair in pairs]) for i in range(2)) for key, pairs in ratios.items()}


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def speedup_for(table: dict, task: str, strategy: str) -> tuple[tuple[float, float], str]:
    """The measured ratios of (task, strategy); else the strategy's mean over tasks; two_stage (half frozen, half
    tuned by default) the mean of feature_ensemble's and finetune's."""
    if (task, strategy) in table:
        return table[(task, strategy)], ""
    if strategy == "two_stage":
        parts = [speedup_for(table, task, kind) for kind in ("feature_ensemble", "finetune")]
        return tuple(geometric_mean([p[0][i] for p in parts]) for i in range(2)), " (fe/ft mean)"
    same = [value for (_, kind), value in table.items() if kind == strategy]
    return tuple(geometric_mean([v[i] for v in same]) for i in range(2)), " (other tasks' mean)"


def spent(folder: Path, speedup: Path | None = None) -> None:
    """Worker-seconds the finished cells spent (a worker holds one core at one thread per worker), split into
    updates, dev scoring during training, features computed by the cell and the rest; features read from the shared
    cache were paid once by whichever run computed them and are counted once, apart. A strategy's ratio to
    feature_ensemble compares the same sizes and seeds. Work an interrupted attempt did after its last checkpoint
    is redone on resume and not counted."""
    walls: dict[tuple[str, str], dict[tuple[int, int], float]] = defaultdict(dict)
    parts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    cached: dict[str, float] = {}
    resumed_early = 0
    cpu_cells, cpu_seconds, cpu_walls = 0, 0.0, 0.0  # the cells that recorded their CPU time
    for path in sorted(cell / RESULT_FILE for cell in cell_folders(folder) if (cell / RESULT_FILE).is_file()):
        result = CellResult.read(path).to_json()
        key = (result["task"], result["strategy"])
        # a cell resumed before runs counted earlier attempts in wall_seconds: its parts bound it from below
        counted = sum(result[part] for part in PARTS)
        resumed_early += counted > result["wall_seconds"]
        walls[key][(result["train_size"], result["seed"])] = max(result["wall_seconds"], counted)
        if result.get("cpu_seconds") is not None:
            cpu_cells, cpu_seconds, cpu_walls = (cpu_cells + 1, cpu_seconds + result["cpu_seconds"],
                                                 cpu_walls + result["wall_seconds"])
        for part in PARTS:
            parts[key][part] += result[part]
        cached |= {cost["key"]: cost["seconds"] or 0.0 for cost in result["feature_cost"] if not cost["computed_here"]}
    table = speedups(speedup) if speedup else None
    print("| task | strategy | cells | worker-h | updates | dev scoring | features | rest | × feature_ensemble |"
          + (" new code: ratios (update, scoring) | worker-h |" if table else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if table else ""))
    by_strategy: dict[str, float] = defaultdict(float)
    projected_by_strategy: dict[str, float] = defaultdict(float)
    for (task, strategy), cells in sorted(walls.items()):
        wall = sum(cells.values())
        by_strategy[strategy] += wall
        shares = [parts[(task, strategy)][part] / wall for part in PARTS]
        baseline = walls.get((task, "feature_ensemble"), {})
        both = [cell for cell in cells if cell in baseline]
        ratio = f"{sum(cells[c] for c in both) / sum(baseline[c] for c in both):.2f}×" if both else "—"
        line = (f"| {task} | {strategy} | {len(cells)} | {wall / 3600:.2f} | "
                + " | ".join(f"{share:.0%}" for share in [*shares, 1 - sum(shares)]) + f" | {ratio} |")
        if table:
            (update, scoring), note = speedup_for(table, task, strategy)
            rest = wall * (1 - sum(shares))
            new = (parts[(task, strategy)]["train_seconds"] / update + parts[(task, strategy)]["feature_seconds"]
                   + (parts[(task, strategy)]["eval_seconds"] + rest) / scoring)
            projected_by_strategy[strategy] += new
            line += f" {update:.2f}x, {scoring:.2f}x{note} | {new / 3600:.2f} |"
        print(line)
    whole = sum(by_strategy.values())
    if table:
        total = sum(projected_by_strategy.values())
        print(f"\nWith the new code (--speedup {speedup}): {total / 3600:.1f} worker-hours instead of "
              f"{whole / 3600:.1f} ({whole / total:.2f}x; "
              + ", ".join(f"{s} {t / 3600:.1f}" for s, t in sorted(projected_by_strategy.items())) + ")")
    print(f"\n{sum(map(len, walls.values()))} cells, {whole / 3600:.1f} worker-hours "
          f"({', '.join(f'{s} {t / 3600:.1f}' for s, t in sorted(by_strategy.items()))}); features read from "
          f"the cache: {len(cached)} files, {sum(cached.values()) / 60:.1f} min when computed")
    if cpu_cells:
        print(f"{cpu_cells} cells recorded their CPU time: {cpu_seconds / 3600:.2f} CPU-hours in "
              f"{cpu_walls / 3600:.2f} worker-hours")
    if resumed_early:
        print(f"{resumed_early} cells resumed before wall_seconds counted earlier attempts: each counts its updates, "
              "dev scoring and features only (a lower bound)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--spent", action="store_true", help="summarise the finished cells in FOLDER instead")
    parser.add_argument("--speedup", type=Path, default=None,
                        help="with --spent: bench_cells.py's JSON, to project the cells' cost with the new code")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--min-steps", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--eval-steps", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", type=lambda text: [int(x) for x in text.split(",")], default=[100, 1000, 5000])
    args = parser.parse_args()
    if args.spent:
        return spent(args.folder, args.speedup)
    cells = {}
    for path in sorted(cell / RESULT_FILE for cell in cell_folders(args.folder) if (cell / RESULT_FILE).is_file()):
        result = CellResult.read(path).to_json()
        # two_stage's probe trained half an epoch per stage: its updates per epoch are finetune's
        cells[(result["task"], result["train_size"], result["strategy"])] = measured(result)
    for (task, size, strategy), cost in cells.items():
        if strategy == "two_stage" and (task, size, "finetune") in cells:
            cost["steps_per_epoch"] = cells[(task, size, "finetune")]["steps_per_epoch"]
    fill_missing(cells, args.sizes)
    print("| task | n | strategy | s / update | s / dev eval | features s | final s | updates | evals | cell s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals, shared = defaultdict(float), defaultdict(float)
    for (task, size, strategy), cost in sorted(cells.items()):
        updates, evaluations, seconds = projected(cost, strategy, args)
        totals[strategy] += seconds * args.seeds
        shared[task] = max(shared[task], cost["shared_features"])
        strategy_cell = strategy + (f" (projected from {cost['from']})" if "from" in cost else "")
        print(f"| {task} | {size:,d} | {strategy_cell} | {cost['update']:.3f} | {cost['evaluation']:.1f} | "
              f"{cost['features']:.1f} | {cost['final']:.1f} | {updates:,d} | {evaluations} | {seconds:,.0f} |")
    whole = sum(totals.values()) + sum(shared.values())
    print(f"\n{sum('from' not in c for c in cells.values())} cells measured, {sum('from' in c for c in cells.values())}"
          f" projected; x{args.seeds} seeds: {whole / 3600:.1f} worker-hours "
          f"({', '.join(f'{s} {t / 3600:.1f}' for s, t in sorted(totals.items()))}, dev/test features "
          f"{sum(shared.values()) / 3600:.2f})")


if __name__ == "__main__":
    main()
