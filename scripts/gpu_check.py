"""GPU check: every task x strategy x precision for one short epoch on CUDA, a kill-and-resume on the GPU
(and a CPU checkpoint resumed on the GPU), and the feature cache built on the GPU against the CPU's.

    make gpu-check                  # or: python scripts/gpu_check.py [--tasks ner,sst5] [--models fixture,minilm]

Runs on allennlp's small test biLM (model=fixture; --models adds encoders) with tiny training subsets, so it checks that every path
runs where users run it, not what it scores. Prints one table line per check and exits 1 if any failed;
without CUDA it says so and exits 0. Needs the data under $ELMO_BENCH_DATA and the fixtures beside the
project (or $ELMO_BENCH_SHARED), as the tests do.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from elmo_bench.cell.layout import CHECKPOINT_FILE, RESULT_FILE, CellKey
from elmo_bench.cell.result import CellResult
from elmo_bench.config import conf_choices
from elmo_bench.strategies import STRATEGIES as STRATEGY_KINDS

TASKS = [task for task, family in conf_choices("task").items() if task != family]  # the stock tasks
STRATEGIES = [strategy.kind for strategy in STRATEGY_KINDS]
PRECISIONS = ["fp32", "bf16", "fp16"]
MODELS = ["fixture"]  # minilm too with --models fixture,minilm: the transformer encoder's path on the device
SMALL = ["data.use_hub=false", "data.train_size=16", "trainer.max_epochs=1", "trainer.min_steps=0",
         "trainer.eval_steps=1", "inputs.word_dim=8", "head.hidden_dim=16", "trainer.batch_tokens=400"]
RESUMED = ["model=fixture", "data.use_hub=false", "task=ner", "strategy=two_stage", "data.train_size=200",
           "trainer.max_epochs=2", "trainer.min_steps=0", "trainer.eval_steps=1", "head.hidden_dim=16"]


def cell(overrides: list[str]) -> dict:
    from elmo_bench.cli import setup
    from elmo_bench.config import PROJECT_ROOT, typed
    from elmo_bench.cell.runner import run
    from hydra import compose, initialize_config_dir

    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return run(typed(compose("config", overrides)))


def check(name: str, action) -> tuple[str, bool, str]:
    start = time.perf_counter()
    try:
        detail = action()
        return name, True, f"{detail} ({time.perf_counter() - start:.1f}s)"
    except Exception as error:  # a check that fails is reported, and the others still run
        traceback.print_exc()
        message = str(error).strip().splitlines() or [""]
        return name, False, f"{type(error).__name__}: {message[-1][:150]}"


def one_epoch(model: str, task: str, strategy: str, precision: str, out: Path, device: str) -> str:
    result = cell([*SMALL, f"model={model}", f"task={task}", f"strategy={strategy}", f"trainer.precision={precision}",
                   f"trainer.device={device}", f"output_dir={out / precision}"])
    assert result["device"].startswith(device), result["device"]
    return f"{result['metric']} {result['test']}"


def cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "elmo_bench.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def cli_to_end(args: list[str]) -> None:
    """Runs a cell to its end; Hydra logs a refused run's one-line reason to stdout, so the failure shows both."""
    done = subprocess.run([sys.executable, "-m", "elmo_bench.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"exit {done.returncode}: {(done.stdout + done.stderr)[-1500:]}"


def killed_then_resumed(out: Path, first_device: str, device: str) -> str:
    """Kills a two_stage cell after its first checkpoint, resumes it on `device`, compares with a straight run."""
    cli_to_end([*RESUMED, f"trainer.device={device}", f"output_dir={out}/straight"])
    victim = cli([*RESUMED, f"trainer.device={first_device}", f"output_dir={out}/killed"])
    key = CellKey("ner", "two_stage", "fixture", "200", 1)
    folder = key.folder(out / "killed")
    while not (folder / CHECKPOINT_FILE).exists():
        assert victim.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    cli_to_end([*RESUMED, f"trainer.device={device}", f"output_dir={out}/killed"])
    expected = CellResult.read(key.folder(out / "straight") / RESULT_FILE)
    got = CellResult.read(folder / RESULT_FILE)
    gap = max(abs(got.metrics[s]["f1"] - expected.metrics[s]["f1"]) for s in ("dev", "test"))
    assert got.device.startswith(device) and gap < 1.0, f"resumed F1 differs by {gap:.3f}"
    return f"killed on {first_device}, resumed on {device}: F1 gap {gap:.4f} (CUDA kernels are not bit-exact)"


def features_on_device(model: str, device: str) -> str:
    from elmo_bench.cli import setup
    from elmo_bench.config import PROJECT_ROOT, typed
    from elmo_bench.encoders import load_encoder
    from elmo_bench.strategies.feature_cache import compute_features
    from hydra import compose, initialize_config_dir

    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        encoder = load_encoder(typed(compose("config", [f"model={model}"])).model, seed=1)
    texts = [tuple("The biLM runs on the GPU .".split()), tuple("Features match the CPU 's .".split())]
    on_cpu, _ = compute_features(encoder, texts, torch.float32, 4000)
    on_gpu, _ = compute_features(encoder.to(device), texts, torch.float32, 4000)
    gap = ((on_cpu - on_gpu).abs().max() / on_cpu.abs().max().clamp(min=1)).item()
    assert gap < 1e-4, f"GPU features differ from the CPU's by {gap} (relative to the largest value)"
    return f"max |GPU - CPU| / max |CPU| = {gap:.2e}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", type=Path, default=None, help="cell folders (default: a temporary folder)")
    parser.add_argument("--device", default="cuda", help="cpu runs the same checks here (to test the checker)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--models", default=",".join(MODELS), help="encoders whose cells run (conf/model names)")
    args = parser.parse_args()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here; nothing to check.")
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="elmo-gpu-check-"))
    os.environ.setdefault("ELMO_BENCH_CACHE", str(out / "cache"))
    models = args.models.split(",")
    checks = [check(f"{model} {task} {strategy} {precision}",
                    lambda m=model, t=task, s=strategy, p=precision: one_epoch(m, t, s, p, out, device))
              for model in models for task in args.tasks.split(",") for strategy in STRATEGIES
              for precision in args.precisions.split(",")]
    checks += [check(f"{model} features built on {device}", lambda m=model: features_on_device(m, device))
               for model in models]
    checks += [
               check(f"kill + resume on {device}", lambda: killed_then_resumed(out / "resume", device, device)),
               check(f"kill on cpu + resume on {device}",
                     lambda: killed_then_resumed(out / "resume-cpu", "cpu", device))]
    machine = torch.cuda.get_device_name(0) if device == "cuda" else device
    print(f"\ngpu-check on {machine}, torch {torch.__version__}")
    width = max(len(name) for name, _, _ in checks)
    for name, passed, detail in checks:
        print(f"{name:<{width}}  {'ok  ' if passed else 'FAIL'}  {detail}")
    failed = sum(not passed for _, passed, _ in checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
