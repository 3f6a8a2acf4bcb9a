"""The catalogue of bad inputs: each gets the exact error below, and none leaves a result behind. The cases added
by issue 56 (after the table's last row, from the "issue 56" heading on) are listed with their messages in
docs/robustness.md.

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


# --- issue 56: each bad input below gives one line naming its file:line or key ------------------------------------

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def own_tagging(root: Path, train: str, test: str, *extra: str) -> list[str]:
    write(root / "own/train.txt", train)
    write(root / "own/test.txt", test)
    return ["task=tagging", "task.train_file=own/train.txt", "task.test_file=own/test.txt", "task.dev_size=1", *extra]


def load_task(overrides: list[str], root: Path):
    task = make_task(make_config([*overrides, "data.use_hub=false"]).task)
    return task, task.load(str(root), use_hub=False)


TAGGED = "EU B-ORG\nrejects O\n\nPeter B-PER\nsaid O\n\nBonn B-LOC\nwins O\n"


@pytest.mark.parametrize(("override", "message"), [
    ("seed=-1", r"config key 'seed': must be >= 0, got -1"),
    ("trainer.lr=inf", r"config key 'trainer\.lr': must be a finite number, got inf"),
    ("trainer.grad_clip=-inf", r"config key 'trainer\.grad_clip': must be > 0 or null, got -inf"),
    ("task.offline_split.seed=-2", r"config key 'task\.offline_split\.seed': must be >= 0, got -2"),
    ("model=transformer", r"config key 'model\.name': must be set, it has no default; add model\.name=VALUE"),
    ("model=custom", r"config key 'model\.options_file': must be set, it has no default"),
    ("task=tagging", r"config key 'task\.train_file': not set, and no task\.hub_id either"),
    ("task=classification", r"config key 'task\.train_file': not set, and no task\.hub_id either"),
])
def test_a_config_value_is_named_before_any_work(override, message):
    extra = ["task=squad"] if override.startswith("task.offline_split") else []
    with pytest.raises(ConfigError, match=message):
        make_config([*extra, override])


@pytest.mark.parametrize("override", ["trainer.max_epochs=true", "data.train_size=true", "trainer.lr=false"])
def test_a_boolean_where_a_number_is_meant(override):
    """The typed schema refuses it as Hydra composes the config: its message names the override and the type."""
    with pytest.raises(Exception, match=rf"Error merging override {re.escape(override)}") as error:
        make_config([override])
    assert "of type 'bool' could not be converted" in str(error.value.__cause__)


@pytest.mark.parametrize("override", ["model=transformer", "seed=-1", "task=tagging"])
def test_a_start_up_error_is_one_line_and_exit_2_not_a_traceback(tmp_path, override):
    completed = subprocess.run([sys.executable, "-m", "elmo_bench.cli", override, f"output_dir={tmp_path / 'out'}"],
                               text=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2 and "Traceback" not in output and "config key '" in output, output
    assert not (tmp_path / "out").exists()  # checked before Hydra made the run's folder


def test_f1_without_a_chunk_scheme_names_task_scheme():
    with pytest.raises(ConfigError, match=r"config key 'task\.scheme': task\.metric=f1 scores entity spans, which"
                                          r" needs a chunk scheme"):
        make_config(["task=tagging", "task.train_file=a", "task.test_file=b", "task.metric=f1", "task.scheme=none"])


@pytest.mark.parametrize(("train", "scheme", "metric"), [
    ("EU I-ORG\nrejects O\n\nBonn B-LOC\nwins O\n", "iob1", "f1"),      # I- opens a chunk: IOB1
    ("EU B-ORG\nrejects O\n\nBonn B-LOC\nwins I-LOC\n", "iob2", "f1"),
    ("EU S-ORG\nrejects O\n\nBonn B-LOC\nwins E-LOC\n", "bioes", "f1"),
    ("EU NNP\nrejects VBZ\n\nBonn NNP\nwins VBZ\n", "none", "accuracy"),
])
def test_tagging_reads_its_scheme_and_metric_from_the_labels(tmp_path, train, scheme, metric):
    task, splits = load_task(own_tagging(tmp_path, train, train), tmp_path)
    assert (task.scheme, task.metric) == (scheme, metric)
    assert (splits.details["tag_scheme"], splits.details["scheme_from"], splits.details["metric_from"]) == (
        scheme, "labels", "scheme")
    assert splits.details["counts"]["test"]["sentences"] == 2 and splits.details["counts"]["test"]["tokens"] == 4


def test_an_explicit_metric_still_overrides_the_labels(tmp_path):
    task, _ = load_task(own_tagging(tmp_path, TAGGED, TAGGED, "task.metric=accuracy"), tmp_path)
    assert (task.scheme, task.metric) == ("iob2", "accuracy")


@pytest.mark.parametrize(("train", "test", "message"), [
    ("EU B-ORG\nrejects NN\n", TAGGED,
     r"own/train\.txt:2: label 'NN' is a plain tag, but line 1 has 'B-ORG', a chunk tag"),
    (TAGGED, "Rome B-GPE\n", r"own/test\.txt:1: label 'B-GPE' is not among the training data's tags"),
    ("EU B-ORG\nrejects O\x00\n", TAGGED, r"own/train\.txt:2: control character U\+0000 at column 10"),
    ("# sent_id = 1\n1\tEU\teu\tPROPN\tNNP\t_\t0\troot\t_\t_\n", TAGGED,
     r"own/train\.txt:2: expected 4 columns .* set task\.format=conllu"),
])
def test_a_bad_tag_file_names_its_line(tmp_path, train, test, message):
    with pytest.raises(DataFormatError, match=message):
        load_task(own_tagging(tmp_path, train, test, "task.unseen_labels=error"), tmp_path)


def test_a_folder_or_a_symlink_loop_given_as_a_data_file(tmp_path):
    overrides = own_tagging(tmp_path, TAGGED, TAGGED)
    (tmp_path / "own/test.txt").unlink()
    (tmp_path / "own/test.txt").mkdir()
    with pytest.raises(DataError, match=r"task\.test_file: .*own/test\.txt is a folder, not a data file"):
        load_task(overrides, tmp_path)
    (tmp_path / "own/test.txt").rmdir()
    (tmp_path / "own/test.txt").symlink_to(tmp_path / "own/test.txt")
    with pytest.raises(DataError, match=r"task\.test_file: data file not found: .*test\.txt \(a symlink loop\)"):
        load_task(overrides, tmp_path)


def test_an_extra_test_error_names_its_key(tmp_path):
    overrides = own_tagging(tmp_path, TAGGED, TAGGED, "+task.extra_test.web=own/web.txt")
    write(tmp_path / "own/web.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"^task\.extra_test\.web: .*own/web\.txt:2: expected 2 columns"):
        load_task(overrides, tmp_path)


def own_classification(root: Path, name: str, train: str, test: str) -> list[str]:
    write(root / f"cls/train.{name}", train)
    write(root / f"cls/test.{name}", test)
    return ["task=classification", f"task.format={name}", f"task.train_file=cls/train.{name}",
            f"task.test_file=cls/test.{name}", "task.dev_size=1"]


CSV_TRAIN = "text,label\ngood film,pos\nbad film,neg\nfine film,pos\n"


@pytest.mark.parametrize(("name", "train", "message"), [
    ("csv", CSV_TRAIN + "a\x00b,neg\n", r"train\.csv:5: control character U\+0000 at column 2"),
    ("csv", CSV_TRAIN + "no label,\n", r"train\.csv:5: empty label \(task\.label_column=label\)"),
    ("jsonl", '{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n{"text": "odd", "label": 3}\n',
     r"train\.jsonl:3: label 3 \(task\.label_column=label\) is a number, but line 1's label is a string"),
    ("jsonl", '{"text": "go\\u0000od", "label": "pos"}\n{"text": "bad", "label": "neg"}\n',
     r"train\.jsonl:1: control character U\+0000 at column 3 in field 'text'"),
    ("csv", CSV_TRAIN + "odd film,n\x01eg\n",
     r"train\.csv:5: control character U\+0001 at column 2 in the label \(task\.label_column=label\)"),
])
def test_a_bad_classification_row_names_its_line(tmp_path, name, train, message):
    with pytest.raises(DataFormatError, match=message):
        load_task(own_classification(tmp_path, name, train, train), tmp_path)


def test_a_control_character_other_than_nul_in_a_text_is_read_as_text(tmp_path):
    """Public data holds them (STS-B's train.tsv has a U+0012 in one sentence): only a NUL marks a broken file."""
    _, splits = load_task(own_classification(tmp_path, "csv", CSV_TRAIN + "odd\x12film,neg\n", CSV_TRAIN), tmp_path)
    assert "".join(splits.train[-1].texts[0]) == "odd\x12film" and splits.train[-1].label == "neg"


def test_a_test_class_unseen_in_training_names_its_line(tmp_path):
    with pytest.raises(DataFormatError, match=r"test\.csv:3: label 'meh' is not one of the classes"):
        load_task(own_classification(tmp_path, "csv", CSV_TRAIN, "text,label\nok,pos\nso so,meh\n"), tmp_path)


def test_a_json_true_score_is_not_a_number(tmp_path):
    rows = "".join(f'{{"sentence1": "a {i}", "sentence2": "b", "score": {score}}}\n'
                   for i, score in enumerate(["1.0", "2.0", "true"]))
    write(tmp_path / "p/train.jsonl", rows)
    write(tmp_path / "p/test.jsonl", rows)
    overrides = ["task=pair_regression", "task.format=jsonl", "task.train_file=p/train.jsonl",
                 "task.test_file=p/test.jsonl", "task.dev_size=1"]
    with pytest.raises(DataFormatError, match=r"train\.jsonl:3: score \(task\.score_column=score\) True is not a"
                                              " number"):
        load_task(overrides, tmp_path)


def test_a_duplicate_question_id_in_squad(tmp_path):
    qa = {"id": "q1", "question": "Who sat ?", "answers": [{"answer_start": 2, "text": "cat"}]}
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "A cat sat .", "qas": [qa]},
                                                      {"context": "A cat ran .", "qas": [qa]}]}]}
    write(tmp_path / "squad.json", json.dumps(squad))
    with pytest.raises(DataFormatError, match=r"squad\.json: data\[0\]\.paragraphs\[1\]: question id 'q1' occurs"
                                              r" again \(first in data\[0\]\.paragraphs\[0\]\)"):
        read_squad(tmp_path / "squad.json")


