"""How long the report takes over a few hundred cells with their predictions (issue 12's target: well under a
minute on this 2-core machine).

    python benchmarks/bench_report.py                  # 288 cells: 4 tasks × 3 strategies × 4 sizes × 6 seeds
    python benchmarks/bench_report.py --seeds 3 --resamples 1000

Planted runs with real-sized test sets (CoNLL-2003 test: 3,453 sentences; SST-5 test: 2,210 examples; STS-B
test: 1,379 pairs; SQuAD: 10,570 questions in 48 articles) are written into a temporary folder first (not
timed); then the report is built three ways: loading and rescoring only, the full report, and the full report
again (the second full run shows the same time: nothing is cached between runs). Prints seconds per stage.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats
from seqeval.metrics import f1_score

from elmo_bench.cell.layout import CellKey, write_predictions
from elmo_bench.cell.result import CellResult
from elmo_bench.metrics.squad import squad_scores
from elmo_bench.report import build_report
from elmo_bench.report.load import load_runs
from elmo_bench.report.table import score_runs
from elmo_bench.strategies import STRATEGIES as STRATEGY_KINDS

TAGS = ["O"] * 6 + ["B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC"]
TEST_SETS = {"ner": ("f1", 3453), "sst5": ("accuracy", 2210), "stsb": ("pearson", 1379), "squad": ("f1", 10570)}
STRATEGIES = tuple(strategy.kind for strategy in STRATEGY_KINDS)
SIZES = (200, 1000, 4000, 16000)


def planted_rows(task: str, quality: float, rng: np.random.Generator) -> list[dict]:
    """Test predictions of one run: gold labels fixed by the task, predictions right with chance `quality`."""
    gold_rng = np.random.default_rng(len(task))  # every run of a task shares its test set
    _, size = TEST_SETS[task]
    rows = []
    for index in range(size):
        if task == "ner":
            gold = list(gold_rng.choice(TAGS, size=gold_rng.integers(4, 25)))
            pred = [tag if rng.random() < quality else str(rng.choice(TAGS)) for tag in gold]
            rows.append({"id": f"test-{index}", "gold": gold, "pred": pred})
        elif task == "sst5":
            gold = int(gold_rng.integers(5))
            rows.append({"id": f"test-{index}", "gold": gold, "pred": gold if rng.random() < quality else 0})
        elif task == "stsb":
            gold = float(gold_rng.uniform(0, 5))
            rows.append({"id": f"test-{index}", "gold": gold, "pred": gold + float(rng.normal(0, 2 - quality))})
        else:
            gold = [f"answer {index}", f"the answer {index}"]
            pred = gold[0] if rng.random() < quality else f"other {index}"
            rows.append({"id": f"q{index}", "gold": gold, "pred": pred, "article": f"article-{index % 48}"})
    return rows


def write_cells(root: Path, seeds: int) -> int:
    rng = np.random.default_rng(0)
    cells = 0
    for task, (metric, _) in TEST_SETS.items():
        for strategy_index, strategy in enumerate(STRATEGIES):
            for size_index, size in enumerate(SIZES):
                for seed in range(1, seeds + 1):
                    quality = 0.5 + 0.08 * size_index + 0.01 * strategy_index
                    folder = CellKey(task, strategy, "cpu-small", str(size), seed).folder(root)
                    folder.mkdir(parents=True)
                    rows = planted_rows(task, quality, rng)
                    predictions = write_predictions(folder, "test", rows)
                    result(task, metric, strategy, size, seed, rows, predictions).write(folder)
                    cells += 1
    return cells


def score(task: str, rows: list[dict]) -> float:
    """The main metric ×100, from the reference libraries, so result.json agrees with its predictions."""
    gold, pred = [row["gold"] for row in rows], [row["pred"] for row in rows]
    if task == "ner":
        return 100 * f1_score(gold, pred)
    if task == "stsb":
        return 100 * float(stats.pearsonr(gold, pred)[0])
    if task == "squad":
        return 100 * squad_scores(gold, pred)["f1"]
    return 100 * float(np.mean([g == p for g, p in zip(gold, pred)]))


def result(task: str, metric: str, strategy: str, size: int, seed: int, rows: list[dict],
           predictions: str) -> CellResult:
    return CellResult(task=task, dataset=task, strategy=strategy, model="cpu-small", train_size=size, seed=seed,
                      metric=metric, dev=0.0, test=score(task, rows), train_seconds=10.0, trainable_params=1000,
                      predictions={"test": predictions}, config={})


def timed(label: str, work) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        work()
    seconds = time.perf_counter() - start
    print(f"{label:<52} {seconds:7.1f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "runs"
        start = time.perf_counter()
        cells = write_cells(root, args.seeds)
        print(f"{cells} planted cells written in {time.perf_counter() - start:.1f} s (not part of the timings)")
        timed("load result.json files", lambda: load_runs([root]))
        timed(f"load + rescore predictions, {args.resamples} resamples",
              lambda: score_runs(load_runs([root])[0], args.resamples))
        for attempt in (1, 2):
            timed(f"full report (tables, intervals, figures), run {attempt}",
                  lambda: build_report([root], Path(folder) / f"report{attempt}", resamples=args.resamples))
        same = all((Path(folder) / "report1" / name).read_bytes() == (Path(folder) / "report2" / name).read_bytes()
                   for name in ("comparison.md", "comparison.csv", "intervals.csv"))
        print(f"byte-identical outputs on rerun: {same}")


if __name__ == "__main__":
    main()
