"""Every input reaches the model's device: each task family x strategy (and two_stage's both stages) runs its
loss with the model on PyTorch's `meta` device, where a tensor left on the CPU raises. CI has no GPU; this is
what catches a path that forgets the device. Real CUDA runs are `make gpu-check`'s job.

A live biLM cannot run on `meta` (its boundaries and token-type sharing depend on the values of the char
ids), so where the biLM is live the task model goes to `meta` and the biLM stays on the CPU: its layers
must still be moved by the embedder. That the live biLM gets its char ids on its own device is checked
on its own, with a stand-in biLM that has a `meta` parameter."""
from __future__ import annotations

import pytest
import torch

from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from elmo_bench.cell.runner import build
from elmo_bench.config import conf_choices
from elmo_bench.encoders.elmo import ElmoEncoder
from elmo_bench.strategies import STRATEGIES
from elmo_bench.strategies.embedder import LiveLayers

from runs import FAST, make_config

pytestmark = pytest.mark.slow

# a stock task of each family (conf/task; the family's own file needs the user's data), each strategy's stages
ONE_TASK_PER_FAMILY = sorted({family: task for task, family in sorted(conf_choices("task").items(), reverse=True)
                              if task != family}.values())
STAGES = [(strategy.kind, stage) for strategy in STRATEGIES for stage in range(len(strategy.stages))]
TUNED_STAGE = "finetune"  # the stage name under which a strategy's encoder trains


@pytest.fixture
def overrides(shared_dir, tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("ELMO_BENCH_CACHE", str(tmp_path / "cache"))
    fast = [o for o in FAST if not o.startswith("head.lstm_layers")]  # BiDAF has no such key
    return [*fast, f"data.root={shared_dir / 'data'}", "data.use_hub=false", f"output_dir={tmp_path}",
            "data.train_size=6"]


def to_meta_except(module: nn.Module, kept: nn.Module) -> None:
    """Moves every parameter and buffer of `module` to `meta`, except those inside `kept`."""
    if module is kept:
        return
    if not any(m is kept for m in module.modules()):
        module.to("meta")
        return
    for child in module.children():
        to_meta_except(child, kept)
    for name, parameter in module.named_parameters(recurse=False):
        module._parameters[name] = nn.Parameter(parameter.to("meta"), requires_grad=parameter.requires_grad)
    for name, buffer in module.named_buffers(recurse=False):
        module._buffers[name] = buffer.to("meta")


class OneDevicePerOp(TorchDispatchMode):
    """Fails any operation whose tensor arguments sit on different devices. Some kernels accept a CPU index
    into a `meta` table without complaint; a real GPU would not."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.dim() > 0]
        devices = {t.device for t in tensors}
        assert len(devices) <= 1, f"{func} mixes devices {sorted(map(str, devices))}"
        return func(*args, **kwargs)


@pytest.mark.parametrize("task", ONE_TASK_PER_FAMILY)
@pytest.mark.parametrize(("strategy", "stage"), STAGES, ids=[f"{s}-stage{i}" for s, i in STAGES])
def test_the_loss_runs_with_the_model_on_another_device(overrides, task, strategy, stage):
    cell = build(make_config([*overrides, f"task={task}", f"strategy={strategy}"]), torch.device("cpu"))
    cell.strategy.start_stage(stage)
    live = cell.strategy.stages[stage] == TUNED_STAGE
    to_meta_except(cell.model, cell.encoder if live else None)
    encoder_ids = {id(p) for p in cell.encoder.parameters()}
    assert all(p.device.type == "meta" for p in cell.model.parameters() if id(p) not in encoder_ids)
    with OneDevicePerOp():
        loss = cell.model.loss(cell.train[:3])
    assert loss.device.type == "meta" and loss.dim() == 0


class DeviceProbe(nn.Module):
    """Stands in for the biLM: its boundary ids on `meta`, and the device of the char ids it was given."""

    def __init__(self):
        super().__init__()
        self.register_buffer("bos_ids", torch.zeros(50, dtype=torch.long, device="meta"))
        self.seen: torch.device | None = None

    def forward(self, char_ids: torch.Tensor):
        self.seen = char_ids.device
        return [char_ids.float()], char_ids[..., 0] > 0


def test_the_live_biLM_gets_its_char_ids_on_its_device():
    probe = DeviceProbe()
    LiveLayers(ElmoEncoder(probe, "fingerprint"))([("a", "sentence"), ("one",)])
    assert probe.seen == torch.device("meta")
