"""Two runs sharing the cores: one small fine-tuning cell alone, then two of them started at once, under
each OpenMP wait policy and thread setting. Prints wall seconds and the pair / alone ratio (fair sharing
of the cores gives about 2x).

    python benchmarks/bench_threads.py            # ~5 min on 2 cores; nothing else may run meanwhile

Each run is a separate `elmo-bench` process on a 400/200/200-sentence slice of CoNLL-2003 (NER, finetune,
cpu-small biLM, 40 updates, one dev evaluation). "libgomp default" passes OMP_WAIT_POLICY empty, which the
OpenMP runtime ignores (it spins a while before sleeping), as every run did before elmo-bench set PASSIVE.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {  # name: environment for each run
    "libgomp default, threads = all usable CPUs": {"OMP_WAIT_POLICY": ""},
    "PASSIVE (elmo-bench's default), threads = all usable CPUs": {},
    "libgomp default, 1 thread per run": {"OMP_WAIT_POLICY": "", "OMP_NUM_THREADS": "1"},
    "spin 10k then sleep (GOMP_SPINCOUNT=10000), all usable CPUs": {"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
    "spin 100k then sleep (GOMP_SPINCOUNT=100000), all usable CPUs": {"OMP_WAIT_POLICY": "",
                                                                     "GOMP_SPINCOUNT": "100000"},
}


def write_slice(source: Path, target: Path, sentences: int) -> None:
    kept, count = [], 0
    for line in source.read_text(encoding="utf-8").splitlines(keepends=True):
        kept.append(line)
        count += not line.strip()
        if count > sentences:
            break
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(kept), encoding="utf-8")


def data_slice(root: Path) -> Path:
    source = Path(os.environ.get("ELMO_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    for name, size in (("eng.train", 400), ("eng.testa", 200), ("eng.testb", 200)):
        write_slice(source / "conll2003" / name, root / "data" / "conll2003" / name, size)
    return root / "data"


def start(data: Path, out: Path, env: dict) -> subprocess.Popen:
    args = ["task=ner", "strategy=finetune", "data.train_size=300", "trainer.min_steps=40", "trainer.max_epochs=1",
            "trainer.eval_steps=1000", f"data.root={data}", "data.use_hub=false", f"output_dir={out}"]
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    return subprocess.Popen([sys.executable, "-m", "elmo_bench.cli", *args], env=environment | env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(runs: list[subprocess.Popen]) -> float:
    begin = time.perf_counter()
    for run in runs:
        if run.wait() != 0:
            raise RuntimeError(run.stderr.read()[-1500:])
    return time.perf_counter() - begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="elmo-threads-"))
    os.environ.setdefault("ELMO_BENCH_CACHE", str(work / "cache"))
    data = data_slice(work)
    timed([start(data, work / "warm", {})])  # features of dev/test cached for every later run
    print(f"{'variant':<62} {'alone s':>8} {'pair s':>8} {'pair/alone':>10}")
    for index, (name, env) in enumerate(VARIANTS.items()):
        alone = timed([start(data, work / f"{index}-alone", env)])
        pair = timed([start(data, work / f"{index}-pair{k}", env) for k in range(2)])
        print(f"{name:<62} {alone:8.1f} {pair:8.1f} {pair / alone:9.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
