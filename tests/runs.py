"""Helpers for end-to-end runs in tests: small slices of the real data files and composed configs."""
from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_dir

from elmo_bench.cell.layout import predictions_name, read_predictions
from elmo_bench.cli import setup
from elmo_bench.config import PROJECT_ROOT, RunConfig, typed

# Tests run on allennlp's 105k-parameter test biLM unless they pick a model themselves.
TEST_MODEL = "model=fixture"
# A small task model so a run takes seconds on the fixture biLM.
FAST = [
    TEST_MODEL,
    "head.hidden_dim=16",
    "head.lstm_layers=1",
    "inputs.word_dim=8",
    "trainer.max_epochs=2",
    "trainer.min_steps=0",  # the recipe's floor of updates is for real runs; tests train a few steps
    "trainer.eval_steps=1",  # score dev after every epoch
    "trainer.batch_tokens=400",
]


class OpensAMarker:
    """Unpickling this calls open(marker, "w"): the marker file exists if the checkpoint's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def write_slice(source: Path, target: Path, sentences: int) -> None:
    """The first `sentences` sentences of a CoNLL column file (blank-line separated), verbatim."""
    kept, count, in_sentence = [], 0, False
    for line in source.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.strip() and in_sentence:
            count += 1
            if count == sentences:
                break
        in_sentence = bool(line.strip()) and not line.startswith("-DOCSTART-")
        kept.append(line)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(kept), encoding="utf-8")


def conll_slice(shared: Path, root: Path, train: int = 120, dev: int = 60, test: int = 60) -> Path:
    for name, size in (("eng.train", train), ("eng.testa", dev), ("eng.testb", test)):
        write_slice(shared / "data" / "conll2003" / name, root / "conll2003" / name, size)
    return root


def offline_overrides(data_root: Path, tmp_path: Path, monkeypatch) -> list[str]:
    """A run on local files only, with its own output folder and feature cache under tmp_path."""
    monkeypatch.setenv("ELMO_BENCH_CACHE", str(tmp_path / "cache"))
    return [f"data.root={data_root}", f"output_dir={tmp_path / 'out'}", "data.use_hub=false"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def cell_predictions(folder: Path, split: str) -> list[dict]:
    """A cell's predictions of one split, from the gzipped file the runner writes."""
    return read_predictions(folder, predictions_name(split))


def make_config(overrides: list[str]) -> RunConfig:
    if not any(o.startswith("model=") for o in overrides):
        overrides = [TEST_MODEL, *overrides]
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return typed(compose("config", overrides))
