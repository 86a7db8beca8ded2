"""Reading a dataset's files (local csv/tsv/jsonl/parquet, or the Hub) into normalised splits,
with the row and column checks that refuse bad data with its row numbers."""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
from datasets import Dataset

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..types import TaskSpec
from .task import TaskData

__all__ = ["check_rows", "load_local_or_hub", "normalise", "read_tsv"]

logger = logging.getLogger("signal_hf.data")

_SUFFIX_BUILDER = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def read_tsv(path: Path, names: list[str] | None, header: bool) -> Dataset:
    # Tab-separated with quoting disabled: QNLI and SST-2 fields contain bare quotes.
    import csv

    import pandas as pd

    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, header=0 if header else None, names=names, dtype=str, keep_default_na=False)
    return Dataset.from_pandas(df, preserve_index=False)


def normalise(ds: Dataset, text_col: str, pair_col: str | None, label_col: str, label_names: list[str] | None, id_prefix: str) -> Dataset:
    """Rename to the normalised columns and map labels (int or str) to indices of ``label_names``."""
    field_of = {"data.text_column": text_col, "data.label_column": label_col}
    if pair_col:
        field_of["data.text_pair_column"] = pair_col
    for fname, col in field_of.items():
        if col not in ds.column_names:
            raise ConfigError(fname, f"column {col!r} not in the dataset (columns: {ds.column_names})", f"set {fname} to one of {ds.column_names}")
    feature = ds.features[label_col]
    if label_names is None:
        if isinstance(feature, datasets.ClassLabel):
            label_names = list(feature.names)
        else:
            values = sorted(set(ds[label_col][:]), key=lambda v: (str(type(v)), v))
            if values and all(isinstance(v, int) for v in values):
                label_names = [str(i) for i in range(max(values) + 1)]
            else:
                label_names = [str(v) for v in values]
    index = {name: i for i, name in enumerate(label_names)}
    n = len(label_names)

    def to_index(value):
        if isinstance(feature, datasets.ClassLabel) or isinstance(value, int):
            i = int(value)
        elif isinstance(value, str) and value in index:
            return index[value]
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            i = int(value)
        else:
            raise ConfigError("data.label_names", f"label {value!r} is not in {label_names}", "list every label in data.label_names")
        if not 0 <= i < n:
            raise ConfigError("data.label_names", f"label index {i} out of range for {n} labels", "list every label in data.label_names")
        return i

    def convert(batch, idx):
        out = {
            "id": [f"{id_prefix}-{i}" for i in idx],
            "text": [str(t) for t in batch[text_col]],
            "label": [to_index(v) for v in batch[label_col]],
            "source": ["real"] * len(idx),
        }
        if pair_col:
            out["text_pair"] = [str(t) for t in batch[pair_col]]
        return out

    ds = ds.map(convert, batched=True, with_indices=True, remove_columns=ds.column_names)
    features = ds.features.copy()
    features["label"] = datasets.Value("int64")
    return ds.cast(features)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip())


def check_rows(ds: Dataset, columns: dict[str, str], split: str, *, drop: bool) -> tuple[Dataset, str | None]:
    """Rows of ``ds`` with an empty/whitespace/missing value in any of ``columns`` ({field: column}):
    a :class:`DataError` naming the field and the first row numbers (1-based data rows), or, with
    ``drop``, the dataset without them and a note saying how many were dropped."""
    bad: dict[int, str] = {}
    for fname, col in columns.items():
        for i, v in enumerate(ds[col][:]):
            if _missing(v) and i not in bad:
                bad[i] = fname
    if not bad:
        return ds, None
    rows = sorted(bad)
    if not drop:
        shown = ", ".join(f"{i + 1} ({bad[i]})" for i in rows[:5]) + (" …" if len(rows) > 5 else "")
        raise DataError(
            f"data: the {split} split has {len(rows)} row(s) with an empty or missing text or label, e.g. data row {shown} "
            "(fix: fill or delete those rows, or set data.drop_invalid_rows: true to drop them)"
        )
    keep = sorted(set(range(len(ds))) - set(rows))
    note = f"{split} split: {len(rows)} row(s) with an empty or missing text or label dropped (data.drop_invalid_rows)"
    logger.warning(note)
    return ds.select(keep), note


def _check_utf8(path: Path) -> None:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"data.dataset: {path} is not UTF-8 text: invalid byte 0x{e.object[e.start]:02x} at byte offset {e.start} (fix: re-save the file as UTF-8)") from None


def _looks_local(name: str) -> bool:
    """A dataset name that can only mean a local path (a Hub id is ``owner/name`` without a file suffix)."""
    return name.startswith(("/", "./", "../", "~")) or Path(name).suffix.lower() in _SUFFIX_BUILDER


def _local_files(path: Path, split: str, field: str) -> Path:
    if path.is_file():
        return path
    candidate = path / split
    if candidate.is_file():
        return candidate
    for suffix in _SUFFIX_BUILDER:
        if (path / f"{split}{suffix}").is_file():
            return path / f"{split}{suffix}"
    raise ConfigError(field, f"no file for split {split!r} in {path}", f"name a file (e.g. {split}.csv) or set {field}")


