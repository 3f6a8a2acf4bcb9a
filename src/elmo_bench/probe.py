"""Linear probes: which layer of a frozen encoder carries a task's information (ELMo paper, section 5.3).

    elmo-bench-probe task=pos data.train_size=2000
    elmo-bench-probe task=sst5 probe.cell=outputs/sst5/feature_ensemble/cpu-small/n2000/seed1

For a task with token labels (tagging: one row per token) or sentence labels (classification: the mean of
the sentence's token vectors), a logistic regression on standardised features is fitted on each layer of the
frozen encoder, read from the same feature cache the runs use, so a probe costs seconds to minutes rather than a
training run. Its regularisation C is chosen on dev from `probe.c_grid`; dev and test accuracy per layer go
into `probe.json`. With `probe.cell` (a finished run with a learned scalar mix), the mix γ·Σ s_j·h_j of
that run's own weights is probed too, beside the single layers; and when that run fine-tuned the encoder and kept
it (`keep_encoder=true`, its `encoder.pt`), the fine-tuned layers are probed instead of the pretrained ones,
which shows what fine-tuning changed layer by layer.
"""
from __future__ import annotations

import hashlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .cell.atomic import write_json
from .cell.layout import ENCODER_FILE, PROBE_DIR, PROBE_FILE, RESULT_FILE, CellKey, size_and_seed, size_tag
from .cell.result import CellResult, InvalidResult
from .cell.runner import split_texts, subset_seed
from .config import DataConfig, check, check_seed
from .data.subsample import nested_subset
from .encoders import Encoder, load_encoder
from .errors import ConfigError
from .files import file_digest
from .strategies.base import FeatureCacheConfig
from .strategies.feature_cache import FeatureTable, load_or_compute
from .tasks import FAMILIES, Example, make_task

log = logging.getLogger(__name__)



@dataclass
class ProbeSettings:
    c_grid: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1, 1.0, 10.0])  # chosen on dev
    max_iter: int = 300
    cell: Optional[str] = None  # a finished run whose learned scalar mix is probed too
    batch_texts: int = 256  # texts gathered from the feature table at once

    def __post_init__(self) -> None:
        check(bool(self.c_grid) and all(c > 0 for c in self.c_grid), "probe.c_grid",
              f"needs positive values, got {list(self.c_grid)}")
        check(self.max_iter > 0, "probe.max_iter", f"must be > 0, got {self.max_iter}")


@dataclass
class ProbeConfig:
    task: Any = MISSING
    head: Any = None  # composed with the task's config (conf/task picks a head); a probe has none of its own
    model: Any = MISSING  # one of the encoder schemas (encoders/)
    data: DataConfig = field(default_factory=DataConfig)
    cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    seed: int = 1  # draws the training subset (as a run of this seed does)
    output_dir: str = "outputs"
    batch_tokens: int = 4000  # for computing features

    def __post_init__(self) -> None:
        check_seed(self.seed, "seed")


def register_probe_schema() -> None:
    ConfigStore.instance().store(name="probe_schema", node=ProbeConfig)


@dataclass(frozen=True)
class Probed:
    """One representation's probe: the C chosen on dev and the accuracies (×100)."""

    c: float
    dev: float
    test: float
    seconds: float
    converged: bool  # the chosen fit reached its tolerance within probe.max_iter


def fit_probe(train: tuple[np.ndarray, np.ndarray], dev: tuple[np.ndarray, np.ndarray],
              test: tuple[np.ndarray, np.ndarray], c_grid: list[float], max_iter: int) -> Probed:
    """Logistic regression on standardised features; C is the grid value with the best dev accuracy (the
    smallest C among ties, the most regularised)."""
    start = time.perf_counter()
    best = None
    for c in sorted(c_grid):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(*train)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        dev_accuracy = 100 * model.score(*dev)
        if best is None or dev_accuracy > best[1]:
            best = (c, dev_accuracy, model, converged)
    c, dev_accuracy, model, converged = best
    return Probed(c, dev_accuracy, 100 * model.score(*test), time.perf_counter() - start, converged)