def test_min_steps_overriding_max_epochs_is_said(caplog):
    from elmo_bench.training import Budget

    budget = Budget.plan(make_config(["trainer.max_epochs=3", "trainer.min_steps=300"]).trainer, steps_per_epoch=20)
    assert budget.steps == 300  # 15 epochs of 20
    assert "trainer.min_steps=300 needs 15 epochs of 20 batches, more than trainer.max_epochs=3" in caplog.text


@pytest.mark.parametrize("target", ["a_file", "a_file/report"])
def test_report_out_at_a_file(tmp_path, capsys, target):
    from elmo_bench.report.cli import main as report_main

    (tmp_path / "a_file").write_text("x")
    assert report_main([str(tmp_path), "--out", str(tmp_path / target)]) == 2
    assert f"--out {tmp_path / target}: {tmp_path / 'a_file'} is a file, not a folder" in capsys.readouterr().err


def test_report_out_not_writable(capsys):
    from elmo_bench.report.cli import main as report_main

    assert report_main(["/nonexistent", "--out", "/proc/elmo-bench-report"]) == 2
    assert "--out /proc/elmo-bench-report: cannot write in /proc" in capsys.readouterr().err


def test_the_report_refuses_a_result_whose_identity_is_not_its_folders(tmp_path):
    from elmo_bench.report.load import InvalidResult, load_result

    folder = tmp_path / "ner/finetune/fixture/n40/seed1"
    folder.mkdir(parents=True)
    result = {"status": "complete", "task": "ner", "dataset": "d", "strategy": "feature_ensemble", "model": "fixture",
              "train_size": 40, "requested_train_size": 40, "seed": 1, "metric": "f1", "dev": 1.0, "test": 1.0,
              "train_seconds": 1.0, "trainable_params": 1}
    (folder / "result.json").write_text(json.dumps(result))
    with pytest.raises(InvalidResult, match=r"identity: its strategy is 'feature_ensemble', but its folder says"
                                            r" 'finetune'"):
        load_result(folder / "result.json")


