"""LocalStore: rounds saved as folders, each written whole or not at all.

Layout under ``root``: one folder per run (the default run ``""`` uses ``_default``), holding one
``round-N`` folder per round in the layout of :mod:`signal_hf.store.round_folder`, verified on
every load against its manifest (:mod:`signal_hf.store.manifest`).

Atomicity: a round is written into ``<run>/.tmp-round-3-<id>/`` (every file and folder fsynced) and
renamed into place with ``os.replace``. Replacing an existing round renames the old one aside to
``.old-round-3-<id>`` first; a crash between the two renames is repaired on the next access (the
old round is put back). Leftover ``.tmp-*`` folders from a killed write are never read and are
deleted by the next writer. Writers of the same run serialise on ``<run>/.lock`` (flock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from signal_hf.errors import StoreError
from signal_hf.store.base import RoundRecord, RoundStore, RoundToSave
from signal_hf.store.cards import CardRepos
from signal_hf.store.durable import fsync_dir
from signal_hf.store.layout import ROUND_DIR_RE
from signal_hf.store.manifest import has_manifest, verify_round_folder
from signal_hf.store.names import resolve_round_index, revision_name, validate_run_id
from signal_hf.store.round_folder import read_round_folder, write_round_folder

try:  # POSIX advisory locks; without them (Windows) writers are simply not serialised.
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

DEFAULT_RUN_DIR = "_default"
_OLD_DIR_RE = re.compile(r"^\.old-round-(\d+)-[0-9a-f]+$")
_TMP_PREFIX = ".tmp-"


class LocalStore(RoundStore):
    """Rounds as folders under ``root`` (see the module docstring for the layout).

    ``card_repos``: the Hub repos the rounds are pushed to, named in the rounds' cards (a HubStore
    sets it on its local store); none for a store that stays local.
    """

    def __init__(self, root: str | Path, card_repos: CardRepos = CardRepos()):
        self.root = Path(root).expanduser()
        self.card_repos = card_repos

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
                    fsync_dir(run_dir)
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
    def _save(self, new: RoundToSave) -> None:
        run_dir = self.run_dir(new.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        with self._run_lock(run_dir):
            self._repair(run_dir, clean_tmp=True)
            tmp = run_dir / f"{_TMP_PREFIX}round-{new.round}-{uuid.uuid4().hex}"
            try:
                write_round_folder(tmp, new, self.card_repos)
                self._publish(tmp, run_dir, new.round)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        logger.info("Saved %s to %s", new.revision, run_dir / f"round-{new.round}")

    def _publish(self, tmp: Path, run_dir: Path, round_idx: int) -> None:
        final = run_dir / f"round-{round_idx}"
        if final.exists():
            # os.replace cannot swap non-empty folders: move the old round aside first.
            # _repair() restores it if we die before the second rename.
            old = run_dir / f".old-round-{round_idx}-{uuid.uuid4().hex}"
            os.replace(final, old)
            fsync_dir(run_dir)
            os.replace(tmp, final)
            fsync_dir(run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
            fsync_dir(run_dir)

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
            fsync_dir(run_dir)
        return moved

    def verify_run(self, run_id: str) -> None:
        """Check every round of ``run_id`` against its manifest (StoreError naming the first bad file)."""
        for idx in self.rounds(run_id):
            folder = self.round_dir(run_id, idx)
            if has_manifest(folder):
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
            match = ROUND_DIR_RE.match(entry.name)
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
