"""Task families. Adding a family: a module with a `Task` subclass (its config and head schemas as
class attributes), listed in FAMILIES; adding a task of an existing family: one file in conf/task/."""
from __future__ import annotations

from typing import Any

from .base import Example, Splits, Task, TaskModel
from .classification import ClassificationTask
from .pair_regression import PairRegressionTask
from .span_qa import SpanQATask
from .tagging import TaggingTask

FAMILIES: list[type[Task]] = [TaggingTask, PairRegressionTask, SpanQATask, ClassificationTask]


def task_schemas() -> dict[str, type]:
    return {family.family: family.config_schema for family in FAMILIES}


def head_schemas() -> dict[str, type]:
    return {kind: schema for family in FAMILIES for kind, schema in family.head_schemas.items()}


def make_task(config: Any) -> Task:
    for family in FAMILIES:
        if isinstance(config, family.config_schema):
            return family(config)
    raise TypeError(f"no task family takes a {type(config).__name__} config")


__all__ = ["Example", "FAMILIES", "Splits", "Task", "TaskModel", "head_schemas", "make_task", "task_schemas"]
