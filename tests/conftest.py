"""Shared fixtures for the ELMo test suite.

Real fixtures live outside the repository in the read-only `shared/` folder next to it
(`<repo>/../shared`); set ELMO_BENCH_SHARED to point elsewhere. Tests that need it are skipped
with a clear reason when it is absent. Nothing here downloads anything.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

# One intra-op thread: the models here are tiny, and on a busy 2-core machine OpenMP synchronisation
# made each small LSTM step ~100x slower with 2 threads (5 s instead of 0.05 s per forward call).
torch.set_num_threads(1)

# The tests run on slices of the real CoNLL files (tens of sentences), whose dev and test slices hold tags the
# training slice never had; users' runs refuse those (task.unseen_labels=error). Here they are scored as wrong,
# except where a test sets task.unseen_labels=error to check the refusal (subprocesses inherit this too).
os.environ["ELMO_BENCH_UNSEEN_LABELS"] = "wrong"

DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED = Path(os.environ.get("ELMO_BENCH_SHARED", DEFAULT_SHARED))
FIXTURES = SHARED / "fixtures"

# Token counts of the 3 x 10 fixture sentences (fixtures/README.md).
TOKEN_COUNTS = [
    [50, 51, 27, 3, 37, 11, 43, 29, 24, 20],
    [16, 11, 26, 13, 43, 13, 24, 13, 53, 5],
    [53, 51, 16, 17, 11, 19, 28, 12, 16, 9],
]


@dataclass(frozen=True)
class FixtureModel:
    """One upstream fixture model with its reference outputs."""

    name: str
    directory: Path
    sentences_file: Path
    derived_file: Path

    @property
    def options(self) -> Path:
        return self.directory / "options.json"

    @property
    def weights(self) -> Path:
        return self.directory / "lm_weights.hdf5"

    def embeddings_file(self, k: int) -> Path:
        return self.directory / f"lm_embeddings_{k}.hdf5"

    def sentences(self) -> list[list[list[str]]]:
        """sentences[k][i] = tokens of sentence i of list k."""
        raw = json.loads(self.sentences_file.read_text(encoding="utf-8"))
        return [[sentence.split() for sentence in column] for column in raw]

    def batch(self, i: int) -> list[list[str]]:
        """Batch i as upstream ran it: row k = sentences[k][i]."""
        sentences = self.sentences()
        return [sentences[k][i] for k in range(3)]

    def expected_top_layer(self) -> list[list[np.ndarray]]:
        """expected[k][i] = (n_tokens, 32) top layer of sentence i of list k (upstream TF output)."""
        import h5py

        expected = []
        for k in range(3):
            with h5py.File(self.embeddings_file(k), "r") as handle:
                expected.append(
                    [np.concatenate([handle[str(i)][0], handle[str(i)][1]], axis=-1) for i in range(10)]
                )
        return expected


MODEL_SPECS = {
    "allennlp-elmo": ("allennlp-elmo", "sentences.json", "allennlp-elmo_all_layers.npz"),
    "bilm-tf-model": ("bilm-tf/model", "lm_embeddings_sentences.json", "bilm-tf-model_all_layers.npz"),
}


def _require(path: Path) -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared folder not found at {SHARED}; set ELMO_BENCH_SHARED to its location")
    if not path.exists():
        pytest.skip(f"shared fixture not found: {path} (shared folder {SHARED}, from ELMO_BENCH_SHARED or the default)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def conll_root(tmp_path_factory, shared_dir) -> Path:
    """Slices of the real CoNLL-2003 files (120/60/60 sentences) under a data root of their own."""
    from runs import conll_slice

    return conll_slice(shared_dir, tmp_path_factory.mktemp("conll"))


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir) -> Path:
    return _require(shared_dir / "fixtures")


def fixture_model(name: str) -> FixtureModel:
    directory, sentences, derived = MODEL_SPECS[name]
    model = FixtureModel(
        name=name,
        directory=FIXTURES / directory,
        sentences_file=FIXTURES / directory / sentences,
        derived_file=FIXTURES / "derived" / derived,
    )
    for path in (model.options, model.weights, model.sentences_file):
        _require(path)
    return model


@pytest.fixture(scope="session", params=sorted(MODEL_SPECS))
def any_model(request, fixtures_dir) -> FixtureModel:
    """Each of the two upstream fixture models in turn."""
    return fixture_model(request.param)


@pytest.fixture(scope="session")
def allennlp_model(fixtures_dir) -> FixtureModel:
    return fixture_model("allennlp-elmo")


@pytest.fixture(scope="session")
def bilmtf_model(fixtures_dir) -> FixtureModel:
    return fixture_model("bilm-tf-model")


def load_derived(model: FixtureModel):
    _require(model.derived_file)
    return np.load(model.derived_file)


@pytest.fixture
def load_fixture_bilm():
    """Factory: a fresh BiLM (eval mode, float32, CPU) with a fixture model's weights."""
    from elmo_bench.elmo import load_bilm

    def make(model: FixtureModel, stateful: bool = False):
        return load_bilm(model.options, model.weights, stateful=stateful)

    return make


@pytest.fixture
def allennlp_bilm(allennlp_model, load_fixture_bilm):
    return load_fixture_bilm(allennlp_model)