def pooled(table: FeatureTable, examples: list[Example], tokens: bool, batch: int) -> tuple[np.ndarray, list]:
    """(rows, layers, dim) features and their labels: one row per token (tagging) or per sentence (its tokens'
    mean)."""
    features, labels = [], []
    for start in range(0, len(examples), batch):
        chunk = examples[start:start + batch]
        layers, mask = table([example.texts[0] for example in chunk])
        stacked = torch.stack(layers, dim=2)  # (B, T, L, D)
        if tokens:
            features.append(stacked[mask])
            labels += [tag for example in chunk for tag in example.label]
        else:
            counts = mask.sum(dim=1).clamp(min=1)[:, None, None]
            features.append((stacked * mask[..., None, None]).sum(dim=1) / counts)
            labels += [example.label for example in chunk]
    return torch.cat(features).numpy(), labels


@dataclass(frozen=True)
class LearnedMix:
    """A finished run's scalar mix (softmax weights and γ, from its result.json) and which run learned it."""

    weights: np.ndarray
    gamma: float
    strategy: str  # the run's strategy, its row in the layer table
    folder_part: str  # the probe folder's part that names the run: mix-<strategy>-n<size>-seed<seed>
    tuned_encoder: bool  # the run trained the encoder's weights: its mix weighs tuned layers, not frozen ones


def probed_cell(cell: str) -> CellResult:
    """The finished run `probe.cell` names."""
    path = Path(cell) / RESULT_FILE
    try:
        return CellResult.read(path)
    except InvalidResult as error:
        raise ConfigError(f"config key 'probe.cell': {path} is not a finished run's result ({error})") from None


def learned_mix(cell: str, family: str) -> LearnedMix:
    """The mix of the run in `cell`, which must be of the probe's task family (its layers are what the mix weighs)."""
    path = Path(cell) / RESULT_FILE
    result = probed_cell(cell)
    try:
        mix = result.scalar_mix
        weights, gamma = np.asarray(mix["weights"], dtype=np.float32), float(mix["gamma"])
        # The encoder is among the trained weights exactly when the run tuned it (finetune, two_stage).
        tuned = result.trainable_params > result.total_params - result.encoder_params
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"config key 'probe.cell': {path} holds no learned scalar mix ({error!r})") from None
    if (result.config or {}).get("inputs", {}).get("layer_norm"):
        raise ConfigError(f"config key 'probe.cell': {path} normalised each layer before its mix "
                          "(inputs.layer_norm=true); the probe mixes the raw layers, so it would not be that mix")
    check(result.task_family == family, "probe.cell", f"{path} is a {result.task_family} run ({result.task}); its mix"
          f" weighs layers for that task, and this probe's task is a {family} task")
    part = "-".join(("mix", result.strategy, *size_and_seed(str(result.train_size), result.seed)))
    return LearnedMix(weights, gamma, result.strategy, part, tuned)


