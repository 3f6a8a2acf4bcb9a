"""One cell of the comparison: build -> train -> evaluate -> write result.json.

The cell's folder (layout.py) holds `checkpoint.pt` while it trains, then its predictions and, last of all,
`result.json`; a folder with result.json is finished and is skipped when run again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from .. import host_speed
from ..config import DataConfig, Device, RunConfig
from ..data.subsample import dev_count, nested_subset
from ..encoders import Encoder, load_encoder
from ..errors import CellBusy, ConfigError, DataError
from ..strategies import EmbedderContext, Strategy, make_strategy, parameter_groups
from ..strategies.embedder import WordVocabulary
from ..strategies.feature_cache import FeatureCost
from ..tasks import Example, Splits, Task, make_task
from ..threads import set_threads
from ..training import Attempt, Progress, Trainer, check_precision, predict, resolve_precision
from .atomic import save_torch, write_json
from .claim import CellLock
from .identity import check_same_cell, config_record
from .layout import (CHECKPOINT_FILE, CONFIG_FILE, ENCODER_FILE, RESULT_FILE, CellKey, predictions_name, size_tag,
                     write_predictions)
from .result import CellResult

log = logging.getLogger(__name__)

def cell_dir(config: RunConfig) -> Path:
    """The cell's folder under output_dir (layout.py): the same path on every rerun."""
    root = Path(config.output_dir)
    folder = CellKey(config.task.name, config.strategy.name, config.model.label, size_tag(config.data.train_size),
                     config.seed).folder(root)
    # The names are checked one by one (check_path_part); a symlink inside output_dir could still lead out.
    if not folder.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"config key 'output_dir': the cell folder {folder} resolves to {folder.resolve()},"
                          f" outside {root.resolve()}")
    return folder


