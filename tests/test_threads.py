"""Thread counts: the cgroup quota and affinity mask, a launcher's share, and what a run records."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from elmo_bench import threads
from elmo_bench.threads import cgroup_cpu_limit, default_threads, set_threads, usable_cpus


@pytest.mark.parametrize(("cpu_max", "expected"), [("200000 100000\n", 2.0), ("150000 100000", 1.5),
                                                   ("max 100000\n", None)])
def test_cgroup_v2_quota(tmp_path, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert cgroup_cpu_limit(tmp_path / "cpu.max", tmp_path / "v1") == expected


@pytest.mark.parametrize(("quota", "expected"), [("50000", 0.5), ("-1", None)])
def test_cgroup_v1_quota(tmp_path, quota, expected):
    (tmp_path / "cpu.cfs_quota_us").write_text(quota)
    (tmp_path / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(tmp_path / "absent", tmp_path) == expected


def test_usable_cpus_is_the_affinity_mask_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)
    assert usable_cpus() == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.5)  # a fraction of a CPU still gets one thread
    assert usable_cpus() == 1
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert usable_cpus() == 4


@pytest.mark.parametrize(("given", "expected"), [(None, 4), ("2", 2), ("16", 4), ("0", 4), ("x", 4)])
def test_a_launchers_share_is_followed_within_the_usable_cpus(monkeypatch, given, expected):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    if given is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", given)
    assert default_threads() == expected


def test_set_threads_applies_the_request():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_waiting_openmp_threads_sleep_unless_told_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import elmo_bench, os; print(os.environ['OMP_WAIT_POLICY'])"
    printed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == expected
