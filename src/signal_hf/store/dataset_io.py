"""A round's splits as parquet files (``data/<split>-00000-of-00001.parquet``, the Hub's layout).

Empty splits get no file (``datasets`` refuses to build an empty split) but keep their schema in
the split table that :func:`write_splits` returns, so they load back as empty Datasets with the
same features.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset, Features
from datasets.table import InMemoryTable

from signal_hf.errors import StoreError
from signal_hf.store.durable import fsync_dir, fsync_file
from signal_hf.store.layout import DATA_DIR, split_filename


def write_dataset_parquet(ds: Dataset, path: Path) -> None:
    """Write ``ds`` (indices applied) as one parquet file whose schema carries the HF features."""
    table = ds.with_format("arrow")[:]
    # The "huggingface" schema metadata is what restores ClassLabel & co. on read.
    table = table.replace_schema_metadata(ds.features.arrow_schema.metadata)
    pq.write_table(table, path)
    fsync_file(path)


def read_dataset_parquet(path: Path, features: Features | None = None) -> Dataset:
    table = pq.read_table(path, memory_map=False)
    ds = Dataset(InMemoryTable(table))
    if features is not None and ds.features != features:
        ds = ds.cast(features)
    return ds


def write_splits(datasets: dict[str, Dataset], folder: Path) -> dict[str, dict]:
    """Write every non-empty split under ``folder``; returns ``{split: {num_rows, features}}``."""
    (folder / DATA_DIR).mkdir()
    splits = {}
    for name, ds in datasets.items():
        if ds.num_rows > 0:
            write_dataset_parquet(ds, folder / split_filename(name))
        splits[name] = {"num_rows": ds.num_rows, "features": ds.features.to_dict()}
    fsync_dir(folder / DATA_DIR)
    return splits


def read_splits(folder: Path, splits: dict[str, dict]) -> dict[str, Dataset]:
    """The splits :func:`write_splits` wrote, checked against their row counts."""
    datasets: dict[str, Dataset] = {}
    for name, info in splits.items():
        features = Features.from_dict(info["features"])
        path = folder / split_filename(name)
        if info["num_rows"] == 0:
            datasets[name] = Dataset(InMemoryTable(features.arrow_schema.empty_table()))
        elif not path.is_file():
            raise StoreError(f"round folder {folder} is incomplete: {split_filename(name)} is missing")
        else:
            ds = read_dataset_parquet(path, features)
            if ds.num_rows != info["num_rows"]:
                raise StoreError(
                    f"round folder {folder} is corrupt: split {name!r} has {ds.num_rows} rows, expected {info['num_rows']}"
                )
            datasets[name] = ds
    return datasets
