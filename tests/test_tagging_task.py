"""The tagging task builds a CRF restricted to the moves its tag scheme allows."""
from __future__ import annotations

import pytest
from torch import nn

from elmo_bench.tasks.base import Example
from elmo_bench.tasks.tagging import TaggerHeadConfig, TaggingTask, TaggingTaskConfig


class FakeEmbedder(nn.Module):
    output_dim = 6


def build(scheme: str, tags: tuple[str, ...]):
    config = TaggingTaskConfig(name="t", dataset="d", metric="accuracy" if scheme == "none" else "f1",
                               train_file="a", dev_file="b", test_file="c", scheme=scheme)
    train = [Example("0", (("w",) * len(tags),), tags)]
    return TaggingTask(config).build_model(FakeEmbedder(), TaggerHeadConfig(name="tagger", hidden_dim=4), train)


def allowed(model, before: str, after: str) -> bool:
    index = model.label_index
    return bool(model.crf.allowed_transitions[index[before], index[after]])


@pytest.mark.parametrize("scheme", ["iob1", "iob2"])
def test_iob_schemes_forbid_inside_after_outside(scheme):
    model = build(scheme, ("B-PER", "I-PER", "O", "B-LOC", "I-LOC"))
    assert allowed(model, "B-PER", "I-PER") and not allowed(model, "O", "I-PER")
    assert not allowed(model, "B-PER", "I-LOC")


def test_bioes_scheme_uses_its_own_constraints():
    model = build("bioes", ("B-PER", "I-PER", "E-PER", "S-LOC", "O"))
    assert allowed(model, "B-PER", "I-PER") and allowed(model, "I-PER", "E-PER")
    assert not allowed(model, "B-PER", "O") and not allowed(model, "O", "E-PER")


def test_plain_tags_are_unconstrained():
    model = build("none", ("NN", "VB", "DT"))
    assert bool(model.crf.allowed_transitions.all()) and bool(model.crf.allowed_start.all())