def fake_cell(folder: Path, family: str, strategy: str, trainable: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({
        "status": "complete", "dataset": "x", "model": "fixture", "metric": "accuracy", "dev": 50.0, "test": 50.0,
        "train_seconds": 1.0,
        "scalar_mix": {"weights": [0.2, 0.3, 0.5], "gamma": 1.0}, "config": {"inputs": {"layer_norm": False}},
        "task": "x", "task_family": family, "strategy": strategy, "train_size": 40, "seed": 1,
        "trainable_params": trainable, "total_params": 110, "encoder_params": 100}))
    return folder


@pytest.mark.parametrize(("family", "strategy", "trainable", "message"), [
    ("tagging", "finetune", 110, r"tuned the encoder but kept no encoder\.pt \(keep_encoder=true\)"),
    ("classification", "feature_ensemble", 10, r"is a classification run \(x\); its mix weighs layers for that task"),
])
def test_a_probe_refuses_a_mix_it_cannot_honour(tmp_path, family, strategy, trainable, message):
    from test_probe import probe_config

    from elmo_bench.probe import run_probe

    cell = fake_cell(tmp_path / "cell", family, strategy, trainable)
    with pytest.raises(ConfigError, match=rf"config key 'probe\.cell': .*{message}"):
        run_probe(probe_config(["task=pos", "model=fixture", f"output_dir={tmp_path / 'out'}", f"probe.cell={cell}"]))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("", r"0 token windows, and heldout_sentences=30 holds out all of them"),
    ("one line .\n", r"1 token windows, and heldout_sentences=30 holds out all of them"),
])
def test_pretraining_refuses_a_corpus_with_nothing_to_train_on_before_writing(tmp_path, text, message):
    from test_pretrain import tiny_config

    from elmo_bench.pretrain.train import Pretrainer

    write(tmp_path / "corpus/news.txt", text)
    with pytest.raises(DataError, match=message):
        Pretrainer(tiny_config(tmp_path, tmp_path / "corpus"))
    assert not (tmp_path / "run").exists()  # no checkpoint, no export: the corrected rerun starts clean


