"""Runs die and launchers collide: nothing is lost, nothing is corrupted, results stay exact."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from elmo_bench.cell import claim as cell_claim
from elmo_bench.errors import CellBusy, TrainingError
from elmo_bench.cell.claim import CellLock
from elmo_bench.cell.runner import cell_dir, run
from elmo_bench.encoders.elmo import ElmoEncoder
from elmo_bench.strategies.feature_cache import load_or_compute
from elmo_bench.tasks.tagging import TaggerModel
from elmo_bench.training import Trainer

from runs import FAST, conll_slice, make_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, shared_dir) -> Path:
    return conll_slice(shared_dir, tmp_path_factory.mktemp("data"), train=200)


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict:
    cache = str(tmp_path / "cache")
    monkeypatch.setenv("ELMO_BENCH_CACHE", cache)
    return {**os.environ, "ELMO_BENCH_CACHE": cache, "OMP_NUM_THREADS": "1"}


def cell_args(data_root: Path, out: Path, *extra: str) -> list[str]:
    return [*FAST, f"data.root={data_root}", "data.use_hub=false", f"output_dir={out}", "task=ner",
            "strategy=finetune", "data.train_size=200", "trainer.max_epochs=4", *extra]


def cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "elmo_bench.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_run_then_restart_reaches_the_same_metrics(data_root, tmp_path, env):
    straight = cli(cell_args(data_root, tmp_path / "straight"), env)
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-2000:]
    killed_args = cell_args(data_root, tmp_path / "killed")
    victim = cli(killed_args, env)
    cell = tmp_path / "killed/ner/finetune/fixture/n200/seed1"
    deadline = time.time() + 300
    while not (cell / "checkpoint.pt").exists():  # the first epoch is done; the second is running
        assert victim.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (cell / "result.json").exists() and (cell / ".claim").exists()  # dead owner's claim left
    restarted = cli(killed_args, env)
    assert restarted.wait(timeout=600) == 0, restarted.stderr.read()[-2000:]
    expected = json.loads((tmp_path / "straight/ner/finetune/fixture/n200/seed1/result.json").read_text())
    resumed = json.loads((cell / "result.json").read_text())
    assert resumed["metrics"] == expected["metrics"]
    # Separate processes may differ in the last float bits (memory alignment changes SIMD sums).
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in expected["history"]], rel=1e-6)
    assert not (cell / ".claim").exists()


def test_a_live_claim_is_left_alone_and_a_dead_one_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = tmp_path / ".claim"
        claim.write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid}))
        with pytest.raises(CellBusy, match=f"pid {sleeper.pid}"):
            CellLock(tmp_path).__enter__()
    finally:
        sleeper.kill()
        sleeper.wait()
    with CellLock(tmp_path):  # the owner is dead now
        assert json.loads(claim.read_text())["pid"] == os.getpid()
    assert not claim.exists()


def test_a_claim_from_another_host_expires_without_heartbeat(tmp_path):
    claim = tmp_path / ".claim"
    claim.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(CellBusy, match="elsewhere"):
        CellLock(tmp_path, stale_after=600).__enter__()
    old = time.time() - 3600
    os.utime(claim, (old, old))
    with CellLock(tmp_path, stale_after=600):
        pass


def test_a_rival_that_takes_over_first_keeps_the_cell(tmp_path, monkeypatch):
    """Two processes judge the same dead claim stale; the one that acts second must not remove the first's claim."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rival = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    claim = tmp_path / ".claim"
    claim.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    rival_claim = json.dumps({"host": socket.gethostname(), "pid": rival.pid, "since": time.time()})

    def rival_takes_over_meanwhile(*args):  # runs after this process judged the claim stale, before it acts
        claim.unlink()
        claim.write_text(rival_claim)

    monkeypatch.setattr(cell_claim.log, "warning", rival_takes_over_meanwhile)
    try:
        with pytest.raises(CellBusy, match=f"pid {rival.pid}"):
            CellLock(tmp_path).__enter__()
        assert claim.read_text() == rival_claim and [p.name for p in tmp_path.iterdir()] == [".claim"]
    finally:
        rival.kill()
        rival.wait()


def test_a_busy_cell_is_skipped_without_writing(data_root, tmp_path, env):
    config = make_config(cell_args(data_root, tmp_path / "out"))
    folder = cell_dir(config)
    folder.mkdir(parents=True)
    (folder / ".claim").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    assert run(config) is None
    assert sorted(p.name for p in folder.iterdir()) == [".claim"]


