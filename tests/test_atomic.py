"""Atomic writes: all or nothing, and a file or symlink planted in the target folder is never written through."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from elmo_bench.cell import atomic
from elmo_bench.cell.atomic import save_torch, write_json


@pytest.fixture
def victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep", encoding="utf-8")
    (tmp_path / "out").mkdir()
    return victim


def test_a_symlink_at_the_old_predictable_name_is_ignored(tmp_path, victim):
    target = tmp_path / "out" / "result.json"
    (target.parent / f".result.json.{os.getpid()}.tmp").symlink_to(victim)  # the name the old code used
    write_json(target, {"a": 1})
    assert victim.read_text(encoding="utf-8") == "keep"
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1} and not target.is_symlink()


def test_a_planted_file_under_the_drawn_name_is_refused_not_opened(tmp_path, victim, monkeypatch):
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda _: "guessed")
    (tmp_path / "out" / ".state.pt.guessed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        save_torch(tmp_path / "out" / "state.pt", {"x": torch.zeros(2)})
    assert victim.read_text(encoding="utf-8") == "keep" and not (tmp_path / "out" / "state.pt").exists()


def test_names_differ_and_a_failure_leaves_nothing(tmp_path):
    names = set()
    for _ in range(2):
        with pytest.raises(RuntimeError), atomic.atomic_open(tmp_path / "x.pt"):
            names.update(path.name for path in tmp_path.iterdir())
            raise RuntimeError("interrupted")
    assert len(names) == 2 and not list(tmp_path.iterdir())


def test_the_file_gets_the_umasks_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "result.json", {})
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == 0o644
