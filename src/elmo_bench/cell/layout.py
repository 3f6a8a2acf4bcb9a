"""Where one cell's files live: the folder layout and the file names, defined here and nowhere else.

    <output_dir>/<task>/<strategy>/<model>/n<size>/seed<seed>/
        config.json            the resolved config (a rerun with another config is refused)
        .claim                 the live process running the cell (claim.py)
        checkpoint.pt          while it trains (resume)
        encoder.pt             the tuned encoder, when keep_encoder=true
        predictions/<split>.jsonl.gz   dev, test, extra_<name>: one JSON line per example, written once
        result.json            last: the cell is finished (result.py's CellResult)

Probes use the same layout under `<output_dir>/probe/`, with what they probe in the strategy's place.
Torch-free: the runner, the Hydra resolver (conf/config.yaml), the probe, the report, the scripts and the
benchmarks all read it.

Studies committed before per-cell predictions kept every cell's predictions in one `predictions.tar.gz` at the
study's top; that archive is frozen (never rewritten) and read in place, so it needs no unpacking.
"""
from __future__ import annotations

import gzip
import json
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .atomic import atomic_open

RESULT_FILE = "result.json"
CONFIG_FILE = "config.json"
CLAIM_FILE = ".claim"
CHECKPOINT_FILE = "checkpoint.pt"
ENCODER_FILE = "encoder.pt"  # the fine-tuned encoder's weights (keep_encoder), for probing
PREDICTIONS_DIR = "predictions"
PROBE_FILE = "probe.json"
PROBE_DIR = "probe"
FROZEN_ARCHIVE = "predictions.tar.gz"  # a study's predictions from before they were stored per cell
DEPTH = 5  # task / strategy / model / n<size> / seed<seed>


def size_tag(train_size: float | None) -> str:
    """The folder's size part without its `n`: 500, 0.1 (a fraction of the pool), all."""
    if train_size is None:
        return "all"
    return str(int(train_size)) if float(train_size).is_integer() else f"{train_size:g}"


def size_and_seed(size: str, seed: int) -> tuple[str, str]:
    """The folder names of a cell's size and seed: n<size>, seed<seed>."""
    return f"n{size}", f"seed{seed}"


@dataclass(frozen=True)
class CellKey:
    """What names a cell's folder; `size` is the requested size as `size_tag` writes it."""

    task: str
    strategy: str
    model: str
    size: str
    seed: int

    @property
    def relative(self) -> Path:
        return Path(self.task, self.strategy, self.model, *size_and_seed(self.size, self.seed))

    def folder(self, root: str | Path) -> Path:
        return Path(root) / self.relative

    @classmethod
    def of(cls, folder: str | Path) -> CellKey | None:
        """The key a folder's last five names spell, or None when they do not follow the layout."""
        parts = Path(folder).parts[-DEPTH:]
        if len(parts) < DEPTH or not parts[3].startswith("n") or not parts[4].startswith("seed"):
            return None
        try:
            seed = int(parts[4][len("seed"):])
        except ValueError:
            return None
        return cls(parts[0], parts[1], parts[2], parts[3][1:], seed)


def cell_subdir(task: str, strategy: str, model: str, train_size: float | None, seed: int) -> str:
    """The Hydra resolver `cell_subdir` (conf/config.yaml): a cell's folder relative to output_dir."""
    return str(CellKey(task, strategy, model, size_tag(train_size), int(seed)).relative)


def cell_folders(root: Path) -> list[Path]:
    """Every folder at any depth under `root` laid out as a cell (finished or not), sorted."""
    return sorted(path for path in Path(root).rglob("seed*") if path.is_dir() and CellKey.of(path) is not None)


def predictions_name(split: str) -> str:
    """A split's predictions file, relative to the cell folder (as result.json's `predictions` names it)."""
    return f"{PREDICTIONS_DIR}/{split}.jsonl.gz"


def write_predictions(folder: Path, split: str, records: list[dict]) -> str:
    """Write a split's predictions, gzipped with a fixed header (same records, same bytes); their name."""
    name = predictions_name(split)
    (folder / PREDICTIONS_DIR).mkdir(exist_ok=True)
    with atomic_open(folder / name) as handle, gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as zipped:
        for record in records:
            zipped.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    return name


def read_predictions_text(folder: Path, name: str) -> str:
    """A predictions file named in result.json, wherever the study keeps it: as written (`.jsonl` by runs from
    before gzip, `.jsonl.gz`), gzipped beside it, or in the study's frozen archive. OSError when none holds it."""
    path = folder / name
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            data = candidate.read_bytes()
            return (gzip.decompress(data) if candidate.suffix == ".gz" else data).decode("utf-8")
    for archive in (parent / FROZEN_ARCHIVE for parent in folder.parents):
        if archive.is_file():
            member = f"./{(folder / name).relative_to(archive.parent).as_posix()}"
            members = _archive_members(archive.resolve(), archive.stat().st_mtime_ns)
            if member in members:
                return members[member].decode("utf-8")
    raise FileNotFoundError(f"{path}: no such file (nor {path.name}.gz, nor in a {FROZEN_ARCHIVE} above it)")


@lru_cache(maxsize=2)  # a report reads every cell of a study: unpack its archive once
def _archive_members(archive: Path, mtime_ns: int) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}


def read_predictions(folder: Path, name: str) -> list[dict]:
    """The records of a predictions file named in result.json (see read_predictions_text)."""
    return [json.loads(line) for line in read_predictions_text(folder, name).splitlines()]