def _read_local(path: Path, cfg: DataConfig) -> dict[str, Dataset]:
    """The train and test splits of a local file or folder (csv, tsv, jsonl, parquet)."""
    raw: dict[str, Dataset] = {}
    for split, fname in (("train", "data.train_split"), ("test", "data.test_split")):
        name = cfg.train_split if split == "train" else cfg.test_split
        f = _local_files(path, name, fname) if path.is_dir() else (path if split == "train" else Path(name))
        if split == "test" and not f.is_file():
            raise ConfigError("data.test_split", f"test file {str(f)!r} not found", "with a single-file dataset, give the test file's path in data.test_split")
        builder = _SUFFIX_BUILDER.get(f.suffix.lower())
        if builder is None:
            raise ConfigError("data.dataset", f"unsupported file type {f.suffix!r}", "use csv, tsv, jsonl or parquet")
        if builder != "parquet":
            _check_utf8(f)
        if f.suffix.lower() == ".tsv":
            raw[split] = read_tsv(f, None, True)
            continue
        try:
            raw[split] = datasets.load_dataset(builder, data_files=str(f), split="train")
        except Exception as e:  # a malformed file: one line, not the builder's traceback
            cause = e.__cause__ or e
            raise DataError(f"data.dataset: cannot read {f} as {builder} ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}) (fix: check the file's format)") from None
    return raw


def _read_hub(cfg: DataConfig) -> dict[str, Dataset]:
    """The train and test splits of a Hub dataset (needs the network; never a default here)."""
    try:
        loaded = datasets.load_dataset(cfg.dataset, cfg.dataset_config)
    except Exception as e:  # the Hub client raises many types; report one line
        raise DataError(
            f"data.dataset: could not load {cfg.dataset!r} from the Hub ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}) "
            "(fix: check the id and network, or give a local file / one of sst2, ag_news, qnli)"
        ) from None
    for split, fname in ((cfg.train_split, "data.train_split"), (cfg.test_split, "data.test_split")):
        if split not in loaded:
            raise ConfigError(fname, f"split {split!r} not in {list(loaded)}", f"use one of {list(loaded)}")
    return {"train": loaded[cfg.train_split], "test": loaded[cfg.test_split]}


def _checked_splits(raw: dict[str, Dataset], cfg: DataConfig) -> list[dict]:
    """Refuse missing columns; check (or drop, ``data.drop_invalid_rows``) invalid rows in place.
    Returns the notes for the reports."""
    notes = []
    columns = {"data.text_column": cfg.text_column, "data.label_column": cfg.label_column}
    if cfg.text_pair_column:
        columns["data.text_pair_column"] = cfg.text_pair_column
    for split in ("train", "test"):
        missing = [f"{f}={c!r}" for f, c in columns.items() if c not in raw[split].column_names]
        if missing:
            fname, col = missing[0].split("=", 1)
            raise ConfigError(fname, f"column {col} not in the {split} split (columns: {raw[split].column_names})", f"set {fname} to one of {raw[split].column_names}")
        raw[split], note = check_rows(raw[split], columns, split, drop=cfg.drop_invalid_rows)
        if note:
            notes.append(note)
    return notes


def _text_label_names(train: Dataset, cfg: DataConfig) -> list[str] | None:
    """The label list when labels are text: ``data.label_names``, else the train split's sorted
    distinct values (one list for both splits); ``None`` for ClassLabel or integer labels."""
    if cfg.label_names:
        return list(cfg.label_names)
    if isinstance(train.features.get(cfg.label_column), datasets.ClassLabel):
        return None
    values = sorted({str(v) for v in train[cfg.label_column][:]})
    return values if values and not all(v.lstrip("-").isdigit() for v in values) else None


_SENTIMENT_WORDS = frozenset({"negative", "positive", "neutral", "neg", "pos", "bad", "good", "mixed", "very negative", "very positive"})


def infer_task_type(label_names: list[str], is_pair: bool) -> str:
    """``pair`` for two text columns, ``sentiment`` when every label is a sentiment word, else ``topic``
    (the generator's instruction template; ``data.task_type`` overrides)."""
    if is_pair:
        return "pair"
    return "sentiment" if {n.strip().lower() for n in label_names} <= _SENTIMENT_WORDS else "topic"


def load_local_or_hub(cfg: DataConfig) -> TaskData:
    path = Path(cfg.dataset).expanduser()
    if path.exists():
        raw, source = _read_local(path, cfg), path.name
    elif _looks_local(cfg.dataset):
        raise DataError(f"data.dataset: local file or folder {cfg.dataset!r} not found (fix: check the path; it is read relative to {Path.cwd()})")
    else:
        raw, source = _read_hub(cfg), cfg.dataset.replace("/", "_")
    notes = _checked_splits(raw, cfg)
    label_names = _text_label_names(raw["train"], cfg)
    train = normalise(raw["train"], cfg.text_column, cfg.text_pair_column, cfg.label_column, label_names, f"{source}-train")
    if label_names is None:
        feat = raw["train"].features[cfg.label_column]
        label_names = list(feat.names) if isinstance(feat, datasets.ClassLabel) else [str(i) for i in range(max(train["label"][:]) + 1)]
    classes = sorted(set(train["label"][:]))
    if len(classes) < 2:
        only = label_names[classes[0]] if classes else "none"
        raise DataError(f"data.label_column: the train split has {len(classes)} class ({only!r}); a classifier needs at least two (fix: check data.label_column and the file)")
    test = normalise(raw["test"], cfg.text_column, cfg.text_pair_column, cfg.label_column, label_names, f"{source}-test")
    is_pair = cfg.text_pair_column is not None
    task_type = cfg.task_type or infer_task_type(label_names, is_pair)
    if not cfg.task_type:
        notes.append(f"task type {task_type!r} inferred from the labels {list(label_names)} (set data.task_type to choose)")
    spec = TaskSpec(
        name=source,
        label_names=tuple(label_names),
        task_type=task_type,
        is_pair=is_pair,
        text_field_names=(cfg.text_column, cfg.text_pair_column) if is_pair else (cfg.text_column,),
    )
    return TaskData(spec, train, test, cfg.original_train_size or len(train), notes)
