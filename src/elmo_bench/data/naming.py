"""The data set's name in cells and reports: the stock name only for the stock files, else the user's own.

Used by conf/task/*.yaml through the resolvers `dataset_name` and `stock_dataset` (registered in config.py),
so the name is settled when the config is composed and the cell folder and result.json agree on it.
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Optional

from ..errors import ConfigError

# A file named only by its split says nothing of the data set; its folder does (tweets/train.txt -> tweets).
SPLIT_WORDS = frozenset({"train", "training", "dev", "valid", "validation", "test", "eval"})


def dataset_name(*sources: Optional[str]) -> str:
    """The name taken from the first source that is set: a file's stem (its folder's name when the stem is a
    split word) or a hub id's last part (a hub config such as GLUE's `sst2` is passed before the id)."""
    source = next((s for s in sources if s not in (None, "")), None)
    if source is None:
        raise ConfigError("config key 'task.train_file': not set, and no task.hub_id either: set"
                          " task.train_file=PATH (with task.test_file=PATH), or task.hub_id=ID for a hub data set")
    path = PurePath(str(source))
    if path.stem.lower() in SPLIT_WORDS and path.parent.name:
        return path.parent.name
    return path.stem



def stock_dataset(name: str, file: Optional[str], stock_file: Optional[str]) -> str:
    """`name` while the task reads its stock training file; with a file of the user's own, that file's name."""
    return name if file == stock_file else dataset_name(file)
