"""Sweeps scale out through Hydra's launcher plugins (conf/hydra/launcher/), never a scheduler of our own.

The same two-cell sweep (NER, both strategies, 20 sentences of the real CoNLL-2003 files, one epoch, the
fixture biLM) runs through joblib (local worker processes), submitit's local executor and Ray (a private
instance this module starts on the loopback address and stops again); each writes the same deterministic
cell folders, with the same scores, as the others. The plugins come with `pip install -e '.[test]'`.
"""
from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from elmo_bench.cell.layout import predictions_name
from elmo_bench.cli import setup
from elmo_bench.config import PROJECT_ROOT, typed

from runs import FAST, conll_slice

pytestmark = pytest.mark.slow

CELLS = ["ner/feature_ensemble/fixture/n20/seed1", "ner/finetune/fixture/n20/seed1"]
SWEEP = ["task=ner", "strategy=feature_ensemble,finetune", "data.train_size=20", "trainer.max_epochs=1"]
SWEEP_SECONDS = 300  # a sweep here takes well under a minute; a hung launcher fails instead of blocking CI
RAY_START_SECONDS = 120
TASKS = ["ner", "pos", "sst5", "agnews", "stsb", "squad"]


@pytest.fixture(scope="module", autouse=True)
def plugins_installed() -> None:
    """Fails (never skips) without the plugins: CI installs them, and a skip would hide a broken setup."""
    for module in ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher",
                   "hydra_plugins.hydra_ray_launcher", "ray"):
        try:
            importlib.import_module(module)
        except ImportError as error:
            pytest.fail(f"{error}; the launcher plugins come with pip install -e '.[test]' (or '.[launchers]')")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, shared_dir) -> Path:
    return conll_slice(shared_dir, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("launchers")


def cell_env(shared_dir: Path, cache: Path) -> dict:
    """The environment of a sweep and of every worker: one thread per cell, a private feature cache."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "ELMO_BENCH_CACHE": str(cache), "ELMO_BENCH_SHARED": str(shared_dir)}


def run_sweep(launcher: list[str], out: Path, data_root: Path, env: dict) -> dict:
    """Runs the sweep as `python -m elmo_bench.cli -m ...`: the results by cell folder, the log, the time."""
    args = [sys.executable, "-m", "elmo_bench.cli", "-m", *launcher, f"data.root={data_root}", f"output_dir={out}",
            "data.use_hub=false", *FAST, *SWEEP]
    start = time.monotonic()
    completed = subprocess.run(args, capture_output=True, text=True, env=env, timeout=SWEEP_SECONDS)
    seconds = time.monotonic() - start
    log = completed.stdout + completed.stderr
    assert completed.returncode == 0, log[-4000:]
    results = {str(path.parent.relative_to(out)): json.loads(path.read_text(encoding="utf-8"))
               for path in out.rglob("result.json")}
    print(f"{' '.join(launcher)}: {seconds:.1f}s")
    return {"results": results, "log": log, "out": out, "seconds": seconds}


def check_sweep(sweep: dict, launcher_says: str) -> None:
    assert launcher_says in sweep["log"], sweep["log"][-3000:]  # the sweep really went through that plugin
    assert sorted(sweep["results"]) == CELLS
    for cell, result in sweep["results"].items():
        assert result["status"] == "complete" and result["train_size"] == 20 and result["epochs"] == 1, cell
        assert (sweep["out"] / cell / predictions_name("test")).is_file()
    # The ReportCallback ran in the launching process once the launcher had collected every cell.
    assert (sweep["out"] / "report" / "comparison.md").is_file()


# --- joblib -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def joblib_sweep(workdir, data_root, shared_dir) -> dict:
    env = cell_env(shared_dir, workdir / "cache_joblib")
    return run_sweep(["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"], workdir / "joblib", data_root, env)


def test_joblib_sweep_runs_every_cell_in_worker_processes(joblib_sweep):
    check_sweep(joblib_sweep, "Joblib.Parallel(n_jobs=2")


# --- submitit (local executor) -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def submitit_sweep(workdir, data_root, shared_dir) -> dict:
    env = cell_env(shared_dir, workdir / "cache_submitit")
    return run_sweep(["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"], workdir / "submitit",
                     data_root, env)


def test_submitit_local_sweep_runs_every_cell_as_a_job(submitit_sweep):
    check_sweep(submitit_sweep, "Submitit 'local' sweep output dir")
    # submitit keeps the pickles and logs of each job (named by job id) beside the cells, not inside them
    jobs = [p for p in (submitit_sweep["out"] / ".submitit").iterdir() if p.name.isdigit()]
    assert len(jobs) == len(CELLS) and all(list(job.glob("*_log.out")) for job in jobs)


# --- Ray ----------------------------------------------------------------------------------------------

def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stop_process_group(process: subprocess.Popen) -> None:
    """Stops the `ray start --block` we started and everything it started (its own process group).

    Not `ray stop`: that kills every Ray process on the machine by name, other people's included.
    """
    if process.poll() is None:
        process.terminate()  # --block: Ray shuts its processes down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of this instance, and only of it
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def ray_cluster(shared_dir, workdir):
    """A one-node Ray instance on 127.0.0.1 with 2 CPUs, as `ray start --head` would run on a cluster head."""
    # Ray's socket paths live under --temp-dir and must stay under 107 bytes: a short folder in /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp" if Path("/tmp").is_dir() else None))
    gcs, client, agent, dashboard = free_ports(4)
    # Workers inherit this environment (not the driver's): the cache and the thread count are set here.
    env = {**cell_env(shared_dir, workdir / "cache_ray"), "RAY_USAGE_STATS_ENABLED": "0",
           # Linux Ray swaps 127.0.0.1 for the machine's address; this keeps the instance on loopback.
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           # A token of its own: Ray >= 2.5x turns token auth on by itself when ~/.ray/auth_token exists,
           # and the driver would then be refused; a fresh token makes the instance independent of $HOME.
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    log_file = temp_dir / "ray_start.log"
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               f"--port={gcs}", f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
               f"--dashboard-port={dashboard}", "--num-cpus=2", "--num-gpus=0", "--object-store-memory=100000000",
               "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    with log_file.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + RAY_START_SECONDS
        while "Ray runtime started" not in log_file.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up:\n{log_file.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield {"address": f"127.0.0.1:{gcs}", "env": env}
    finally:
        stop_process_group(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_sweep(ray_cluster, workdir, data_root) -> dict:
    env = {**ray_cluster["env"], "RAY_ADDRESS": ray_cluster["address"]}
    return run_sweep(["hydra/launcher=ray_cluster"], workdir / "ray", data_root, env)


def test_ray_sweep_runs_every_cell_on_the_running_instance(ray_sweep, ray_cluster):
    check_sweep(ray_sweep, "Ray Launcher is launching 2 jobs")
    # ray.init joined the instance at RAY_ADDRESS rather than starting one of its own
    assert f"'address': '{ray_cluster['address']}'" in ray_sweep["log"]


# --- the same cells, whatever ran them ----------------------------------------------------------------

def test_every_launcher_gives_the_same_scores_for_the_same_cell(joblib_sweep, submitit_sweep, ray_sweep):
    sweeps = {"joblib": joblib_sweep, "submitit": submitit_sweep, "ray": ray_sweep}
    for cell in CELLS:
        by_launcher = {name: sweep["results"][cell] for name, sweep in sweeps.items()}
        reference = by_launcher["joblib"]
        for name, result in by_launcher.items():
            assert result["train_subset_digest"] == reference["train_subset_digest"], (cell, name)
            assert result["metrics"] == reference["metrics"], (cell, name)  # same seed, CPU: identical scores
            # Separate processes may differ in the last float bits (memory alignment changes SIMD sums).
            losses = [h["loss"] for h in reference["history"]]
            assert [h["loss"] for h in result["history"]] == pytest.approx(losses, rel=1e-6), (cell, name)


# --- configs that this machine cannot run: checked, not run --------------------------------------------

class Submitted(Exception):
    """Raised instead of calling sbatch."""


def test_slurm_config_asks_sbatch_for_one_gpu_per_cell(tmp_path, monkeypatch):
    import submitit

    monkeypatch.setenv("ELMO_BENCH_SLURM_PARTITION", "gpu")
    # submitit's SLURM executor insists on finding srun; this one is never called.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", ["hydra/launcher=slurm", f"output_dir={tmp_path / 'out'}"], return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)  # the plugin's SlurmLauncher, as Hydra builds it
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    scripts = []

    def map_array(executor, function, *arguments):
        scripts.append(executor._executor._make_submission_file_text("elmo-bench", "uid"))  # submitit's sbatch text
        raise Submitted

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    with pytest.raises(Submitted):
        launcher.launch([["task=ner"]], initial_job_idx=0)
    script = scripts[0]
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=32GB", "--time=720",
                 "--job-name=elmo-bench", "--nodes=1", "--ntasks-per-node=1", f"--output={tmp_path}/out/.submitit/"):
        assert f"#SBATCH {line}" in script, line


@pytest.mark.parametrize(("experiment", "model", "sizes"), [
    ("table2", "original", "500,1000,2000,5000,null"),
    ("table2_cpu", "cpu-small", "250,1000"),
])
def test_experiment_sweeps_cover_the_whole_grid(experiment, model, sizes, tmp_path):
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", [f"+experiment={experiment}"], return_hydra_config=True)
        params = cfg.hydra.sweeper.params
        assert params.task.split(",") == TASKS
        assert params.strategy.split(",") == ["feature_ensemble", "finetune", "two_stage"]
        assert params["data.train_size"] == sizes
        # The smallest training pool (STS-B, 5,749 pairs) takes every size of the list.
        assert max(int(size) for size in sizes.split(",") if size != "null") <= 5749
        for task in TASKS:  # every cell of the grid composes to a valid run config
            config = typed(compose("config", [f"+experiment={experiment}", f"task={task}", "data.train_size=1000",
                                              f"output_dir={tmp_path}", "strategy=two_stage"]))
            assert (config.task.name, config.model.name) == (task, model)


def test_tuning_sweep_puts_each_setting_in_its_own_folder():
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        frozen = typed(compose("config", ["+experiment=tune", "trainer.lr=0.003"]))
        tuned = typed(compose("config", ["+experiment=tune", "strategy=finetune", "strategy.encoder_lr_factor=0.3"]))
        cfg = compose("config", ["+experiment=tune"], return_hydra_config=True)
    assert frozen.output_dir == "outputs/tune/lr0.003-encoderfrozen"
    assert tuned.output_dir == "outputs/tune/lr0.001-encoder0.3"
    assert cfg.hydra.sweep.dir == "outputs/tune" and cfg.hydra.callbacks.report.select_on_dev is True
    assert cfg.hydra.sweeper.params["trainer.lr"] == "3e-4,1e-3,3e-3"


def test_convergence_run_differs_from_the_study_in_budget_only(tmp_path):
    """study_converge's cells are study_cpu's twins: same recipe, longer budget, patience deciding the end."""
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cells = {experiment: OmegaConf.to_container(compose("config", [
            f"+experiment={experiment}", "task=ner", "strategy=finetune", "data.train_size=1000"]))
            for experiment in ("study_cpu", "study_converge")}
        params = compose("config", ["+experiment=study_converge"], return_hydra_config=True).hydra.sweeper.params
    capped, converging = cells["study_cpu"], cells["study_converge"]
    assert (capped["trainer"]["max_steps"], converging["trainer"]["max_steps"]) == (1500, 6000)
    assert (capped["trainer"]["max_epochs"], converging["trainer"]["max_epochs"]) == (30, 1000)
    assert converging["output_dir"] == "outputs/study_converge"
    for cell in (capped, converging):
        del cell["output_dir"], cell["trainer"]["max_steps"], cell["trainer"]["max_epochs"]
    assert capped == converging
    assert set(params.task.split(",")) == set(TASKS) - {"squad"}
    assert params["data.train_size"] == "5000,1000,100" and params.seed == "1,2,3"


def test_study_v2_differs_from_the_converged_study_in_issue_52s_recipe_only():
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cells = {experiment: OmegaConf.to_container(compose("config", [
            f"+experiment={experiment}", "task=ner", "strategy=finetune", "data.train_size=1000"]))
            for experiment in ("study_converge", "study_v2")}
        tune = {strategy: typed(compose("config", ["+experiment=tune_v2", f"strategy={strategy}", *grid]))
                for strategy, grid in (("feature_ensemble", ["trainer.lr=3e-4"]),
                                       ("finetune", ["strategy.encoder_lr_factor=0.3"]))}
    before, after = cells["study_converge"], cells["study_v2"]
    changed = {("trainer", "schedule_horizon"): ("budget", "patience"), ("trainer", "clip_groups"): ("joint", "separate"),
               ("trainer", "min_delta"): (0.0, "auto"), ("trainer", "smooth_evals"): (1, 3),
               ("data", "dev_size"): (None, "train")}
    for (group, key), values in changed.items():
        assert (before[group].pop(key), after[group].pop(key)) == values
    assert (before.pop("output_dir"), after.pop("output_dir")) == ("outputs/study_converge", "outputs/study_v2")
    assert before == after
    assert tune["feature_ensemble"].output_dir == "outputs/tune_v2/lr0.0003-encoderfrozen"
    assert tune["finetune"].output_dir == "outputs/tune_v2/lr0.001-encoder0.3"
    assert tune["finetune"].data.dev_size == "train"
