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
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from datasets import Dataset

from .config import DataConfig
from .checksums import sha256_file
from .errors import ConfigError, DataError
from .types import TaskSpec

__all__ = ["TaskData", "load_task", "sample_pool", "verify_checksums", "BUILTIN_TASKS", "FALLBACK_SPLIT_SEED"]

logger = logging.getLogger(__name__)

# Seed of the documented QNLI fallback split; fixed so every trial evaluates on the same rows.
FALLBACK_SPLIT_SEED = 20240601

_SUFFIX_BUILDER = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass
class _Builtin:
    files: dict[str, str]
    label_names: tuple[str, ...]
    task_type: str
    text_fields: tuple[str, ...]
    original_train_size: int
    fallback: bool = False  # no train split offline: split the "train" file into pool source and eval
    note: str = ""


BUILTIN_TASKS: dict[str, _Builtin] = {
    "sst2": _Builtin(
        files={"train": "sst2/train.tsv", "test": "sst2/validation.tsv"},
        label_names=("negative", "positive"),
        task_type="sentiment",
        text_fields=("review",),
        original_train_size=67_349,
        note="SST-2: GLUE train split as pool source; GLUE validation split as the test set (as in the paper).",
    ),
    "ag_news": _Builtin(
        files={"train": "ag_news/train_sample_10k.tsv", "test": "ag_news/test.csv", "classes": "ag_news/classes.txt"},
        label_names=("World", "Sports", "Business", "Sci/Tech"),
        task_type="topic",
        text_fields=("article",),
        original_train_size=120_000,
        note="AG News: pool drawn from a 10k random sample of the 120k train split (sized against 120k); "
        "descriptions only (the sample has no titles); official test split.",
    ),
    "qnli": _Builtin(
        files={"train": "qnli/validation.tsv", "test": "qnli/validation.tsv"},
        label_names=("entailment", "not_entailment"),
        task_type="pair",
        text_fields=("question", "sentence"),
        original_train_size=104_743,
        fallback=True,
        note="QNLI: only the validation split is available offline; it is split (seed "
        f"{FALLBACK_SPLIT_SEED}) into a disjoint pool source and evaluation set — "
        "accuracies are on that held-out part, not the official split.",
    ),
}


@dataclass
class TaskData:
    """A loaded task: normalised train (pool source) and test datasets plus what reports must say."""

    spec: TaskSpec
    train: Dataset
    test: Dataset
    original_train_size: int
    notes: list[str] = field(default_factory=list)



def verify_checksums(data_dir: Path, rel_paths: list[str]) -> None:
    """Check ``rel_paths`` against ``data_dir/SHA256SUMS``; raise DataError naming the file and the fix."""
    sums_file = data_dir / "SHA256SUMS"
    if not sums_file.is_file():
        raise DataError(f"{sums_file} not found: cannot verify the offline data (fix: point data.data_dir at the shared data folder, or set data.verify_checksums: false)")
    expected = {}
    for line in sums_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            expected[parts[1].lstrip("*")] = parts[0]
    for rel in rel_paths:
        path = data_dir / rel
        if not path.is_file():
            raise DataError(f"data file {path} is missing (fix: restore it, or point data.data_dir / SIGNAL_HF_DATA_DIR at the shared data folder)")
        if rel not in expected:
            raise DataError(f"{rel} is not listed in {sums_file} (fix: restore SHA256SUMS)")
        if sha256_file(path) != expected[rel]:
            raise DataError(f"{path} does not match its SHA256SUMS entry: the file was altered or truncated (fix: restore the original file)")


def resolve_data_dir(cfg: DataConfig) -> Path:
    """``SIGNAL_HF_DATA_DIR``, else ``data.data_dir`` (a relative path is tried from the working
    directory, then from the project root of a source checkout)."""
    path = Path(os.environ.get("SIGNAL_HF_DATA_DIR") or cfg.data_dir).expanduser()
    if not path.is_absolute() and not path.exists():
        root = Path(__file__).resolve().parents[2]
        if (root / "pyproject.toml").is_file() and (root / path).exists():
            return root / path
    return path


def _read_tsv(path: Path, names: list[str] | None, header: bool) -> Dataset:
    # Tab-separated with quoting disabled: QNLI and SST-2 fields contain bare quotes.
    import csv

    import pandas as pd

    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, header=0 if header else None, names=names, dtype=str, keep_default_na=False)
    return Dataset.from_pandas(df, preserve_index=False)


def _load_builtin(name: str, cfg: DataConfig) -> TaskData:
    b = BUILTIN_TASKS[name]
    data_dir = resolve_data_dir(cfg)
    if cfg.verify_checksums:
        verify_checksums(data_dir, sorted(set(b.files.values())))
    else:
        for rel in b.files.values():
            if not (data_dir / rel).is_file():
                raise DataError(f"data file {data_dir / rel} is missing (fix: point data.data_dir at the shared data folder)")
    labels = list(b.label_names)
    if name == "sst2":
        train = _read_tsv(data_dir / b.files["train"], None, True)
        test = _read_tsv(data_dir / b.files["test"], None, True)
        norm = lambda ds, split: _normalise(ds, "sentence", None, "label", labels, f"sst2-{split}")  # noqa: E731
        train, test = norm(train, "train"), norm(test, "validation")
    elif name == "ag_news":
        classes = (data_dir / b.files["classes"]).read_text().split()
        labels = [c for c in classes if c]
        train = _read_tsv(data_dir / b.files["train"], ["description", "label"], False)
        test = datasets.load_dataset(
            "csv", data_files=str(data_dir / b.files["test"]), column_names=["class", "title", "description"], split="train"
        )
        # Classes are 1-based in the official csv.
        test = test.map(lambda r: {"label": labels[int(r["class"]) - 1]}, remove_columns=["class"])
        train = _normalise(train, "description", None, "label", labels, "ag_news-train")
        test = _normalise(test, "description", None, "label", labels, "ag_news-test")
    else:  # qnli
        full = _read_tsv(data_dir / b.files["train"], None, True)
        full = _normalise(full, "question", "sentence", "label", labels, "qnli-validation")
        split = full.train_test_split(test_size=cfg.fallback_eval_fraction, seed=FALLBACK_SPLIT_SEED, shuffle=True)
        train, test = split["train"], split["test"]
    spec = TaskSpec(
        name=name, label_names=tuple(labels), task_type=cfg.task_type or b.task_type, is_pair=b.task_type == "pair", text_field_names=b.text_fields
    )
    notes = [b.note]
    if b.fallback:
        notes.append(f"fallback split: {len(train)} pool-source rows / {len(test)} evaluation rows")
    return TaskData(spec, train, test, cfg.original_train_size or b.original_train_size, notes)


