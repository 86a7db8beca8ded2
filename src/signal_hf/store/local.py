"""LocalStore: rounds saved as folders, each written whole or not at all.

Layout under ``root`` (one folder per run; the default run ``""`` uses ``_default``)::

    <root>/<run>/round-3/
        data/<split>-00000-of-00001.parquet   # the Hub's parquet layout: load_dataset(<round folder>) reads it
        signal_state.json                      # the round's state dict
        signal_round.json                      # round metadata: run, round, revision, split schemas, row counts
        adapter/                               # copy of the peft adapter folder, if one was saved
        signal_manifest.json                   # SHA-256 of every file above, written last

Integrity: every load checks each file against the manifest and names the first one that is
missing or changed (a flipped byte, a truncated parquet, a deleted state file) in a one-line
:class:`StoreError`; ``signal-hf resume --from-round N`` then continues from an intact earlier round.
Rounds of format 1 (before manifests) load without the check.

Empty splits get no parquet file (``datasets`` refuses to build an empty split) but keep their
schema in ``signal_round.json``, so they load back as empty Datasets with the same features.
The state file is not called ``state.json`` because ``load_dataset(<folder>)`` takes a folder with a
``state.json`` for a ``save_to_disk`` dump and refuses it.

Atomicity: a round is written into ``<run>/.tmp-round-3-<id>/`` (every file and folder fsynced) and
renamed into place with ``os.replace``. Replacing an existing round renames the old one aside to
``.old-round-3-<id>`` first; a crash between the two renames is repaired on the next access (the
old round is put back). Leftover ``.tmp-*`` folders from a killed write are never read and are
deleted by the next writer. Writers of the same run serialise on ``<run>/.lock`` (flock).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset, Features
from datasets.table import InMemoryTable

from signal_hf.checksums import sha256_file
from signal_hf.errors import StoreError
from signal_hf.store.base import (
    RoundRecord,
    RoundStore,
    jsonable_state,
    resolve_round_index,
    revision_name,
    validate_run_id,
    validate_splits,
)

try:  # POSIX advisory locks; without them (Windows) writers are simply not serialised.
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # 1: no manifest
STATE_FILE = "signal_state.json"
META_FILE = "signal_round.json"
MANIFEST_FILE = "signal_manifest.json"
ADAPTER_DIR = "adapter"
DATA_DIR = "data"
DEFAULT_RUN_DIR = "_default"
_ROUND_DIR_RE = re.compile(r"^round-(\d+)$")
_OLD_DIR_RE = re.compile(r"^\.old-round-(\d+)-[0-9a-f]+$")
_TMP_PREFIX = ".tmp-"


def split_filename(split: str) -> str:
    """Path of a split's parquet file inside a round, in the Hub's single-shard naming."""
    return f"{DATA_DIR}/{split}-00000-of-00001.parquet"


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes a rename/creation durable; not every platform allows it.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, obj: object) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_dataset_parquet(ds: Dataset, path: Path) -> None:
    """Write ``ds`` (indices applied) as one parquet file whose schema carries the HF features."""
    table = ds.with_format("arrow")[:]
    # The "huggingface" schema metadata is what restores ClassLabel & co. on read.
    table = table.replace_schema_metadata(ds.features.arrow_schema.metadata)
    pq.write_table(table, path)
    _fsync_file(path)


def read_dataset_parquet(path: Path, features: Features | None = None) -> Dataset:
    table = pq.read_table(path, memory_map=False)
    ds = Dataset(InMemoryTable(table))
    if features is not None and ds.features != features:
        ds = ds.cast(features)
    return ds



def file_hashes(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``folder`` but the manifest itself."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_FILE
    }


def verify_round_folder(folder: Path, *, adapter_expected: bool) -> None:
    """Check every file of a format-2 round against its manifest; StoreError naming the first bad one.

    ``adapter_expected`` False skips the adapter's files when the folder has none (a Hub snapshot
    of the dataset repo: the adapter lives in the model repo)."""
    manifest_path = folder / MANIFEST_FILE
    fix = f"continue from an intact earlier round: signal-hf resume <output_dir> --from-round {_round_of(folder) - 1}" if _round_of(folder) > 0 else "start the run again in a new output_dir"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))["sha256"]
    except FileNotFoundError:
        raise StoreError(f"round folder {folder} is damaged: {MANIFEST_FILE} is missing (fix: {fix})") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise StoreError(f"round folder {folder} is damaged: {MANIFEST_FILE} is not a valid manifest (fix: {fix})") from None
    skip_adapter = not adapter_expected and not (folder / ADAPTER_DIR).is_dir()
    for rel, digest in manifest.items():
        if skip_adapter and rel.split("/", 1)[0] == ADAPTER_DIR:
            continue
        path = folder / rel
        if not path.is_file():
            raise StoreError(f"round folder {folder} is damaged: {rel} is missing (fix: {fix})")
        if sha256_file(path) != digest:
            raise StoreError(f"round folder {folder} is damaged: {rel} does not match its SHA-256 in {MANIFEST_FILE} (changed or truncated) (fix: {fix})")


def _format_of(folder: Path) -> int:
    try:
        return int(json.loads((folder / META_FILE).read_text(encoding="utf-8")).get("format_version", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return FORMAT_VERSION  # unreadable metadata: verify, so the damage is named


def _has_manifest(folder: Path) -> bool:
    """Whether the round must be verified: it has a manifest, or is of format 2 (or its metadata is
    missing or unreadable, so the damage gets named); format-1 rounds predate manifests."""
    return (folder / MANIFEST_FILE).is_file() or _format_of(folder) >= 2


def _round_of(folder: Path) -> int:
    match = _ROUND_DIR_RE.match(folder.name)
    return int(match.group(1)) if match else 0


def copy_adapter(src: Path, dest: Path) -> None:
    """Copy a peft adapter folder (fsyncing every file); it must hold ``adapter_config.json``."""
    if not src.is_dir():
        raise StoreError(f"adapter_dir {str(src)!r} is not a folder (fix: pass the folder PeftModel.save_pretrained wrote)")
    if not (src / "adapter_config.json").is_file():
        raise StoreError(
            f"adapter_dir {str(src)!r} has no adapter_config.json "
            "(fix: pass the folder written by PeftModel.save_pretrained)"
        )
    shutil.copytree(src, dest)
    for dirpath, _dirs, files in os.walk(dest):
        for name in files:
            _fsync_file(Path(dirpath) / name)
        _fsync_dir(Path(dirpath))


class LocalStore(RoundStore):
    """Rounds as folders under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    # ------------------------------------------------------------------ paths
    def run_dir(self, run_id: str) -> Path:
        validate_run_id(run_id)
        return self.root / (run_id or DEFAULT_RUN_DIR)

    def round_dir(self, run_id: str, round_idx: int) -> Path:
        """Folder of a round (whether or not it exists)."""
        revision_name(run_id, round_idx)  # validates both arguments
        return self.run_dir(run_id) / f"round-{round_idx}"

    # ------------------------------------------------------------------ locking and repair
    @contextlib.contextmanager
    def _run_lock(self, run_dir: Path, blocking: bool = True) -> Iterator[bool]:
        """Hold ``<run>/.lock``; yields False (lock not taken) only when ``blocking`` is False and it is busy."""
        if fcntl is None:
            yield True
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / ".lock", "a+") as fh:
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(fh.fileno(), flags)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _repair(self, run_dir: Path, clean_tmp: bool) -> None:
        """Undo a replace interrupted between its two renames; optionally drop leftover temp folders.

        Call only while holding the run lock.
        """
        if not run_dir.is_dir():
            return
        for entry in sorted(run_dir.iterdir()):
            old = _OLD_DIR_RE.match(entry.name)
            if old:
                target = run_dir / f"round-{old.group(1)}"
                if target.exists():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    logger.warning("Restoring %s from an interrupted replace", target)
                    os.replace(entry, target)
                    _fsync_dir(run_dir)
            elif clean_tmp and entry.name.startswith(_TMP_PREFIX) and entry.is_dir():
                logger.info("Removing leftover temp folder of an interrupted round write: %s", entry)
                shutil.rmtree(entry, ignore_errors=True)

    def _repair_if_free(self, run_id: str) -> None:
        run_dir = self.run_dir(run_id)
        if not run_dir.is_dir():
            return
        # Readers repair too, but never wait for (or disturb) a writer that holds the lock.
        if any(_OLD_DIR_RE.match(p.name) for p in run_dir.iterdir()):
            with self._run_lock(run_dir, blocking=False) as locked:
                if locked:
                    self._repair(run_dir, clean_tmp=False)

    # ------------------------------------------------------------------ writing
    def save_round(
        self,
        run_id: str,
        round_idx: int,
        *,
        datasets: dict[str, Dataset],
        state: dict,
        adapter_dir: str | Path | None = None,
        message: str = "",
    ) -> str:
        revision = revision_name(run_id, round_idx)
        validate_splits(datasets)
        if not isinstance(state, dict):
            raise StoreError(f"state must be a dict, got {type(state).__name__}")
        clean_state = jsonable_state(state)
        run_dir = self.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        with self._run_lock(run_dir):
            self._repair(run_dir, clean_tmp=True)
            tmp = run_dir / f"{_TMP_PREFIX}round-{round_idx}-{uuid.uuid4().hex}"
            try:
                self._write_round(tmp, run_id, round_idx, revision, datasets, clean_state, adapter_dir, message)
                self._publish(tmp, run_dir, round_idx)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        logger.info("Saved %s to %s", revision, run_dir / f"round-{round_idx}")
        return revision

    def _write_round(
        self,
        tmp: Path,
        run_id: str,
        round_idx: int,
        revision: str,
        datasets: dict[str, Dataset],
        state: dict,
        adapter_dir: str | Path | None,
        message: str,
    ) -> None:
        (tmp / DATA_DIR).mkdir(parents=True)
        splits = {}
        for name, ds in datasets.items():
            if ds.num_rows > 0:
                write_dataset_parquet(ds, tmp / split_filename(name))
            splits[name] = {"num_rows": ds.num_rows, "features": ds.features.to_dict()}
        _fsync_dir(tmp / DATA_DIR)
        if adapter_dir is not None:
            copy_adapter(Path(adapter_dir), tmp / ADAPTER_DIR)
        _write_json(tmp / STATE_FILE, state)
        _write_json(
            tmp / META_FILE,
            {
                "format_version": FORMAT_VERSION,
                "run_id": run_id,
                "round": round_idx,
                "revision": revision,
                "splits": splits,
                "adapter": adapter_dir is not None,
                "message": message,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        _write_json(tmp / MANIFEST_FILE, {"sha256": file_hashes(tmp)})
        _fsync_dir(tmp)

    def _publish(self, tmp: Path, run_dir: Path, round_idx: int) -> None:
        final = run_dir / f"round-{round_idx}"
        if final.exists():
            # os.replace cannot swap non-empty folders: move the old round aside first.
            # _repair() restores it if we die before the second rename.
            old = run_dir / f".old-round-{round_idx}-{uuid.uuid4().hex}"
            os.replace(final, old)
            _fsync_dir(run_dir)
            os.replace(tmp, final)
            _fsync_dir(run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
            _fsync_dir(run_dir)

    def discard_after(self, run_id: str, round_idx: int) -> list[int]:
        """Move the rounds after ``round_idx`` aside (``<run>/.discarded-round-K-<id>``, never read
        again, kept for inspection) so the run continues from ``round_idx``; returns their indices."""
        run_dir = self.run_dir(run_id)
        moved = []
        with self._run_lock(run_dir):
            for idx in self.rounds(run_id):
                if idx > round_idx:
                    os.replace(run_dir / f"round-{idx}", run_dir / f".discarded-round-{idx}-{uuid.uuid4().hex[:8]}")
                    moved.append(idx)
            _fsync_dir(run_dir)
        return moved

    def verify_run(self, run_id: str) -> None:
        """Check every round of ``run_id`` against its manifest (StoreError naming the first bad file)."""
        for idx in self.rounds(run_id):
            folder = self.round_dir(run_id, idx)
            if _has_manifest(folder):
                verify_round_folder(folder, adapter_expected=True)

    # ------------------------------------------------------------------ reading
    def rounds(self, run_id: str) -> list[int]:
        """Indices of the complete rounds of ``run_id``, ascending."""
        run_dir = self.run_dir(run_id)
        if not run_dir.is_dir():
            return []
        self._repair_if_free(run_id)
        rounds = []
        for entry in run_dir.iterdir():
            match = _ROUND_DIR_RE.match(entry.name)
            # A round folder appears only by an atomic rename of a complete write: one that lacks
            # files is damaged (load_round names the file), not unfinished, and is never redone.
            if match and entry.is_dir():
                rounds.append(int(match.group(1)))
        return sorted(rounds)

    def latest_round(self, run_id: str) -> int | None:
        rounds = self.rounds(run_id)
        return rounds[-1] if rounds else None

    def revisions(self, run_id: str) -> list[str]:
        return [revision_name(run_id, i) for i in self.rounds(run_id)]

    def runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            run_id = "" if entry.name == DEFAULT_RUN_DIR else entry.name
            try:
                if self.rounds(run_id):
                    found.append(run_id)
            except StoreError:
                continue  # a foreign folder whose name is not a run id
        return sorted(found)

    def resolve(self, run_id: str, revision: str | int | None = None) -> int:
        """Round index that ``revision`` names (None = latest); StoreError listing the available ones."""
        rounds = self.rounds(run_id)
        if revision is None:
            if not rounds:
                run = repr(run_id) if run_id else "'' (default run)"
                raise StoreError(f"run {run} has no saved rounds in {self.root} (fix: check store.root and the run id)")
            return rounds[-1]
        return resolve_round_index(run_id, revision, rounds)

    def load_round(self, run_id: str, revision: str | int | None = None) -> RoundRecord:
        idx = self.resolve(run_id, revision)
        return read_round_folder(self.round_dir(run_id, idx), expect=(run_id, idx), adapter_expected=True)


def read_round_folder(folder: Path, expect: tuple[str, int] | None = None, *, adapter_expected: bool = False) -> RoundRecord:
    """Read (and verify, see :func:`verify_round_folder`) a round folder in the LocalStore layout
    (also what a Hub snapshot of a round holds)."""
    folder = Path(folder)
    if _has_manifest(folder):
        verify_round_folder(folder, adapter_expected=adapter_expected)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(f"round folder {folder} is incomplete: {Path(exc.filename).name} is missing") from exc
    except json.JSONDecodeError as exc:
        raise StoreError(f"round folder {folder} is corrupt: {exc}") from exc
    if meta.get("format_version") not in READABLE_FORMATS:
        raise StoreError(f"round folder {folder} has format_version {meta.get('format_version')!r}, expected one of {list(READABLE_FORMATS)}")
    if expect is not None and (meta.get("run_id"), meta.get("round")) != expect:
        raise StoreError(f"round folder {folder} holds run {meta.get('run_id')!r} round {meta.get('round')}, expected {expect}")
    datasets: dict[str, Dataset] = {}
    for name, info in meta["splits"].items():
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
    adapter = folder / ADAPTER_DIR
    return RoundRecord(
        run_id=meta["run_id"],
        round=meta["round"],
        revision=meta["revision"],
        datasets=datasets,
        state=state,
        adapter_path=adapter if meta.get("adapter") and adapter.is_dir() else None,
        source=str(folder),
    )
