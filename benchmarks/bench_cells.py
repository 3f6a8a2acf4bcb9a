"""Old code against new on the 12 cells of issue 55, in one run on one machine, as ratios.

    git worktree add /tmp/old <commit before the change>
    PYTHONPATH=src python benchmarks/bench_cells.py --old /tmp/old     # 12 cells x 3 repeats x old/new
    python benchmarks/bench_cells.py --old /tmp/old --max-steps 60 --repeats 3 --json out/bench_cells.json
    python benchmarks/bench_cells.py --old /tmp/old --new-overrides trainer.precision=auto   # new side in bf16

NER, POS, SST-5 and STS-B x feature_ensemble and finetune x 100 and 1,000 training examples, cpu-small, seed 1,
each cell trained for exactly `--max-steps` updates (min_steps = max_steps, dev scored once, at the end), then
scored on dev and test as a study cell is. Every run is a fresh `elmo-bench` process; the old code runs from the
other worktree's `src` (its own conf/), the new from this one's. Old and new alternate within each cell and
repeat (the first of the pair swaps every repeat), so drift in the machine's load hits both alike. Both read one
feature cache, filled by an untimed run of each feature_ensemble cell first.

The dev and test sets of NER, POS and SST-5 are cut to their first `--eval-examples` sentences (a copy of the data
under `--out`), so that scoring does not swamp the updates at this small budget; STS-B's are whole. STS-B's training
file has one control character that elmo-bench refuses; the copy replaces it (`bench_data`).

Per run: seconds per update (result.json's train_seconds / steps, wall clock), the dev scoring, and the whole
process's wall and CPU time (user + system of the child: on a shared machine, time the core spends on other
processes counts in the wall clock only), and the cell's own CPU seconds (result.json's cpu_seconds: from the
cell's start, imports excluded). Printed: per cell the medians and the old/new ratios with their spread over repeats, per strategy the
geometric mean of the update ratios, and the whole benchmark's ratio (sum of median wall times). Predictions of
the two sides are compared file by file (dev and test).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from elmo_bench.cell.layout import RESULT_FILE, CellKey, predictions_name, read_predictions, size_tag  # noqa: E402
from elmo_bench.cell.result import CellResult  # noqa: E402

TASKS = ("ner", "pos", "sst5", "stsb")
STRATEGIES = ("feature_ensemble", "finetune")
SIZES = (100, 1000)


def bench_data(shared: Path, root: Path, sentences: int | None) -> Path:
    """A data root for the benchmarks: NER/POS and SST-5 dev and test cut to their first `sentences` (None: whole),
    STS-B's training file with its one control character (U+0012 for an apostrophe, line 2920, which elmo-bench
    refuses since issue 56) made an apostrophe; everything else linked."""
    from runs import write_slice

    for name in ("eng.testa", "eng.testb"):
        write_slice(shared / "conll2003" / name, root / "conll2003" / name, sentences or 10**9)
    for name in ("dev.txt", "test.txt"):
        lines = (shared / "sst5" / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (root / "sst5").mkdir(parents=True, exist_ok=True)
        (root / "sst5" / name).write_text("".join(lines[:sentences]), encoding="utf-8")
    (root / "stsb").mkdir(parents=True, exist_ok=True)
    text = (shared / "stsb" / "train.tsv").read_text(encoding="utf-8")
    (root / "stsb" / "train.tsv").write_text(text.replace("\x12", "'"), encoding="utf-8")
    for link in ("conll2003/eng.train", "sst5/train.txt", "stsb/dev.tsv", "stsb/test.tsv", "stsb/original", "squad"):
        if not (root / link).is_symlink():
            (root / link).symlink_to(shared / link)
    return root


def run_cell(source: Path, task: str, strategy: str, size: int, output: Path, args,
             extra: list[str]) -> tuple[float, float]:
    """One fresh process training and scoring one cell; its wall seconds and its CPU seconds (user + system: on
    a shared machine, the time other processes take the core counts in the wall time only)."""
    overrides = [f"task={task}", f"strategy={strategy}", f"data.train_size={size}", "model=cpu-small", "seed=1",
                 f"trainer.max_steps={args.max_steps}", f"trainer.min_steps={args.max_steps}",
                 "trainer.eval_steps=1000000", f"trainer.threads={args.threads}", f"output_dir={output}",
                 f"data.root={args.data_root}", "data.use_hub=false", "force=true", *extra]
    env = {**os.environ, "PYTHONPATH": str(source / "src"), "OMP_NUM_THREADS": str(args.threads)}
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", "from elmo_bench.cli import main; main()", *overrides], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{source} {task} {strategy} {size} failed:\n{done.stderr[-3000:]}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def folder(output: Path, task: str, strategy: str, size: int) -> Path:
    return CellKey(task, strategy, "cpu-small", size_tag(size), 1).folder(output)


def measure(side: str, source: Path, cell: tuple, repeat: int, args, extra: list[str]) -> dict:
    task, strategy, size = cell
    output = Path(args.out) / side / f"repeat{repeat}"
    wall, cpu = run_cell(source, task, strategy, size, output, args, extra)
    result = CellResult.read(folder(output, task, strategy, size) / RESULT_FILE)
    features_computed = sum(c["seconds"] or 0.0 for c in result.feature_cost or [] if c["computed_here"])
    return {"side": side, "cell": f"{task}:{strategy}:{size}", "repeat": repeat, "wall": wall - features_computed,
            "cpu": cpu - features_computed, "cell_cpu": result.cpu_seconds,
            "update": result.train_seconds / result.steps, "dev_eval": result.eval_seconds, "steps": result.steps,
            "dev": result.dev, "test": result.test, "precision": result.precision or "fp32"}


def same_predictions(out: Path, cell: tuple) -> str:
    """'identical', or how many predictions differ, between the two sides' first repeat (dev and test)."""
    differing, total = 0, 0
    for split in ("dev", "test"):
        old, new = (read_predictions(folder(out / side / "repeat0", *cell), predictions_name(split))
                    for side in ("old", "new"))
        total += len(old)
        differing += sum(a != b for a, b in zip(old, new)) + abs(len(old) - len(new))
    return "identical" if differing == 0 else f"{differing} of {total} differ"