def _normalise(ds: Dataset, text_col: str, pair_col: str | None, label_col: str, label_names: list[str] | None, id_prefix: str) -> Dataset:
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


def _load_local_or_hub(cfg: DataConfig) -> TaskData:
    path = Path(cfg.dataset).expanduser()
    if path.exists():
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
                raw[split] = _read_tsv(f, None, True)
            else:
                try:
                    raw[split] = datasets.load_dataset(builder, data_files=str(f), split="train")
                except Exception as e:  # a malformed file: one line, not the builder's traceback
                    cause = e.__cause__ or e
                    raise DataError(f"data.dataset: cannot read {f} as {builder} ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}) (fix: check the file's format)") from None
        source = path.name
    elif _looks_local(cfg.dataset):
        raise DataError(f"data.dataset: local file or folder {cfg.dataset!r} not found (fix: check the path; it is read relative to {Path.cwd()})")
    else:
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
        raw = {"train": loaded[cfg.train_split], "test": loaded[cfg.test_split]}
        source = cfg.dataset.replace("/", "_")
    notes = []
    for split in ("train", "test"):
        columns = {"data.text_column": cfg.text_column, "data.label_column": cfg.label_column}
        if cfg.text_pair_column:
            columns["data.text_pair_column"] = cfg.text_pair_column
        missing = [f"{f}={c!r}" for f, c in columns.items() if c not in raw[split].column_names]
        if missing:
            fname, col = missing[0].split("=", 1)
            raise ConfigError(fname, f"column {col} not in the {split} split (columns: {raw[split].column_names})", f"set {fname} to one of {raw[split].column_names}")
        raw[split], note = check_rows(raw[split], columns, split, drop=cfg.drop_invalid_rows)
        if note:
            notes.append(note)
    label_names = list(cfg.label_names) if cfg.label_names else None
    if label_names is None:
        feat = raw["train"].features.get(cfg.label_column)
        if not isinstance(feat, datasets.ClassLabel):
            # Same label list for both splits: derive it from the train split once.
            values = sorted({str(v) for v in raw["train"][cfg.label_column][:]} if cfg.label_column in raw["train"].column_names else [])
            if values and not all(v.lstrip("-").isdigit() for v in values):
                label_names = values
    train = _normalise(raw["train"], cfg.text_column, cfg.text_pair_column, cfg.label_column, label_names, f"{source}-train")
    if label_names is None:
        feat = raw["train"].features[cfg.label_column]
        label_names = list(feat.names) if isinstance(feat, datasets.ClassLabel) else [str(i) for i in range(max(train["label"][:]) + 1)]
    classes = sorted(set(train["label"][:]))
    if len(classes) < 2:
        only = label_names[classes[0]] if classes else "none"
        raise DataError(f"data.label_column: the train split has {len(classes)} class ({only!r}); a classifier needs at least two (fix: check data.label_column and the file)")
    test = _normalise(raw["test"], cfg.text_column, cfg.text_pair_column, cfg.label_column, label_names, f"{source}-test")
    is_pair = cfg.text_pair_column is not None
    task_type = cfg.task_type or ("pair" if is_pair else "sentiment")
    spec = TaskSpec(
        name=source,
        label_names=tuple(label_names),
        task_type=task_type,
        is_pair=is_pair,
        text_field_names=(cfg.text_column, cfg.text_pair_column) if is_pair else (cfg.text_column,),
    )
    return TaskData(spec, train, test, cfg.original_train_size or len(train), notes)


def load_task(cfg: DataConfig) -> TaskData:
    """Load and normalise the task named by ``cfg.dataset``; optionally subsample the test split."""
    if cfg.dataset in BUILTIN_TASKS:
        task = _load_builtin(cfg.dataset, cfg)
    else:
        task = _load_local_or_hub(cfg)
    if len(task.train) == 0 or len(task.test) == 0:
        raise DataError(f"data.dataset: {cfg.dataset!r} has an empty train or test split (fix: check the files)")
    if cfg.max_test_samples is not None and cfg.max_test_samples < len(task.test):
        # A fixed seed: every trial and method is evaluated on the same rows.
        task.test = task.test.shuffle(seed=FALLBACK_SPLIT_SEED).select(range(cfg.max_test_samples))
        task.notes.append(f"test set: a seeded subset of {cfg.max_test_samples} rows")
    logger.info("loaded task %s: %d train rows, %d test rows, labels %s", task.spec.name, len(task.train), len(task.test), list(task.spec.label_names))
    return task


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
