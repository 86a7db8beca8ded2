"""The round-store contract: every active-learning round saved as a named revision.

A round is identified by ``(run_id, round_idx)`` and named like a Hub branch by
:func:`revision_name`: ``"round-3"`` for the default run (``run_id == ""``), else
``"signal-seed0-round-3"``. Stores save the round's datasets (pools, labels), a JSON state and
optionally the generator's peft adapter folder, and load them back by revision.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from signal_hf.errors import StoreError

# Run ids become folder names and Hub branch-name prefixes: keep them to a safe alphabet.
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION_RE = re.compile(r"^(?:(?P<run>.+)-)?round-(?P<round>\d+)$")
# Split names become file names ``data/<split>-00000-of-00001.parquet`` that ``datasets`` maps back.
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if usable as a folder name and Hub branch prefix, else raise StoreError."""
    if not isinstance(run_id, str):
        raise StoreError(f"run_id must be a string, got {type(run_id).__name__}")
    if run_id and not _RUN_ID_RE.match(run_id):
        raise StoreError(
            f"run_id {run_id!r} is not usable as a revision prefix "
            "(fix: use letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. 'signal-seed0')"
        )
    return run_id


def revision_name(run_id: str, round_idx: int) -> str:
    """Revision (Hub branch) name of a round: ``round-3`` for run ``""``, else ``<run_id>-round-3``."""
    validate_run_id(run_id)
    if isinstance(round_idx, bool) or not isinstance(round_idx, int) or round_idx < 0:
        raise StoreError(f"round_idx must be a non-negative int, got {round_idx!r}")
    return f"round-{round_idx}" if run_id == "" else f"{run_id}-round-{round_idx}"


def parse_revision_name(name: str) -> tuple[str, int] | None:
    """Inverse of :func:`revision_name`: ``(run_id, round_idx)``, or None if ``name`` is not one."""
    match = _REVISION_RE.match(name)
    if match is None:
        return None
    run_id = match.group("run") or ""
    if run_id and not _RUN_ID_RE.match(run_id):
        return None
    return run_id, int(match.group("round"))


def resolve_round_index(run_id: str, revision: str | int, available: list[int]) -> int:
    """Round index that ``revision`` names within ``run_id``; StoreError listing ``available`` if none.

    Accepted like on the Hub: the full revision name (``signal-seed0-round-3``), the short form
    ``round-3``, or the round index (``3`` / ``"3"``).
    """
    idx: int | None = None
    if isinstance(revision, bool):
        idx = None
    elif isinstance(revision, int):
        idx = revision
    elif isinstance(revision, str):
        text = revision.strip()
        if text.isdigit():
            idx = int(text)
        else:
            parsed = parse_revision_name(text)
            if parsed is not None and parsed[0] in (run_id, ""):
                idx = parsed[1]
    if idx is None or idx not in available:
        names = ", ".join(revision_name(run_id, i) for i in sorted(available)) or "none"
        run = repr(run_id) if run_id else "'' (default run)"
        raise StoreError(
            f"revision {revision!r} not found for run {run}; available revisions: {names} "
            "(fix: pass one of these, an int round index, or None for the latest round)"
        )
    return idx


def validate_splits(datasets: dict[str, Dataset]) -> None:
    if not isinstance(datasets, dict):
        raise StoreError(f"datasets must be a dict of split name -> datasets.Dataset, got {type(datasets).__name__}")
    for name, ds in datasets.items():
        if not isinstance(name, str) or not _SPLIT_RE.match(name):
            raise StoreError(
                f"datasets key {name!r} is not a valid split name (fix: use letters, digits and '_', e.g. 'real_pool')"
            )
        if not isinstance(ds, Dataset):
            raise StoreError(f"datasets[{name!r}] must be a datasets.Dataset, got {type(ds).__name__}")


def jsonable_state(state: Any, path: str = "state") -> Any:
    """A JSON-ready copy of ``state``: numpy/torch scalars and arrays become Python numbers/lists.

    Raises StoreError naming the offending key for anything else (and for NaN/inf, which JSON
    cannot hold portably).
    """
    if isinstance(state, dict):
        out = {}
        for key, value in state.items():
            if not isinstance(key, str):
                raise StoreError(f"{path} has a non-string key {key!r} (fix: JSON object keys must be strings)")
            out[key] = jsonable_state(value, f"{path}[{key!r}]")
        return out
    if isinstance(state, (list, tuple)):
        return [jsonable_state(v, f"{path}[{i}]") for i, v in enumerate(state)]
    if state is None or isinstance(state, (str, bool, int)):
        return state
    if isinstance(state, float):
        if not math.isfinite(state):
            raise StoreError(f"{path} is {state!r}, which JSON cannot store (fix: store None or a finite number)")
        return state
    if isinstance(state, Path):
        return str(state)
    tolist = getattr(state, "tolist", None)  # numpy / torch scalars and arrays
    if callable(tolist):
        return jsonable_state(tolist(), path)
    raise StoreError(
        f"{path} has type {type(state).__name__}, which is not JSON-serialisable "
        "(fix: store numbers, strings, lists or dicts)"
    )


def state_accuracy(state: dict) -> float | None:
    """The round's accuracy if ``state`` records one (``accuracy``, or ``metrics``/``eval`` sub-dicts)."""
    for container in (state, state.get("metrics"), state.get("eval")):
        if isinstance(container, dict):
            for key in ("accuracy", "eval_accuracy", "test_accuracy"):
                value = container.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return float(value)
    return None


@dataclass
class RoundRecord:
    """One saved round, as loaded back from a store.

    Attributes:
        run_id: run the round belongs to (``""`` = default run).
        round: round index.
        revision: the round's revision name (see :func:`revision_name`).
        datasets: split name -> Dataset (empty splits keep their schema).
        state: the JSON state saved with the round.
        adapter_path: folder with the generator's peft adapter, or None if none was saved.
        source: where the round was read from: a local folder or ``hub:<repo_id>@<commit>``.
    """

    run_id: str
    round: int
    revision: str
    datasets: dict[str, Dataset]
    state: dict
    adapter_path: Path | None
    source: str = field(default="")


class RoundStore(ABC):
    """Saves and loads active-learning rounds as named revisions."""

    @abstractmethod
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
        """Save one round (replacing it if it exists) and return its revision name."""

    @abstractmethod
    def load_round(self, run_id: str, revision: str | int | None = None) -> RoundRecord:
        """Load a round by revision name or index; None = the latest complete round."""

    @abstractmethod
    def latest_round(self, run_id: str) -> int | None:
        """Index of the latest complete round of ``run_id``, or None if it has none."""

    @abstractmethod
    def revisions(self, run_id: str) -> list[str]:
        """Revision names of the complete rounds of ``run_id``, in round order."""

    @abstractmethod
    def runs(self) -> list[str]:
        """Run ids that have at least one complete round, sorted."""