def ratio_summary(rows: list[dict], cell: str, key: str) -> tuple[float, float, float, float]:
    """(median old, median new, old/new of the medians, spread: min and max of the per-repeat ratios)."""
    runs = {(r["side"], r["repeat"]): r[key] for r in rows if r["cell"] == cell}
    paired = sorted(repeat for side, repeat in runs if side == "old" and ("new", repeat) in runs)  # whole pairs only
    old, new = [runs["old", repeat] for repeat in paired], [runs["new", repeat] for repeat in paired]
    per_repeat = [a / b for a, b in zip(old, new)]
    return statistics.median(old), statistics.median(new), statistics.median(old) / statistics.median(new), \
        (min(per_repeat), max(per_repeat))


def report(rows: list[dict], cells: list[tuple], args) -> dict:
    lines = ["| cell | s/update old | new | ratio (range) | dev eval s old | new | wall s old | new | ratio (range) |"
             " CPU s old | new | ratio (range) | cell CPU s old | new | ratio (range) | predictions | dev old/new |"
             " test old/new |", "|" + "---|" * 18]
    summary = {"cells": {}}
    for cell in cells:
        name = ":".join(map(str, cell))
        u_old, u_new, u_ratio, u_range = ratio_summary(rows, name, "update")
        e_old, e_new, _, _ = ratio_summary(rows, name, "dev_eval")
        w_old, w_new, w_ratio, w_range = ratio_summary(rows, name, "wall")
        c_old, c_new, c_ratio, c_range = ratio_summary(rows, name, "cpu")
        k_old, k_new, k_ratio, k_range = ratio_summary(rows, name, "cell_cpu")
        first = {r["side"]: r for r in rows if r["cell"] == name and r["repeat"] == 0}
        same = same_predictions(Path(args.out), cell)
        summary["cells"][name] = {"update": [u_old, u_new, u_ratio, u_range], "wall": [w_old, w_new, w_ratio, w_range],
                                  "cpu": [c_old, c_new, c_ratio, c_range],
                                  "cell_cpu": [k_old, k_new, k_ratio, k_range],
                                  "dev_eval": [e_old, e_new], "predictions": same,
                                  "scores": {side: [first[side]["dev"], first[side]["test"]] for side in first}}
        lines.append(f"| {name} | {u_old:.3f} | {u_new:.3f} | {u_ratio:.2f}x ({u_range[0]:.2f}-{u_range[1]:.2f}) | "
                     f"{e_old:.1f} | {e_new:.1f} | {w_old:.1f} | {w_new:.1f} | {w_ratio:.2f}x ({w_range[0]:.2f}-"
                     f"{w_range[1]:.2f}) | {c_old:.1f} | {c_new:.1f} | {c_ratio:.2f}x ({c_range[0]:.2f}-{c_range[1]:.2f}) |"
                     f" {k_old:.1f} | {k_new:.1f} | {k_ratio:.2f}x ({k_range[0]:.2f}-{k_range[1]:.2f}) |"
                     f" {same} | {first['old']['dev']:.2f}/{first['new']['dev']:.2f} | "
                     f"{first['old']['test']:.2f}/{first['new']['test']:.2f} |")
    print("\n".join(lines))
    for strategy in STRATEGIES:
        ratios = [v["update"][2] for k, v in summary["cells"].items() if f":{strategy}:" in k]
        if not ratios:
            continue
        summary[f"{strategy}_update_ratio"] = math.exp(statistics.mean(math.log(r) for r in ratios))
        print(f"{strategy}: updates {summary[f'{strategy}_update_ratio']:.2f}x faster (geometric mean over cells)")
    for clock in ("wall", "cpu", "cell_cpu"):
        old_total = sum(v[clock][0] for v in summary["cells"].values())
        new_total = sum(v[clock][1] for v in summary["cells"].values())
        summary[f"whole_{clock}"] = [old_total, new_total, old_total / new_total]
        print(f"whole benchmark, {clock} seconds (medians summed): {old_total:.0f} old, {new_total:.0f} new:"
              f" {old_total / new_total:.2f}x")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="a worktree of the old commit")
    parser.add_argument("--new", type=Path, default=REPO)
    parser.add_argument("--cells", default=None, help="task:strategy:size,... (default: the 12 cells)")
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-examples", type=int, default=500)
    parser.add_argument("--new-overrides", nargs="*", default=[], help="extra overrides for the new side only")
    parser.add_argument("--no-warmup", action="store_true", help="the feature cache is filled already")
    parser.add_argument("--out", default="outputs/bench_cells")
    parser.add_argument("--json", default=None)
    parser.add_argument("--summarise", type=Path, default=None,
                        help="no runs: summarise the run lines an earlier (perhaps interrupted) run printed")
    args = parser.parse_args()
    shared = Path(os.environ.get("ELMO_BENCH_DATA", REPO.parent / "shared" / "data"))
    args.data_root = bench_data(shared, Path(args.out).resolve() / "data", args.eval_examples)
    cells = ([tuple(int(p) if p.isdigit() else p for p in c.split(":")) for c in args.cells.split(",")]
             if args.cells else [(t, s, n) for t in TASKS for s in STRATEGIES for n in SIZES])
    for cell in cells:  # the shared feature cache filled before any timing
        if cell[1] == "feature_ensemble" and not args.no_warmup and args.summarise is None:
            run_cell(args.new, *cell, Path(args.out) / "warmup", args, [])
    rows = [] if args.summarise is None else [json.loads(line) for line in args.summarise.read_text().splitlines()
                                              if line.startswith("{")]
    for repeat in range(args.repeats if args.summarise is None else 0):
        for cell in cells:
            sides = [("old", args.old, []), ("new", args.new, args.new_overrides)]
            for side, source, extra in sides if repeat % 2 == 0 else sides[::-1]:
                rows.append(measure(side, source, cell, repeat, args, extra))
                print(json.dumps(rows[-1]), flush=True)
    summary = report(rows, cells, args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": rows,
                                               "summary": summary}, indent=1))
    shutil.rmtree(Path(args.out) / "warmup", ignore_errors=True)


if __name__ == "__main__":
    main()
