"""scripts/collect_cells.py: finished cells go to the folder to commit, each file written once; unfinished ones
stay; plain predictions are gzipped, to the same bytes for the same file."""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from elmo_bench.cell.layout import read_predictions
from elmo_bench.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import collect_cells  # noqa: E402

CELL = "ner/finetune/cpu-small/n100/seed1"


def make_cell(root: Path, cell: str, finished: bool) -> None:
    folder = root / cell
    (folder / "predictions").mkdir(parents=True)
    (folder / "predictions" / "test.jsonl").write_text(json.dumps({"id": cell, "pred": 1}) + "\n")
    (folder / "checkpoint.pt").write_bytes(b"weights")
    if finished:
        (folder / "result.json").write_text(json.dumps({"status": "complete", "cell": cell}))


def files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_finished_cells_are_collected_once_with_gzipped_predictions(tmp_path):
    sweep, target = tmp_path / "sweep", tmp_path / "results"
    make_cell(sweep, CELL, finished=True)
    make_cell(sweep, "ner/finetune/cpu-small/n100/seed2", finished=False)
    assert collect_cells.collect(sweep, target) == 1
    first = files(target)
    assert sorted(first) == [f"{CELL}/predictions/test.jsonl.gz", f"{CELL}/result.json"]
    assert gzip.decompress(first[f"{CELL}/predictions/test.jsonl.gz"]) == (sweep / CELL / "predictions/test.jsonl").read_bytes()
    # result.json names the plain file, as the run wrote it; the reader finds the .gz beside it
    assert read_predictions(target / CELL, "predictions/test.jsonl") == [{"id": CELL, "pred": 1}]
    (sweep / CELL / "result.json").write_text("changed")  # a collected cell is never rewritten
    assert collect_cells.collect(sweep, target) == 0 and files(target) == first
    make_cell(sweep, "ner/finetune/cpu-small/n100/seed3", finished=True)
    assert collect_cells.collect(sweep, target) == 1  # one new cell adds only its own files
    added = set(files(target)) - set(first)
    assert added == {f"ner/finetune/cpu-small/n100/seed3/{name}" for name in ("predictions/test.jsonl.gz", "result.json")}
    assert {k: v for k, v in files(target).items() if k in first} == first
