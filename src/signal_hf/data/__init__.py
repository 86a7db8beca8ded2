"""Loading classification tasks and drawing the real pool.

Every dataset is normalised to the columns documented in :class:`~signal_hf.types.TaskSpec`:
``id`` (stable across runs), ``text``, ``text_pair`` (pair tasks), ``label`` (int), ``source``.

Sources:

* ``sst2``, ``ag_news``, ``qnli`` — the offline copies in ``data.data_dir`` (``SHA256SUMS`` verified).
  AG News train is a 10k sample of the 120k split (pools are sized against 120k); it has no titles,
  so the test split uses the description only, like the train sample. QNLI has only its validation
  split offline: a seeded, disjoint split of it gives the pool source and the evaluation set
  (:data:`FALLBACK_SPLIT_SEED`), and every report prints that note.
* a Hub dataset id (``load_dataset(id, config)``) — needs network access.
* a local csv/tsv/jsonl/parquet file or folder.
"""

from __future__ import annotations

import logging

from datasets import Dataset

from ..config import DataConfig
from ..errors import ConfigError, DataError
from .builtin import BUILTIN_TASKS, FALLBACK_SPLIT_SEED, load_builtin, verify_checksums
from .files import check_rows, load_local_or_hub
from .task import TaskData

__all__ = ["TaskData", "load_task", "label_names_of", "is_pair_task", "pool_size", "sample_pool", "check_rows", "verify_checksums", "BUILTIN_TASKS", "FALLBACK_SPLIT_SEED"]

logger = logging.getLogger("signal_hf.data")


def load_task(cfg: DataConfig) -> TaskData:
    """Load and normalise the task named by ``cfg.dataset``; optionally subsample the test split."""
    if cfg.dataset in BUILTIN_TASKS:
        task = load_builtin(cfg.dataset, cfg)
    else:
        task = load_local_or_hub(cfg)
    if len(task.train) == 0 or len(task.test) == 0:
        raise DataError(f"data.dataset: {cfg.dataset!r} has an empty train or test split (fix: check the files)")
    if cfg.max_test_samples is not None and cfg.max_test_samples < len(task.test):
        # A fixed seed: every trial and method is evaluated on the same rows.
        task.test = task.test.shuffle(seed=FALLBACK_SPLIT_SEED).select(range(cfg.max_test_samples))
        task.notes.append(f"test set: a seeded subset of {cfg.max_test_samples} rows")
    logger.info("loaded task %s: %d train rows, %d test rows, labels %s", task.spec.name, len(task.train), len(task.test), list(task.spec.label_names))
    return task


def label_names_of(cfg: DataConfig) -> tuple[str, ...] | None:
    """The label list in index order as far as the recipe fixes it, without reading data: a built-in
    task's, else ``data.label_names``; ``None`` when only the data's features know it."""
    if cfg.dataset in BUILTIN_TASKS:
        return BUILTIN_TASKS[cfg.dataset].label_names
    return tuple(cfg.label_names) if cfg.label_names else None


def is_pair_task(cfg: DataConfig) -> bool:
    """Whether the recipe names a sentence-pair task, without reading data."""
    if cfg.dataset in BUILTIN_TASKS:
        return BUILTIN_TASKS[cfg.dataset].task_type == "pair"
    return cfg.text_pair_column is not None


def pool_size(task: TaskData, fraction: float) -> int:
    return max(1, int(round(fraction * task.original_train_size)))


def sample_pool(task: TaskData, fraction: float, seed: int) -> Dataset:
    """Draw the real pool R: ``fraction`` of the original train size, seeded (the paper's 0.1% / 1%)."""
    n = pool_size(task, fraction)
    if n > len(task.train):
        raise ConfigError(
            "data.pool_fraction",
            f"asks for {n} rows but only {len(task.train)} are available",
            f"use at most {len(task.train) / task.original_train_size:.4g}",
        )
    return task.train.shuffle(seed=seed).select(range(n)).flatten_indices()
