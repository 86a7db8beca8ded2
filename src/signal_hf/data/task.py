"""A loaded task: what the loop and the reports need of a dataset."""

from __future__ import annotations

from dataclasses import dataclass, field

from datasets import Dataset

from ..types import TaskSpec

__all__ = ["TaskData"]


@dataclass
class TaskData:
    """A loaded task: normalised train (pool source) and test datasets plus what reports must say."""

    spec: TaskSpec
    train: Dataset
    test: Dataset
    original_train_size: int
    notes: list[str] = field(default_factory=list)
