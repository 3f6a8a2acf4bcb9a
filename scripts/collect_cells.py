"""Copy the finished cells of a sweep into a folder to commit: each cell's result.json and its gzipped predictions
(no checkpoints, no feature caches, no logs), each file written once.

    python scripts/collect_cells.py outputs/study_v2 results/study_v2

A cell is finished when its folder holds result.json; unfinished cells are left where they are (they resume).
Running it again copies only the cells finished since: a collected cell is never rewritten, so committing a new
cell adds its own files and nothing else (no archive that every new cell would rewrite). Predictions written as
plain `.jsonl` by older runs are gzipped on the way (with a fixed header: the same file gives the same bytes);
result.json keeps naming them as the run wrote them, and the readers find the `.gz` beside that name.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

from elmo_bench.cell.layout import PREDICTIONS_DIR, RESULT_FILE, cell_folders


def copy_predictions(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.jsonl*")):
        if path.suffix == ".gz":
            shutil.copy2(path, destination / path.name)
            continue
        with open(path, "rb") as plain, open(destination / f"{path.name}.gz", "wb") as out, \
                gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as zipped:
            shutil.copyfileobj(plain, zipped)


def collect(source: Path, target: Path) -> int:
    """Copy the finished cells of `source` that `target` does not hold yet; their number."""
    copied = 0
    for folder in cell_folders(source):
        if not (folder / RESULT_FILE).is_file():
            continue
        destination = target / folder.relative_to(source)
        if (destination / RESULT_FILE).is_file():
            continue  # collected before: written once
        copy_predictions(folder / PREDICTIONS_DIR, destination / PREDICTIONS_DIR)
        shutil.copy2(folder / RESULT_FILE, destination / RESULT_FILE)  # last: its presence marks the cell complete
        copied += 1
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the sweep's output_dir")
    parser.add_argument("target", type=Path, help="the folder to commit, e.g. results/<study name>")
    args = parser.parse_args()
    copied = collect(args.source, args.target)
    total = sum((folder / RESULT_FILE).is_file() for folder in cell_folders(args.target))
    print(f"{copied} new cells; {total} cells in {args.target}")


if __name__ == "__main__":
    main()