def make_cell_folder(folder: Path) -> None:
    """Create the cell folder and check it takes files, so a bad output_dir fails before any work."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        raise ConfigError(f"config key 'output_dir': {existing} is a file, not a folder (cell folder {folder})")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise ConfigError(f"config key 'output_dir': cannot write the cell folder {folder}"
                          f" ({error.strerror}: {error.filename or folder})") from None


def resolve_device(device: Device) -> torch.device:
    if device == Device.cuda and not torch.cuda.is_available():
        raise ConfigError("config key 'trainer.device': cuda requested but no CUDA device is available")
    if device == Device.auto:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device.value)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("elmo-bench", "torch", "numpy", "hydra-core", "seqeval", "transformers", "tokenizers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def subset_digest(examples: list[Example]) -> str:
    """Identifies the training subset, so anyone can check two runs trained on the same examples."""
    return hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()[:16]


def data_digest(splits: Splits) -> str:
    """Identifies the data read (every split's ids, texts and labels), wherever its files lay: the report pairs
    two runs only when they read the same data."""
    digest = hashlib.sha256()
    for split in (splits.train, splits.dev, splits.test):
        for example in split:
            digest.update(json.dumps([example.id, example.texts, example.label], default=str).encode())
        digest.update(b"\x1d")
    return digest.hexdigest()[:16]


def count_parameters(*modules: torch.nn.Module) -> int:
    """Distinct parameters over the modules (the encoder is inside the task model only when fine-tuned)."""
    unique = {id(p): p.numel() for module in modules for p in module.parameters()}
    return sum(unique.values())


def split_texts(**splits: list[Example]) -> dict[str, list]:
    return {name: [text for example in split for text in example.texts] for name, split in splits.items()}


def finished_result(folder: Path, record: dict, force: bool) -> dict | None:
    result_file = folder / RESULT_FILE
    if force or not result_file.is_file():
        return None
    check_same_cell(folder, record, "finished result")
    log.info("%s is finished; skipping (force=true reruns it)", folder)
    return CellResult.read(result_file).to_json()


def run(config: RunConfig) -> dict | None:
    """Train and evaluate one cell; its stored result when already finished; None when another live
    process holds the cell (a second launcher on the same folder)."""
    folder = cell_dir(config)
    record = config_record(config)
    if (result := finished_result(folder, record, config.force)) is not None:
        return result
    make_cell_folder(folder)
    try:
        with CellLock(folder):
            # Another process may have finished the cell while this one waited to claim it.
            if (result := finished_result(folder, record, config.force)) is not None:
                return result
            checkpoint = folder / CHECKPOINT_FILE
            if config.force:
                checkpoint.unlink(missing_ok=True)
            elif checkpoint.is_file():
                check_same_cell(folder, record, "checkpoint")
            write_json(folder / CONFIG_FILE, record)
            return train_and_evaluate(config, folder, checkpoint, record)
    except CellBusy as busy:
        log.warning("%s", busy)
        return None


@dataclass
class Cell:
    """Everything one run builds before training."""

    task: Task
    strategy: Strategy
    splits: Splits
    train: list[Example]
    dev: list[Example]  # the dev examples that select the checkpoint (data.dev_size)
    encoder: Encoder
    embedder: torch.nn.Module
    model: torch.nn.Module
    groups: list[dict]
    feature_seconds: float  # building the embedder: computing or reading the frozen encoder's features
    feature_costs: list[FeatureCost]  # per split: what its features cost, whichever cell computed them


def subset_seed(data: DataConfig, seed: int) -> int:
    """The seed of the training subset: data.subset_seed, or the run's seed when that is null."""
    return seed if data.subset_seed is None else data.subset_seed


def build(config: RunConfig, device: torch.device) -> Cell:
    torch.manual_seed(config.seed)
    task = make_task(config.task)
    strategy = make_strategy(config.strategy)
    splits = task.load(config.data.root, config.data.use_hub)
    train = nested_subset(splits.train, config.data.train_size, subset_seed(config.data, config.seed))
    if not train:
        raise DataError(f"task '{task.name}': the training split is empty ({splits.source})")
    dev = nested_subset(splits.dev, dev_count(config.data.dev_size, config.data.dev_cap, len(train), len(splits.dev)),
                        subset_seed(config.data, config.seed), "data.dev_size", "dev")
    encoder = load_encoder(config.model, config.seed)
    # Distinct texts: a SQuAD context shared by five questions must not count its words five times.
    train_texts = dict.fromkeys(text for example in train for text in example.texts)
    vocabulary = WordVocabulary(train_texts, config.inputs.min_word_count) if config.inputs.word_dim else None
    extra_tests = {f"extra_{name}": extra.examples for name, extra in splits.extra_test.items()}  # featurised too
    texts = split_texts(train=train, dev=dev, test=splits.test, **extra_tests)  # the dev a run scores, no more
    context = EmbedderContext(texts, vocabulary, config.inputs, config.trainer.eval_batch_tokens, device)
    start = time.perf_counter()
    embedder = strategy.build_embedder(encoder, context)
    feature_seconds = time.perf_counter() - start
    model = task.build_model(embedder, config.head, train).to(device)
    groups = parameter_groups(strategy, model, config.trainer.lr)
    return Cell(task, strategy, splits, train, dev, encoder, embedder, model, groups, feature_seconds,
                context.feature_costs)


def evaluate(cell: Cell, config: RunConfig, device: torch.device, folder: Path) -> dict[str, dict | None]:
    """Score dev and test (x100) and write their predictions; a split without gold labels gets None."""
    return {split: score_split(cell, config, device, examples, folder, split)
            for split, examples in (("dev", cell.dev), ("test", cell.splits.test))}


def score_split(cell: Cell, config: RunConfig, device: torch.device, examples: list[Example], folder: Path,
                split: str) -> dict | None:
    """The split's metrics x100 (None without gold labels), after writing its predictions; a table among them
    (a confusion matrix) is kept as it is."""
    predicted = predict(cell.task, cell.model, examples, config.trainer, device)
    gold = [e.label for e in examples]
    scores = None if any(label is None for label in gold) else cell.task.score(gold, predicted)
    write_predictions(folder, split, [cell.task.prediction_record(e, p) for e, p in zip(examples, predicted)])
    return scores and {k: round(100 * v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def evaluate_extra_tests(cell: Cell, config: RunConfig, device: torch.device, folder: Path) -> dict[str, dict]:
    """Each task.extra_test set scored by the selected model, as result.json's `extra_test` records it."""
    records = {}
    for name, extra in cell.splits.extra_test.items():
        metrics = score_split(cell, config, device, extra.examples, folder, f"extra_{name}")
        records[name] = {"metric": cell.task.metric, "score": main_metric(metrics, cell.task.metric),
                         "metrics": metrics, "examples": len(extra.examples), **extra.details,
                         "predictions": predictions_name(f"extra_{name}"), "source": extra.source}
    return records


def train_and_evaluate(config: RunConfig, folder: Path, checkpoint: Path, record: dict) -> dict:
    attempt = Attempt()  # the cell's wall and CPU time, counted from here
    device = resolve_device(config.trainer.device)
    check_precision(device, config.trainer.precision)  # before the features, which may take hours
    # auto settles here, on the device the cell runs on; the config record (written already) keeps what was asked
    config = replace(config, trainer=replace(config.trainer,
                                             precision=resolve_precision(device, config.trainer.precision)))
    set_threads(config.trainer.threads)
    host_seconds_at_start = host_speed.reference_seconds(device)
    cell = build(config, device)
    trainer = Trainer(cell.task, cell.model, cell.strategy, cell.groups, config.trainer, device, config.seed,
                      checkpoint, regularizer=lambda: config.inputs.mix_l2 * cell.embedder.mix_penalty(),
                      attempt=attempt)
    progress = trainer.fit(cell.train, cell.dev)
    metrics = evaluate(cell, config, device, folder)
    result = result_record(config, cell, progress, metrics, device, record)
    result.extra_test = evaluate_extra_tests(cell, config, device, folder)
    result.floor = floor_record(cell)
    result.host_speed = host_speed.record(device, host_seconds_at_start)
    if config.keep_encoder and tunes_encoder(cell):
        save_torch(folder / ENCODER_FILE, {name: tensor.cpu() for name, tensor in cell.encoder.state_dict().items()})
    # Everything the cell cost: features, training, dev scoring, the final predictions; a resumed cell adds its
    # earlier attempts up to the checkpoint it resumed from (work after an attempt's last checkpoint is redone).
    result.wall_seconds, result.cpu_seconds = round(attempt.wall(), 3), round(attempt.cpu(), 3)
    result.write(folder)
    if not config.keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    log.info("%s %s %s n=%d seed=%d: dev %s %s, test %s (%d epochs, %.1fs)", cell.task.name, result.strategy,
             result.model, len(cell.train), config.seed, cell.task.metric, result.dev, result.test,
             progress.epoch, progress.train_seconds)
    return result.to_json()


def floor_record(cell: Cell) -> dict | None:
    """The task's trivial baseline on test (×100, like `test`), from the training subset alone; None where the
    family has none or test has no gold labels."""
    test = cell.splits.test
    found = cell.task.floor(cell.train, test)
    if found is None or any(example.label is None for example in test):
        return None
    rule, predicted = found
    score = cell.task.score([example.label for example in test], predicted)[cell.task.metric]
    return {"rule": rule, "metric": cell.task.metric, "test": round(100 * score, 4)}


def tunes_encoder(cell: Cell) -> bool:
    """Whether the optimiser updates any of the encoder's weights (finetune, two_stage; not feature_ensemble)."""
    optimised = {id(p) for group in cell.groups for p in group["params"]}
    return any(id(p) in optimised for p in cell.encoder.parameters())


def main_metric(metrics: dict | None, name: str) -> float | None:
    return None if metrics is None else metrics[name]


def result_record(config: RunConfig, cell: Cell, progress: Progress, metrics: dict, device,
                  record: dict) -> CellResult:
    size = config.data.train_size
    return CellResult(
        task=cell.task.name,
        task_family=cell.task.family,
        dataset=getattr(config.task, "dataset", cell.task.name),
        strategy=cell.strategy.name,
        baseline=cell.strategy.is_baseline,
        model=config.model.label,
        encoder=cell.encoder.kind,
        encoder_fingerprint=cell.encoder.fingerprint,
        train_size=len(cell.train),
        requested_train_size=size and (int(size) if size >= 1 else size),
        train_pool=len(cell.splits.train),
        train_subset_digest=subset_digest(cell.train),
        data_digest=data_digest(cell.splits),
        seed=config.seed,
        subset_seed=subset_seed(config.data, config.seed),
        metric=cell.task.metric,
        dev=main_metric(metrics["dev"], cell.task.metric),
        test=main_metric(metrics["test"], cell.task.metric),
        metrics=metrics,
        epochs=progress.epoch,
        steps=progress.step,
        best_epoch=progress.best_epoch,
        best_step=progress.best_step,
        stages=progress.stages,
        lr_at_best=progress.best_lr,
        train_seconds=round(progress.train_seconds, 3),
        seconds_per_epoch=round(progress.train_seconds / max(1, progress.epoch), 3),
        eval_seconds=round(progress.eval_seconds, 3),  # scoring dev during training
        feature_seconds=round(cell.feature_seconds, 3),
        feature_cost=[cost.record() for cost in cell.feature_costs],
        history=progress.history,
        trainable_params=sum(p.numel() for group in cell.groups for p in group["params"]),
        total_params=count_parameters(cell.model, cell.encoder),
        encoder_params=count_parameters(cell.encoder),
        peak_memory_mb=round(peak_memory_mb(device), 1),
        scalar_mix=cell.embedder.mix_summary(),
        device=str(device),
        precision=str(config.trainer.precision),
        threads=torch.get_num_threads(),
        data_source=cell.splits.source,
        data_details={**cell.splits.details, "dev_examples": len(cell.dev), "dev_pool": len(cell.splits.dev)},
        versions=package_versions(),
        predictions={split: predictions_name(split) for split in ("dev", "test")},
        config=record,
    )
