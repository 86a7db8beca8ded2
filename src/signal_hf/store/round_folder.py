"""One round as a folder (the LocalStore layout; a Hub snapshot of a round holds the same files)::

    round-3/
        data/<split>-00000-of-00001.parquet   # the Hub's parquet layout: load_dataset(<round folder>) reads it
        signal_state.json                      # the round's state dict
        signal_round.json                      # round metadata: run, round, revision, split schemas, row counts
        adapter/                               # copy of the peft adapter folder, if one was saved,
            README.md                          #   with its model card (replacing the one peft writes)
        README.md                              # the round's dataset card (configs per split, accuracy, recipe)
        signal_manifest.json                   # SHA-256 of every file above, written last

The state file is not called ``state.json`` because ``load_dataset(<folder>)`` takes a folder with a
``state.json`` for a ``save_to_disk`` dump and refuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from signal_hf.errors import StoreError
from signal_hf.store.base import RoundRecord, RoundToSave
from signal_hf.store.cards import CardRepos, dataset_card, model_card
from signal_hf.store.dataset_io import read_splits, write_splits
from signal_hf.store.durable import fsync_dir, fsync_file, write_json, write_text
from signal_hf.store.layout import (
    ADAPTER_DIR,
    CARD_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    META_FILE,
    READABLE_FORMATS,
    STATE_FILE,
)
from signal_hf.store.manifest import file_hashes, has_manifest, verify_round_folder


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
            fsync_file(Path(dirpath) / name)
        fsync_dir(Path(dirpath))


def write_round_folder(folder: Path, new: RoundToSave, repos: CardRepos = CardRepos()) -> None:
    """Create ``folder`` (it must not exist) and write every file of ``new`` into it, its cards
    (naming ``repos`` in their load snippets) and the manifest last, all fsynced."""
    folder.mkdir()
    splits = write_splits(new.datasets, folder)
    if new.adapter_dir is not None:
        adapter = folder / ADAPTER_DIR
        copy_adapter(Path(new.adapter_dir), adapter)
        write_text(adapter / CARD_FILE, str(model_card(new, adapter, repos)))
        fsync_dir(adapter)
    write_text(folder / CARD_FILE, str(dataset_card(new, splits, repos)))
    write_json(folder / STATE_FILE, new.state)
    write_json(
        folder / META_FILE,
        {
            "format_version": FORMAT_VERSION,
            "run_id": new.run_id,
            "round": new.round,
            "revision": new.revision,
            "splits": splits,
            "adapter": new.adapter_dir is not None,
            "message": new.message,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    write_json(folder / MANIFEST_FILE, {"sha256": file_hashes(folder)})
    fsync_dir(folder)


def read_round_folder(folder: Path, expect: tuple[str, int] | None = None, *, adapter_expected: bool = False) -> RoundRecord:
    """Read (and verify, see :func:`~signal_hf.store.manifest.verify_round_folder`) a round folder
    in the LocalStore layout (also what a Hub snapshot of a round holds)."""
    folder = Path(folder)
    if has_manifest(folder):
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
    adapter = folder / ADAPTER_DIR
    return RoundRecord(
        run_id=meta["run_id"],
        round=meta["round"],
        revision=meta["revision"],
        datasets=read_splits(folder, meta["splits"]),
        state=state,
        adapter_path=adapter if meta.get("adapter") and adapter.is_dir() else None,
        source=str(folder),
    )