def test_rerun_of_a_killed_sweep_redoes_only_unfinished_cells(data_root, tmp_path, env, monkeypatch):
    done = make_config(cell_args(data_root, tmp_path / "out", "seed=1", "trainer.max_epochs=1"))
    unfinished = make_config(cell_args(data_root, tmp_path / "out", "seed=2", "trainer.max_epochs=2"))
    run(done)
    stamp = (cell_dir(done) / "result.json").stat().st_mtime_ns
    original = Trainer._save_checkpoint

    def die_after_first_epoch(trainer):
        original(trainer)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save_checkpoint", die_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(unfinished)
    monkeypatch.setattr(Trainer, "_save_checkpoint", original)
    epochs_trained = []
    train_epoch = Trainer._train_epoch
    monkeypatch.setattr(Trainer, "_train_epoch",
                        lambda trainer, *args: epochs_trained.append(1) or train_epoch(trainer, *args))
    for config in (done, unfinished):  # the sweep again
        run(config)
    assert (cell_dir(done) / "result.json").stat().st_mtime_ns == stamp
    assert len(epochs_trained) == 1  # only the unfinished cell's second epoch


def test_a_damaged_feature_cache_file_is_rebuilt(data_root, tmp_path, env, caplog):
    args = cell_args(data_root, tmp_path / "out", "strategy=feature_ensemble", "trainer.max_epochs=1")
    first = run(make_config(args))
    cache_files = sorted(Path(env["ELMO_BENCH_CACHE"]).rglob("*.pt"))
    assert len(cache_files) == 3  # train subset, dev, test
    cache_files[0].write_bytes(cache_files[0].read_bytes()[:100])  # a torn file under a real key
    again = run(make_config([*args, "force=true"]))
    assert "unreadable" in caplog.text
    assert again["metrics"] == first["metrics"]
    assert not list(Path(env["ELMO_BENCH_CACHE"]).rglob("*.tmp"))


@pytest.mark.parametrize(("tamper", "warning"), [
    (lambda stored: stored.pop("fingerprint"), "does not record this encoder's fingerprint"),
    (lambda stored: stored.update(texts=2), "holds 2 texts, not 3"),
    (lambda stored: stored.update(features=stored["features"][:-1]),
     r"holds features \(5, 3, 32\) torch.float32, the texts need \(6, 3, 32\)"),
    (lambda stored: stored.update(offsets=stored["offsets"].flip(0)), "holds offsets that do not match"),
])
def test_a_feature_file_that_does_not_fit_its_texts_is_recomputed(allennlp_bilm, tmp_path, caplog, tamper, warning):
    texts = {"dev": [("A", "cat", "."), ("Dogs", "bark"), ("Hi",)]}

    encoder = ElmoEncoder(allennlp_bilm, "f" * 64)

    def features():
        return load_or_compute(encoder, texts, tmp_path, "float32", 100)

    first, _ = features()
    (path,) = tmp_path.glob("*.pt")
    stored = torch.load(path, weights_only=True)
    assert (stored["fingerprint"], stored["texts"]) == ("f" * 64, 3)
    tamper(stored)
    torch.save(stored, path)
    again, (cost,) = features()
    assert cost.computed_here and re.search(rf"feature cache .*{path.name} {warning}", caplog.text), caplog.text
    assert torch.equal(again.features, first.features) and torch.equal(again.offsets, first.offsets)
    assert not features()[1][0].computed_here  # the rebuilt file is used as it is


def test_non_finite_loss_stops_with_the_last_good_checkpoint(data_root, tmp_path, env, monkeypatch):
    config = make_config(cell_args(data_root, tmp_path / "out", "trainer.max_epochs=3"))
    original_loss, original_record = TaggerModel.loss, Trainer._record_evaluation
    epochs_done = []

    def record(trainer, *args):
        original_record(trainer, *args)
        epochs_done.append(1)

    def loss_turning_nan(model, examples):  # finite in epoch 1, NaN from epoch 2 on
        value = original_loss(model, examples)
        return value * float("nan") if epochs_done else value

    monkeypatch.setattr(Trainer, "_record_evaluation", record)
    monkeypatch.setattr(TaggerModel, "loss", loss_turning_nan)
    with pytest.raises(TrainingError, match=r"non-finite loss .* epoch 2.*last good checkpoint"):
        run(config)
    folder = cell_dir(config)
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["progress"]["epoch"] == 1
    assert not (folder / "result.json").exists() and not (folder / ".claim").exists()