def test_pretraining_refuses_a_binary_corpus(tmp_path):
    from test_pretrain import tiny_config

    from elmo_bench.pretrain.train import Pretrainer

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/news.txt").write_bytes(b"text .\n\x7fELF\x02\x01\x00\x00")
    with pytest.raises(DataFormatError, match=r"news\.txt:2: a NUL byte: a binary file, not text"):
        Pretrainer(tiny_config(tmp_path, tmp_path / "corpus"))
    assert not (tmp_path / "run").exists()


def test_pretraining_rerun_after_a_vocabulary_change_gets_advice(tmp_path, shared_dir):
    from test_pretrain import tiny_config

    from elmo_bench.pretrain.train import Pretrainer

    lines = (shared_dir / "data/corpus/lm1b_heldout/1b_benchmark.dev.tokens").read_text(encoding="utf-8")
    write(tmp_path / "corpus/news.txt", "\n".join(lines.splitlines()[:100]) + "\n")
    (tmp_path / "run").mkdir()
    torch.save({"vocab": ["<S>", "</S>", "@@UNKNOWN@@", "other"]}, tmp_path / "run/checkpoint.pt")
    with pytest.raises(DataError, match=r"checkpoint\.pt was trained with another vocabulary \(the corpus, vocab_size"
                                        r" or min_count changed\): to start afresh, delete it or set another name"):
        Pretrainer(tiny_config(tmp_path, tmp_path / "corpus"))


def test_two_examples_with_one_id_in_a_split_are_refused():
    """The guard every reader's examples pass through (Task.load): predictions are keyed by id."""
    from elmo_bench.tasks.base import Example, check_unique_ids

    examples = [Example("q1", (("a",),), "x"), Example("q1", (("b",),), "y")]
    with pytest.raises(DataError, match=r"test \(file\.json\): example id 'q1' occurs twice"):
        check_unique_ids(examples, "test", "file.json")
