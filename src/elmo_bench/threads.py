"""CPU threads for one run: the CPUs this process may really use, not the machine's core count.

A run on a shared node (SLURM, Ray, a laptop with other work) that takes every core of the machine fights
its neighbours for them: OpenMP threads spin while they wait, so two such runs on two cores took 12.8x the
time of one. The default is the CPUs of this process's affinity mask, capped by its cgroup's CPU quota, and
a launcher that divides the cores among its workers (joblib's loky sets OMP_NUM_THREADS in each worker) is
followed. OpenMP's waiting threads sleep instead of spinning (`elmo_bench/__init__.py`).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def cgroup_cpu_limit(v2: Path = CGROUP_V2, v1: Path = CGROUP_V1) -> float | None:
    """CPUs the cgroup's quota allows (quota / period), or None when unlimited or unknown."""
    if v2.is_file():
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    quota_file, period_file = v1 / "cpu.cfs_quota_us", v1 / "cpu.cfs_period_us"
    if quota_file.is_file() and period_file.is_file():
        quota = int(quota_file.read_text())
        return None if quota <= 0 else quota / int(period_file.read_text())
    return None


def usable_cpus() -> int:
    """The CPUs in this process's affinity mask, capped by the cgroup quota (at least 1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.floor(limit)))
    return max(1, cpus)


def default_threads() -> int:
    """What a launcher gave this worker through OMP_NUM_THREADS, else every usable CPU."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    usable = usable_cpus()
    return min(int(given), usable) if given.isdigit() and int(given) > 0 else usable


def set_threads(requested: int | None) -> int:
    """Sets torch's intra-op threads to `requested` (null: the default above) and returns the number used."""
    threads = requested or default_threads()
    torch.set_num_threads(threads)
    return threads
