"""The offline copies of SST-2, AG News and QNLI (``data.data_dir``, ``SHA256SUMS`` verified)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..checksums import sha256_file
from ..config import DataConfig
from ..errors import DataError
from ..types import TaskSpec
from .files import normalise, read_tsv
from .task import TaskData

__all__ = ["BUILTIN_TASKS", "FALLBACK_SPLIT_SEED", "load_builtin", "verify_checksums"]

logger = logging.getLogger("signal_hf.data")

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


def load_builtin(name: str, cfg: DataConfig) -> TaskData:
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
        train = read_tsv(data_dir / b.files["train"], None, True)
        test = read_tsv(data_dir / b.files["test"], None, True)
        norm = lambda ds, split: normalise(ds, "sentence", None, "label", labels, f"sst2-{split}")  # noqa: E731
        train, test = norm(train, "train"), norm(test, "validation")
    elif name == "ag_news":
        classes = (data_dir / b.files["classes"]).read_text().split()
        labels = [c for c in classes if c]
        train = read_tsv(data_dir / b.files["train"], ["description", "label"], False)
        test = datasets.load_dataset(
            "csv", data_files=str(data_dir / b.files["test"]), column_names=["class", "title", "description"], split="train"
        )
        # Classes are 1-based in the official csv.
        test = test.map(lambda r: {"label": labels[int(r["class"]) - 1]}, remove_columns=["class"])
        train = normalise(train, "description", None, "label", labels, "ag_news-train")
        test = normalise(test, "description", None, "label", labels, "ag_news-test")
    else:  # qnli
        full = read_tsv(data_dir / b.files["train"], None, True)
        full = normalise(full, "question", "sentence", "label", labels, "qnli-validation")
        split = full.train_test_split(test_size=cfg.fallback_eval_fraction, seed=FALLBACK_SPLIT_SEED, shuffle=True)
        train, test = split["train"], split["test"]
    spec = TaskSpec(
        name=name, label_names=tuple(labels), task_type=cfg.task_type or b.task_type, is_pair=b.task_type == "pair", text_field_names=b.text_fields
    )
    notes = [b.note]
    if b.fallback:
        notes.append(f"fallback split: {len(train)} pool-source rows / {len(test)} evaluation rows")
    return TaskData(spec, train, test, cfg.original_train_size or b.original_train_size, notes)
