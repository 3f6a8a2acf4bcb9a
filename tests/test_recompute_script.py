"""scripts/recompute_metrics.py: independent metrics from predictions files, mismatches reported."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "recompute_metrics.py"
spec = importlib.util.spec_from_file_location("recompute_metrics", SCRIPT)
recompute_metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recompute_metrics)


def write_cell(folder: Path, metric: str, rows: list[dict], recorded: float) -> None:
    (folder / "predictions").mkdir(parents=True)
    for split in ("dev", "test"):
        (folder / "predictions" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = {"status": "complete", "task": "t", "dataset": "d", "strategy": "s", "model": "m", "train_size": 1,
              "seed": 1, "train_seconds": 1.0, "trainable_params": 1, "metric": metric, "dev": recorded,
              "test": recorded, "predictions": {"dev": "predictions/dev.jsonl", "test": "predictions/test.jsonl"}}
    (folder / "result.json").write_text(json.dumps(result))


@pytest.mark.parametrize(("metric", "rows", "expected"), [
    # 2 gold entities, 1 found exactly and 1 spurious: P = R = 1/2
    ("f1", [{"gold": ["B-PER", "I-PER", "O", "B-LOC"], "pred": ["B-PER", "I-PER", "B-ORG", "O"]}], 50.0),
    ("accuracy", [{"gold": ["NN", "VB"], "pred": ["NN", "NN"]}, {"gold": ["DT"], "pred": ["DT"]}], 200 / 3),
    ("accuracy", [{"gold": "World", "pred": "World"}, {"gold": "Sports", "pred": "World"}], 50.0),
    ("pearson", [{"gold": 1.0, "pred": 2.0}, {"gold": 2.0, "pred": 4.0}, {"gold": 3.0, "pred": 7.0}],
     100 * 0.9933992677987828),
    # "The Eiffel tower!" vs "eiffel tower" is exact after normalisation; the second shares 1 of 2 tokens
    ("f1", [{"gold": ["The Eiffel tower!"], "pred": "eiffel tower"}, {"gold": ["red car"], "pred": "car"},
            {"gold": ["x"], "pred": None}], 100 * (1 + 2 / 3 + 0) / 3),
])
def test_recomputed_values(metric, rows, expected):
    assert recompute_metrics.recompute(metric, rows) == pytest.approx(expected)


def test_main_reports_agreement_and_mismatch(tmp_path, capsys):
    rows = [{"gold": "a", "pred": "a"}, {"gold": "b", "pred": "a"}]
    write_cell(tmp_path / "good", "accuracy", rows, 50.0)
    assert recompute_metrics.main([str(tmp_path / "good")]) == 0
    write_cell(tmp_path / "bad", "accuracy", rows, 75.0)
    assert recompute_metrics.main([str(tmp_path)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert recompute_metrics.main([str(tmp_path / "empty")]) == 2


def test_extra_test_sets_are_recomputed_too(tmp_path, capsys):
    rows = [{"gold": "a", "pred": "a"}, {"gold": "b", "pred": "a"}, {"gold": "b", "pred": "b"}]
    for recorded, status in ((200 / 3, 0), (50.0, 1)):
        folder = tmp_path / str(status)
        write_cell(folder, "accuracy", rows, 200 / 3)
        (folder / "predictions" / "extra_web.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = json.loads((folder / "result.json").read_text())
        result["extra_test"] = {"web": {"metric": "accuracy", "score": recorded,
                                        "predictions": "predictions/extra_web.jsonl"}}
        (folder / "result.json").write_text(json.dumps(result))
        assert recompute_metrics.main([str(folder)]) == status
    output = capsys.readouterr().out
    assert "ok       " in output and "MISMATCH" in output and "extra_test.web accuracy: recorded 50.0000" in output
