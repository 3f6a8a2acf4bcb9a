# elmo-bench: `make demo` (set up, run the main job), `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
# Read the shared data and fixtures in place when they sit beside the project.
export ELMO_BENCH_SHARED ?= $(SHARED)
export ELMO_BENCH_DATA ?= $(if $(wildcard $(SHARED)/data),$(SHARED)/data,data)
OUT ?= outputs
# The torch build `make setup` installs first, as pip arguments. The default is the local CPU wheel; on a GPU
# machine pass a CUDA build, e.g. make setup TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
TORCH ?= torch==2.13.0

.PHONY: setup demo test bench table gpu-check clean

setup: $(VENV)/.installed

# torch first, pinned ($(TORCH)): pyproject.toml's range `torch>=2.1` then takes the build installed here.
# A bare `torch` from PyPI would pull a multi-GB CUDA build; a new TORCH needs `make clean` first.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The main job: NER with both strategies at 1,000 training sentences, the sweep callback then writes $(OUT)/demo/report.
demo: setup
	$(BIN)/elmo-bench -m task=ner strategy=feature_ensemble,finetune data.train_size=1000 \
		trainer.max_epochs=10 trainer.batch_tokens=500 output_dir=$(OUT)/demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_elmo.py

# Every task x strategy x precision on CUDA, kill-and-resume on the GPU, GPU features; says so and passes without CUDA.
gpu-check: setup
	$(BIN)/python scripts/gpu_check.py

table: setup
	$(BIN)/elmo-bench-report $(OUT)

clean:
	rm -rf $(VENV) .pytest_cache