def run_probe(config: ProbeConfig) -> dict:
    """Probe every layer (and a run's learned mix) and write probe.json into the probe's folder."""
    task = make_task(config.task)
    if task.probe_unit is None:
        probed = ", ".join(family.family for family in FAMILIES if family.probe_unit)
        raise ConfigError(f"config key 'task': a probe needs token or sentence labels ({probed}"
                          f" tasks), and '{task.name}' is a {task.family} task")
    mix = learned_mix(config.probe.cell, task.family) if config.probe.cell else None
    tuned = tuned_encoder(config.probe.cell)
    check(mix is None or not mix.tuned_encoder or tuned is not None, "probe.cell",
          f"{config.probe.cell} tuned the encoder but kept no {ENCODER_FILE} (keep_encoder=true); its mix weighs the"
          " tuned layers, so probing it on the pretrained ones would mislead: rerun that cell with keep_encoder=true")
    splits = task.load(config.data.root, config.data.use_hub)
    train = nested_subset(splits.train, config.data.train_size, subset_seed(config.data, config.seed))
    encoder = load_encoder(config.model, config.seed)
    if tuned is not None:  # the cell's fine-tuned weights: their own features, under their own cache key
        load_tuned(encoder, tuned)
    check(mix is None or len(mix.weights) == encoder.num_layers, "probe.cell",
          f"its mix weighs {mix and len(mix.weights)} layers, and this encoder has {encoder.num_layers}")
    table, costs = load_or_compute(encoder, split_texts(train=train, dev=splits.dev, test=splits.test),
                                   config.cache.dir, config.cache.dtype, config.batch_tokens)
    tokens = task.probe_unit == "token"
    data = {name: pooled(table, examples, tokens, config.probe.batch_texts)
            for name, examples in (("train", train), ("dev", splits.dev), ("test", splits.test))}
    representations = {f"layer {layer}": (lambda x, layer=layer: x[:, layer]) for layer in range(encoder.num_layers)}
    if mix is not None:
        representations["learned mix"] = lambda x: mix.gamma * np.einsum("nld,l->nd", x, mix.weights)
    probes = {name: fit_probe(*((pick(data[split][0]), data[split][1]) for split in ("train", "dev", "test")),
                              config.probe.c_grid, config.probe.max_iter)
              for name, pick in representations.items()}
    return _record(config, task, len(train), tokens, probes, costs, tuned, mix)


def tuned_encoder(cell: Optional[str]) -> Optional[Path]:
    """The fine-tuned encoder a run saved (keep_encoder=true), or None: probe the frozen, pretrained one."""
    path = Path(cell) / ENCODER_FILE if cell else None
    return path if path is not None and path.is_file() else None


def load_tuned(encoder: Encoder, weights: Path) -> None:
    """The run's fine-tuned weights into `encoder`, whose fingerprint then names them (their own cache key)."""
    try:
        encoder.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as error:  # a damaged file or another encoder's weights: say which file, never run it
        raise ConfigError(f"config key 'probe.cell': {weights} is not this encoder's weights ({error})") from None
    encoder.fingerprint = hashlib.sha256(f"{encoder.fingerprint}:tuned:{file_digest(weights)}".encode()).hexdigest()


def _record(config: ProbeConfig, task, train_size: int, tokens: bool, probes: dict[str, Probed], costs,
            encoder: Optional[Path], mix: Optional[LearnedMix]) -> dict:
    model = f"{config.model.label}-tuned" if encoder else config.model.label  # its own row in the layer table
    # What is probed takes the strategy's place in the cell layout, so a probe with one run's mix never overwrites
    # another's (or the plain one).
    probed = mix.folder_part if mix else "layers"
    folder = CellKey(task.name, probed, model, size_tag(config.data.train_size), config.seed).folder(
        Path(config.output_dir) / PROBE_DIR)
    record = {
        "status": "complete", "task": task.name, "task_family": task.family,
        "dataset": getattr(config.task, "dataset", task.name), "model": model, "mix_of": mix and mix.strategy,
        "train_size": train_size, "seed": config.seed, "unit": "token" if tokens else "sentence (mean of its tokens)",
        "metric": "accuracy", "cell": config.probe.cell, "c_grid": list(config.probe.c_grid),
        "encoder": f"fine-tuned: {encoder}" if encoder else "pretrained (frozen)",
        "probes": {name: {"c": p.c, "dev": round(p.dev, 4), "test": round(p.test, 4), "seconds": round(p.seconds, 3),
                          "converged": p.converged} for name, p in probes.items()},
        "feature_cost": [cost.record() for cost in costs],
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / PROBE_FILE, record)
    for name, p in probes.items():
        log.info("%s %s n=%d probe on %s: dev %.2f, test %.2f (C=%g, %.1fs)", task.name, model,
                 train_size, name, p.dev, p.test, p.c, p.seconds)
    return record
