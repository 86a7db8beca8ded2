"""What a HubStore push sends (commit message, files of each branch) and what is still to send.

Rounds saved locally but not yet pushed are listed, oldest first, in ``<root>/.hub_pending.json``
(:class:`PendingPushes`); the next ``save_round`` or ``push_pending`` retries them.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

from signal_hf.store.layout import ADAPTER_DIR

logger = logging.getLogger(__name__)

PENDING_FILE = ".hub_pending.json"


def state_accuracy(state: dict) -> float | None:
    """The round's accuracy if ``state`` records one (``accuracy``, or ``metrics``/``eval`` sub-dicts)."""
    for container in (state, state.get("metrics"), state.get("eval")):
        if isinstance(container, dict):
            for key in ("accuracy", "eval_accuracy", "test_accuracy"):
                value = container.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
    return None


def commit_message(run_id: str, round_idx: int, state: dict, message: str = "") -> str:
    """``round 3 of run signal-seed0, accuracy 0.8125: <message>`` (accuracy only if state has one)."""
    text = f"round {round_idx} of run {run_id or '(default)'}"
    acc = state_accuracy(state)
    if acc is not None:
        text += f", accuracy {acc:.4f}"
    if message:
        text += f": {message}"
    return text


def adapter_files(adapter: Path) -> dict[str, Path]:
    """Model repo branch content: the adapter folder's files at the repo root."""
    return {p.relative_to(adapter).as_posix(): p for p in sorted(adapter.rglob("*")) if p.is_file()}


def dataset_files(folder: Path) -> dict[str, Path]:
    """Dataset repo branch content: the round folder's files but its adapter (that goes to the model repo)."""
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ADAPTER_DIR not in p.relative_to(folder).parts[:1]
    }


class PendingPushes:
    """The ``(run_id, round_idx)`` of rounds saved locally but not yet pushed, kept under ``root``."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def path(self) -> Path:
        return self.root / PENDING_FILE

    def read(self) -> list[tuple[str, int]]:
        """The pending rounds, oldest first; none when the file is missing or corrupt."""
        try:
            items = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except json.JSONDecodeError:
            logger.warning("Ignoring corrupt %s", self.path)
            return []
        return [(str(item["run_id"]), int(item["round"])) for item in items]

    def write(self, items: list[tuple[str, int]]) -> None:
        """Replace the list atomically (temp file, fsync, rename): a crash keeps the old or the new one."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{PENDING_FILE}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump([{"run_id": r, "round": i} for r, i in items], fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def add(self, item: tuple[str, int]) -> None:
        """Queue ``item`` last (a round saved again moves to the end)."""
        self.write([i for i in self.read() if i != item] + [item])

    def remove(self, item: tuple[str, int]) -> list[tuple[str, int]]:
        """Drop ``item``; returns the rounds still pending."""
        items = [i for i in self.read() if i != item]
        self.write(items)
        return items
