"""scripts/collect_cells.py: finished cells go to the folder to commit, unfinished ones stay; the predictions
archive is the same bytes for the same cells and keeps cells the sweep folder no longer holds."""
from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from elmo_bench.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import collect_cells  # noqa: E402


def make_cell(root: Path, cell: str, finished: bool) -> None:
    folder = root / cell
    (folder / "predictions").mkdir(parents=True)
    (folder / "predictions" / "test.jsonl").write_text(json.dumps({"id": cell, "pred": 1}) + "\n")
    (folder / "checkpoint.pt").write_bytes(b"weights")
    if finished:
        (folder / "result.json").write_text(json.dumps({"status": "complete", "cell": cell}))


def archive_names(target: Path) -> list[str]:
    with tarfile.open(target / "predictions.tar.gz") as archive:
        return sorted(archive.getnames())


def test_finished_cells_are_collected_reproducibly_and_kept(tmp_path):
    sweep, target = tmp_path / "sweep", tmp_path / "results"
    make_cell(sweep, "ner/finetune/cpu-small/n100/seed1", finished=True)
    make_cell(sweep, "ner/finetune/cpu-small/n100/seed2", finished=False)
    assert collect_cells.collect(sweep, target) == 1
    collect_cells.pack(target)
    first = (target / "predictions.tar.gz").read_bytes()
    assert archive_names(target) == ["./ner/finetune/cpu-small/n100/seed1/predictions/test.jsonl"]
    assert sorted(p.name for p in (target / "ner/finetune/cpu-small/n100/seed1").iterdir()) == ["result.json"]
    assert not (target / "ner/finetune/cpu-small/n100/seed2").exists() and not (target / ".predictions").exists()
    assert collect_cells.collect(sweep, target) == 0  # again: nothing new, the same bytes
    collect_cells.pack(target)
    assert (target / "predictions.tar.gz").read_bytes() == first
    (tmp_path / "empty").mkdir()
    collect_cells.collect(tmp_path / "empty", target)  # the sweep folder is gone: packed cells stay
    collect_cells.pack(target)
    assert (target / "predictions.tar.gz").read_bytes() == first
