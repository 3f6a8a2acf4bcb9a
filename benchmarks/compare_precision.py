"""bf16 against fp32: are the scores within seed noise? Pairs the cells of two output folders by task, strategy,
size and seed (the same cells run in each precision) and prints per task and strategy the fp32 and bf16 dev and
test scores, the paired difference bf16 - fp32 (mean and range over seeds), the seed-to-seed standard deviation
of each precision, and the seconds per update of each.

    elmo-bench -m task=pos,sst5 strategy=feature_ensemble data.train_size=1000 seed=1,2,3 trainer.max_steps=100 \\
        trainer.min_steps=100 trainer.eval_steps=50 trainer.precision=fp32 output_dir=outputs/precision/fp32
    (the same with trainer.precision=bf16 output_dir=outputs/precision/bf16)
    python benchmarks/compare_precision.py outputs/precision/fp32 outputs/precision/bf16

Judged within seed noise when the mean paired difference is smaller than the seed-to-seed standard deviation of
fp32 (and every paired difference is within two of them).
"""
from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from elmo_bench.cell.layout import RESULT_FILE, cell_folders
from elmo_bench.cell.result import CellResult


def cells(folder: Path) -> dict[tuple, CellResult]:
    found = {}
    for cell in cell_folders(folder):
        if (cell / RESULT_FILE).is_file():
            result = CellResult.read(cell / RESULT_FILE)
            found[(result.task, result.strategy, result.train_size, result.seed)] = result
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fp32", type=Path)
    parser.add_argument("bf16", type=Path)
    args = parser.parse_args()
    base, other = cells(args.fp32), cells(args.bf16)
    groups = defaultdict(list)
    for key in sorted(base.keys() & other.keys()):
        groups[key[:3]].append((base[key], other[key]))
    print("| task | strategy | n | seeds | split | fp32 mean (SD) | bf16 mean (SD) | bf16 - fp32 mean [min, max] |"
          " within noise | s/update fp32 | bf16 | precision recorded |")
    print("|" + "---|" * 12)
    for (task, strategy, size), pairs in groups.items():
        for split in ("dev", "test"):
            a, b = [getattr(p[0], split) for p in pairs], [getattr(p[1], split) for p in pairs]
            diffs = [y - x for x, y in zip(a, b)]
            sd = statistics.stdev(a) if len(a) > 1 else float("nan")
            within = abs(statistics.mean(diffs)) < sd and all(abs(d) <= 2 * sd for d in diffs)
            speed = [statistics.median(p[i].train_seconds / p[i].steps for p in pairs) for i in (0, 1)]
            recorded = "/".join(sorted({str(p[1].precision) for p in pairs}))
            print(f"| {task} | {strategy} | {size:,d} | {len(pairs)} | {split} | {statistics.mean(a):.2f} ({sd:.2f}) |"
                  f" {statistics.mean(b):.2f} ({statistics.stdev(b) if len(b) > 1 else float('nan'):.2f}) |"
                  f" {statistics.mean(diffs):+.2f} [{min(diffs):+.2f}, {max(diffs):+.2f}] | {'yes' if within else 'NO'}"
                  f" | {speed[0]:.3f} | {speed[1]:.3f} | {recorded} |")


if __name__ == "__main__":
    main()
