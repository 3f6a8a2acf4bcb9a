"""What makes two runs the same cell: the config as the cell records it, compared key by key.

A rerun may change how a cell runs (threads, device, the rerun switches) but not what it is; a folder that holds
a checkpoint or a result of another config is refused. Torch-free.
"""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from ..errors import ConfigError
from .layout import CONFIG_FILE

# Config keys added after runs were recorded, with the value every earlier run had: a cell folder or result file
# written before a key existed is the same experiment as one that sets the key to this value.
# task.unseen_labels: earlier runs scored an unseen tag as wrong without a word; on data where a run with "error"
# succeeds (no unseen tag), that is the same experiment. Issue 52's recipe keys: earlier runs spanned each stage's
# budget, clipped all parameters jointly, scored the whole dev split and had patience follow the last score alone
# (data.dev_cap plays no part with dev_size null). task.extra_test_max_examples / extra_test_seed: earlier runs
# scored every example of an extra test set.
ADDED_KEYS = {"trainer.min_delta": 0.0, "task.unseen_labels": "error", "trainer.schedule_horizon": "budget",
              "trainer.clip_groups": "joint", "trainer.smooth_evals": 1, "data.dev_size": None,
              "data.dev_cap": 1000, "task.extra_test_max_examples": {}, "task.extra_test_seed": 0}
# Keys that may change without changing the cell: a run may resume with another thread count, or on another
# device (a cell started on a CPU and resumed on a GPU; the checkpoint is loaded onto whichever runs it).
IGNORED_FOR_IDENTITY = ("force", "keep_checkpoint", "keep_encoder", "trainer.device", "trainer.threads")


def config_record(config) -> dict:
    """The run config as config.json and result.json store it; the encoder's config scrubs what must not be
    stored (credentials in a URL)."""
    record = json.loads(json.dumps(OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True)))
    record["model"] = config.model.public_record(record["model"])
    return record


def identity_differences(stored: dict, current: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two config records (ignoring the rerun switches)."""
    differences = []
    for key in sorted(set(stored) | set(current)):
        if f"{prefix}{key}" in IGNORED_FOR_IDENTITY:
            continue
        old, new = (record.get(key, ADDED_KEYS.get(f"{prefix}{key}")) for record in (stored, current))
        if isinstance(old, dict) and isinstance(new, dict):
            differences += identity_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def check_same_cell(folder: Path, record: dict, what: str) -> None:
    """Refuse to mix two different experiments in one cell folder."""
    stored_file = folder / CONFIG_FILE
    if not stored_file.is_file():
        return
    differences = identity_differences(json.loads(stored_file.read_text(encoding="utf-8")), record)
    if differences:
        raise ConfigError(
            f"{folder} holds a {what} of a different config ({'; '.join(differences[:5])}); use another"
            " output_dir, or force=true to replace it"
        )
