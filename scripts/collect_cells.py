"""Copy the finished cells of a sweep into a folder to commit: each cell's result.json, and every cell's
predictions in one predictions.tar.gz (no checkpoints, no feature caches, no logs).

    python scripts/collect_cells.py outputs/study_cpu results/study_cpu

A cell is finished when its folder holds result.json; unfinished cells are left where they are (they resume).
Running it again adds the cells finished since; the archive is rebuilt from every collected cell, in sorted order
with fixed timestamps, so the same cells give the same bytes. Cells already packed keep their predictions even when the source no longer
holds them. Then `tar xzf predictions.tar.gz` inside the target
restores the predictions beside each result.json, for `elmo-bench-report` and `recompute_metrics.py`.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import tarfile
from pathlib import Path


def collect(source: Path, target: Path) -> int:
    """Copy finished cells from `source` to `target` and stage every cell's predictions (those already packed
    first); the number of cells new to `target`."""
    staged = target / ".predictions"
    if (target / "predictions.tar.gz").is_file():
        with tarfile.open(target / "predictions.tar.gz") as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith(".jsonl"):
                    cell = Path(member.name).parent.parent  # <cell>/predictions/<split>.jsonl
                    (staged / cell).mkdir(parents=True, exist_ok=True)
                    (staged / cell / Path(member.name).name).write_bytes(archive.extractfile(member).read())
    copied = 0
    for result in sorted(source.glob("*/*/*/n*/seed*/result.json")):
        cell = result.parent.relative_to(source)
        destination = target / cell
        if not (destination / "result.json").is_file():
            copied += 1
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy2(result, destination / "result.json")
        for predictions in sorted((result.parent / "predictions").glob("*.jsonl")):
            (staged / cell).mkdir(parents=True, exist_ok=True)
            shutil.copy2(predictions, staged / cell / predictions.name)
    return copied


def pack(target: Path) -> None:
    """predictions.tar.gz from target/.predictions, as <cell>/predictions/<split>.jsonl, reproducibly."""
    staged = target / ".predictions"
    with gzip.GzipFile(target / "predictions.tar.gz", "wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(staged.rglob("*.jsonl")):
            cell = path.parent.relative_to(staged)
            info = archive.gettarinfo(str(path), arcname=f"./{cell}/predictions/{path.name}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(path, "rb") as handle:
                archive.addfile(info, handle)
    shutil.rmtree(staged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the sweep's output_dir")
    parser.add_argument("target", type=Path, help="the folder to commit, e.g. results/<study name>")
    args = parser.parse_args()
    copied = collect(args.source, args.target)
    pack(args.target)
    total = len(list(args.target.glob("*/*/*/n*/seed*/result.json")))
    print(f"{copied} new cells; {total} cells in {args.target}, predictions in {args.target / 'predictions.tar.gz'}")


if __name__ == "__main__":
    main()
