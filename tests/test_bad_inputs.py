"""The catalogue of bad inputs: each gets the exact error below, and none leaves a result behind.

| bad input                                  | error          | message names                                |
|--------------------------------------------|----------------|----------------------------------------------|
| data file with a wrong column count        | DataFormatError| file:line, expected and found column counts  |
| data file that is not UTF-8                | DataFormatError| file:line, the byte offset                   |
| training split with no sentence            | DataError      | the file                                     |
| train_size larger than the pool            | DataError      | the key, the size and the pool               |
| label outside the task's tag scheme        | DataFormatError| file:line, the label, the scheme             |
| options.json without a key                 | OptionsError   | the file and the missing key                 |
| weights file with a wrong shape            | WeightsError   | the file, the dataset, both shapes           |
| truncated hdf5 file                        | WeightsError   | the file                                     |
| URL unreachable offline                    | SourceError    | the URL and the cache path to put the file   |
| a download cut short of its Content-Length | SourceError    | the URL (never user:password), bytes got of  |
|                                            |                | announced, the cache path; nothing kept      |
|                                            |                | (tests/test_elmo_io.py)                      |
| a cached download changed since            | SourceError    | the file, its recorded sha256 file, "Delete  |
|                                            |                | <file> to download it again" (test_elmo_io)  |
| unknown task / strategy / model            | exit code 1    | the unknown name and the available options   |
| negative or zero learning rate             | ConfigError    | the key trainer.lr                           |
| a name with '/', '\\' or a leading '.'     | ConfigError    | the key (task.name, strategy.name,           |
| (task.name=../../x, model.name=.m, ...)    |                | model.name, pretraining name) and the value  |
| a cell folder led out of output_dir by a   | ConfigError    | output_dir, the folder and where it leads    |
| symlink                                    |                |                                              |
| data.subset_seed=-1, task.dev_seed=-1      | ConfigError    | the key, "must be >= 0", the value           |
| output_dir a file                          | ConfigError    | output_dir, the file, the cell folder        |
| output_dir not writable                    | ConfigError    | output_dir, the cell folder, the OS's reason |
| fp16 on CPU                                | ConfigError    | trainer.precision; before any feature is run |
| a UTF-8 byte-order mark (AG News CSV,      | (runs)         | read exactly as the file without it          |
| SQuAD JSON, options.json)                  |                |                                              |
| a feature-cache file that is torn, of      | (recomputed)   | warning: the file and what does not fit      |
| another biLM, or does not fit its texts    |                | (tests/test_faults.py)                       |
| a file or symlink planted at a temporary   | FileExistsError| never opened or followed; names are random   |
| name beside an atomically written file     |                | (tests/test_atomic.py)                       |
| a dead run's claim that two processes take | CellBusy (the  | the pid and host of the one that took it     |
| over at once                               | second)        | over (tests/test_faults.py)                  |
| a 1,000-token sentence                     | (runs)         | all 1,000 tokens tagged                      |
| an empty sentence                          | (runs)         | an all-False mask row, zero vectors          |
| checkpoint.pt torn, foreign or a pickle    | (runs afresh)  | warning: the file and why; renamed to        |
|                                            |                | checkpoint.pt.rejected-<UTC time>, never run |
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

from elmo_bench.errors import ConfigError, DataError, DataFormatError
from elmo_bench.data.squad import read_squad
from elmo_bench.elmo import OptionsError, SourceError, WeightsError, batch_to_ids, load_bilm, read_options
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.tasks import make_task

from runs import FAST, OpensAMarker, cell_predictions, conll_slice, make_config

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(tmp_path, shared_dir, monkeypatch):
    """A writable data root (slices of the real files), a copy of the fixture biLM, and overrides."""
    monkeypatch.setenv("ELMO_BENCH_CACHE", str(tmp_path / "cache"))
    root = conll_slice(shared_dir, tmp_path / "data", train=40, dev=20, test=20)
    model = tmp_path / "model"
    shutil.copytree(shared_dir / "fixtures/allennlp-elmo", model, ignore=shutil.ignore_patterns("config"))
    overrides = [*FAST, f"data.root={root}", "data.use_hub=false", f"output_dir={tmp_path / 'out'}", "task=ner",
                 "model=custom", f"model.options_file={model / 'options.json'}",
                 f"model.weight_file={model / 'lm_weights.hdf5'}", "trainer.max_epochs=1", "trainer.min_steps=0"]
    return root, model, overrides, tmp_path / "out"


def assert_fails(overrides, out: Path, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        run(make_config(overrides))
    assert not list(out.rglob("result.json")), "a failed run left a result the report would read"


def edit_line(path: Path, number: int, change) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_bytes(b"\n".join(lines))


def test_wrong_column_count(setup):
    root, _, overrides, out = setup
    edit_line(root / "conll2003/eng.train", 5, lambda line: line.rsplit(b" ", 1)[0])
    assert_fails(overrides, out, DataFormatError, r"eng\.train:5: expected 4 columns .*found 3")


def test_not_utf8(setup):
    root, _, overrides, out = setup
    edit_line(root / "conll2003/eng.testa", 7, lambda line: b"caf\xe9" + line[line.index(b" "):])
    assert_fails(overrides, out, DataFormatError, r"eng\.testa:7: not valid utf-8")


def test_empty_training_split(setup):
    root, _, overrides, out = setup
    (root / "conll2003/eng.train").write_text("-DOCSTART- -X- O O\n\n", encoding="utf-8")
    assert_fails(overrides, out, DataError, r"eng\.train: no sentences")


def test_train_size_larger_than_pool(setup):
    _, _, overrides, out = setup
    assert_fails([*overrides, "data.train_size=41"], out, DataError,
                 r"data\.train_size=41 is larger than the training pool \(40 examples\)")


def test_label_outside_the_scheme(setup):
    root, _, overrides, out = setup
    edit_line(root / "conll2003/eng.train", 3, lambda line: line.rsplit(b" ", 1)[0] + b" X-PER")
    assert_fails(overrides, out, DataFormatError, r"eng\.train:3: label 'X-PER' is not a iob1 tag")


def test_options_missing_key(setup):
    _, model, overrides, out = setup
    options = json.loads((model / "options.json").read_text())
    del options["lstm"]["projection_dim"]
    (model / "options.json").write_text(json.dumps(options))
    assert_fails(overrides, out, OptionsError, r"options\.json lstm: missing key 'projection_dim'")


def test_weights_wrong_shape(setup):
    _, model, overrides, out = setup
    with h5py.File(model / "lm_weights.hdf5", "r+") as handle:
        del handle["CNN_proj/W_proj"]
        handle["CNN_proj/W_proj"] = torch.zeros(124, 15).numpy()
    assert_fails(overrides, out, WeightsError,
                 r"lm_weights\.hdf5: dataset 'CNN_proj/W_proj' has shape \(124, 15\), the options file implies \(124, 16\)")


def test_truncated_hdf5(setup):
    _, model, overrides, out = setup
    weights = model / "lm_weights.hdf5"
    weights.write_bytes(weights.read_bytes()[:200_000])
    assert_fails(overrides, out, WeightsError, r"lm_weights\.hdf5")


def test_url_unreachable_offline(setup):
    _, _, overrides, out = setup
    url = "http://127.0.0.1:9/elmo/options.json"
    assert_fails([*overrides, f"model.options_file={url}"], out, SourceError,
                 r"cannot download http://127\.0\.0\.1:9/elmo/options\.json .* put it at .*127\.0\.0\.1_9/elmo/options\.json")


@pytest.mark.parametrize("lr", ["-0.001", "0"])
def test_learning_rate_not_positive(setup, lr):
    _, _, overrides, out = setup
    with pytest.raises(ConfigError, match=rf"config key 'trainer\.lr': must be > 0, got {float(lr)}"):
        make_config([*overrides, f"trainer.lr={lr}"])


@pytest.mark.parametrize(("override", "key", "why"), [
    ("task.name=../../x", "task.name", "must be one name without '/'"),
    ("task.name=..", "task.name", "must not start with '.'"),
    ("strategy.name=a\\b", "strategy.name", "must be one name without '/'"),
    ("model.name=.m", "model.name", "must not start with '.'"),
])
def test_a_name_that_is_not_one_folder(setup, override, key, why):
    _, _, overrides, _ = setup
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}': names a folder, so it {why}"):
        make_config([*overrides, override])


def test_a_cell_folder_led_out_of_output_dir(setup, tmp_path):
    _, _, overrides, out = setup
    out.mkdir()
    (out / "ner").symlink_to(tmp_path, target_is_directory=True)
    before = sorted(tmp_path.iterdir())
    assert_fails(overrides, out, ConfigError, r"config key 'output_dir': the cell folder .*ner/.* outside ")
    assert sorted(tmp_path.iterdir()) == before  # nothing written where the link leads


@pytest.mark.parametrize(("override", "message"), [
    ("data.subset_seed=-1", r"config key 'data\.subset_seed': must be >= 0 or null \(the run's seed\), got -1"),
    ("task.dev_seed=-1", r"config key 'task\.dev_seed': must be >= 0, got -1"),
])
def test_a_negative_seed(setup, override, message):
    _, _, overrides, _ = setup
    with pytest.raises(ConfigError, match=message):
        make_config([*overrides, override])


def test_output_dir_is_a_file(setup, tmp_path):
    _, _, overrides, out = setup
    out.write_text("not a folder")
    assert_fails(overrides, tmp_path / "elsewhere", ConfigError,
                 rf"config key 'output_dir': {re.escape(str(out))} is a file, not a folder \(cell folder ")


@pytest.mark.parametrize("sweep", [False, True])
def test_output_dir_a_file_on_the_command_line_is_one_line_and_exit_2(setup, tmp_path, sweep):
    """Hydra makes the run's folder before elmo-bench runs; the check must come first, not Hydra's traceback."""
    _, _, overrides, _ = setup
    out = tmp_path / "a_file"
    out.write_text("not a folder")
    command = [sys.executable, "-m", "elmo_bench.cli", *(["-m"] if sweep else []), *overrides, f"output_dir={out}"]
    completed = subprocess.run(command, text=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               timeout=300)
    assert completed.returncode == 2 and "Traceback" not in completed.stdout + completed.stderr
    assert f"config key 'output_dir': {out} is a file, not a folder" in completed.stdout + completed.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs refuses new folders, even to root")
def test_output_dir_not_writable(setup):
    _, _, overrides, _ = setup
    with pytest.raises(ConfigError, match=r"config key 'output_dir': cannot write the cell folder /sys/elmo-bench"
                                          r"/.* \(Operation not permitted: /sys/elmo-bench\)"):
        run(make_config([*overrides, "output_dir=/sys/elmo-bench"]))


def test_fp16_on_cpu_fails_before_any_feature(setup, tmp_path):
    _, _, overrides, out = setup
    assert_fails([*overrides, "strategy=feature_ensemble", "trainer.device=cpu", "trainer.precision=fp16"], out,
                 ConfigError, r"config key 'trainer\.precision': fp16 needs CUDA; use bf16 on CPU")
    assert not (tmp_path / "cache").exists()  # the frozen biLM's features were never computed


def first_lines(source: Path, target: Path, count: int, encoding: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:count]), encoding=encoding)


def test_a_byte_order_mark_is_read_past(setup, shared_dir, tmp_path):
    _, model, overrides, _ = setup
    for root, encoding in ((tmp_path / "plain", "utf-8"), (tmp_path / "marked", "utf-8-sig")):  # -sig: a BOM
        for name in ("train_sample20k.csv", "test.csv"):
            first_lines(shared_dir / "data/ag_news" / name, root / "ag_news" / name, 40, encoding)
        first_lines(model / "options.json", root / "options.json", 1000, encoding)
        squad = {"data": [{"title": "T", "paragraphs": [{"context": "A cat sat .", "qas": [
            {"id": "q1", "question": "Who sat ?", "answers": [{"answer_start": 2, "text": "cat"}]}]}]}]}
        (root / "squad.json").write_text(json.dumps(squad), encoding=encoding)
    task = make_task(make_config([*overrides, "task=agnews"]).task)
    plain, marked = (task.load(str(tmp_path / root), False) for root in ("plain", "marked"))
    assert (marked.train, marked.dev, marked.test) == (plain.train, plain.dev, plain.test)
    assert read_options(tmp_path / "marked/options.json") == read_options(tmp_path / "plain/options.json")
    assert read_squad(tmp_path / "marked/squad.json") == read_squad(tmp_path / "plain/squad.json")


@pytest.mark.parametrize(("override", "listed"), [("task=nosuch", "ner"), ("strategy=nosuch", "finetune"),
                                                  ("model=nosuch", "fixture")])
def test_unknown_group_option(setup, override, listed):
    _, _, overrides, out = setup
    completed = subprocess.run([sys.executable, "-m", "elmo_bench.cli", *overrides, override], text=True,
                               capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert completed.returncode == 1
    assert "nosuch" in completed.stderr and listed in completed.stderr  # Hydra lists the options
    assert not list(out.rglob("result.json"))


def test_a_1000_token_sentence_is_tagged_whole(setup):
    root, _, overrides, out = setup
    test_file = root / "conll2003/eng.testb"
    long_sentence = "".join(f"word{i} NN I-NP {'I-PER' if i % 7 == 0 else 'O'}\n" for i in range(1000))
    test_file.write_text(test_file.read_text() + "\n" + long_sentence + "\n", encoding="utf-8")
    run(make_config(overrides))
    rows = cell_predictions(next(out.rglob("predictions")).parent, "test")
    assert len(rows[-1]["gold"]) == len(rows[-1]["pred"]) == 1000


def test_an_empty_sentence_in_a_batch(shared_dir):
    bilm = load_bilm(shared_dir / "fixtures/allennlp-elmo/options.json",
                     shared_dir / "fixtures/allennlp-elmo/lm_weights.hdf5")
    with torch.no_grad():
        layers, mask = bilm(batch_to_ids([[], ["Hello", "world"]]))
        alone, _ = bilm(batch_to_ids([["Hello", "world"]]))
    assert mask.tolist() == [[False, False], [True, True]]
    assert all(float(layer[0].abs().max()) == 0.0 for layer in layers)
    assert all(torch.allclose(layer[1], single[0], atol=1e-6) for layer, single in zip(layers, alone))


def plant_checkpoint(kind: str, path: Path, marker: Path) -> str:
    """Write a bad checkpoint of `kind`; returns the warning it must give."""
    if kind == "pickle":
        torch.save({"progress": OpensAMarker(marker)}, path)
        return r"holds a pickled object \(\S*open\) and is not loaded"
    if kind == "torn":
        path.write_bytes(b"PK\x03\x04 torn")
        return r"is damaged \("
    torch.save({"progress": {}, "model": {"weight": torch.zeros(3)}, "best_model": None, "optimizer": {},
                "rng": torch.get_rng_state(), "cuda_rng": None}, path)
    return r"does not fit this run \(model: the keys differ"


def test_a_bad_checkpoint_is_set_aside_unrun_and_the_cell_starts_afresh(setup, tmp_path, caplog):
    _, _, overrides, out = setup
    fresh = run(make_config([*overrides, f"output_dir={out}/fresh"]))
    for kind in ("pickle", "torn", "foreign"):
        config = make_config([*overrides, f"output_dir={out}/{kind}"])
        folder = cell_dir(config)
        folder.mkdir(parents=True)
        warning = plant_checkpoint(kind, folder / "checkpoint.pt", tmp_path / "marker")
        caplog.clear()
        assert run(config)["metrics"] == fresh["metrics"], kind
        assert not (tmp_path / "marker").exists(), "the planted checkpoint's code ran"
        assert re.search(rf"checkpoint .*{kind}/.*checkpoint\.pt {warning}", caplog.text), caplog.text
        assert len(list(folder.glob("checkpoint.pt.rejected-*"))) == 1, kind
