"""The round-store contract: every active-learning round saved as a named revision.

A round is identified by ``(run_id, round_idx)`` and named like a Hub branch by
:func:`~signal_hf.store.names.revision_name`. Stores save the round's datasets (pools, labels),
a JSON state and optionally the generator's peft adapter folder, and load them back by revision.
:meth:`RoundStore.save_round` checks its arguments once for every store; a store writes them in
:meth:`RoundStore._save`.
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
from signal_hf.store.names import revision_name

# Split names become file names ``data/<split>-00000-of-00001.parquet`` that ``datasets`` maps back.
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")


def validate_splits(datasets: dict[str, Dataset]) -> None:
    """Raise StoreError unless ``datasets`` maps valid split names to ``datasets.Dataset``s."""
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


@dataclass(frozen=True)
class RoundToSave:
    """One round as handed to a store's writer, its arguments already checked.

    Attributes:
        run_id: run the round belongs to (``""`` = default run).
        round: round index.
        revision: the round's revision name.
        datasets: split name -> Dataset, every name a valid split name.
        state: a JSON-ready copy of the state (see :func:`jsonable_state`).
        adapter_dir: folder of the generator's peft adapter to save with the round, or None.
        message: free text recorded with the round (and in its Hub commit message).
    """

    run_id: str
    round: int
    revision: str
    datasets: dict[str, Dataset]
    state: dict
    adapter_dir: str | Path | None
    message: str


class RoundStore(ABC):
    """Saves and loads active-learning rounds as named revisions."""

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
        revision = revision_name(run_id, round_idx)  # validates both arguments
        validate_splits(datasets)
        if not isinstance(state, dict):
            raise StoreError(f"state must be a dict, got {type(state).__name__}")
        self._save(RoundToSave(run_id, round_idx, revision, datasets, jsonable_state(state), adapter_dir, message))
        return revision

    def _save(self, new: RoundToSave) -> None:
        """Write a checked round, replacing it if it exists. Stores that write rounds override this
        (or, like a read-only view, :meth:`save_round` itself)."""
        raise NotImplementedError(f"{type(self).__name__} does not write rounds")

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

    def push_pending(self) -> None:
        """Push the rounds :meth:`pending` lists to the store's remote, oldest first; a failed push
        stays pending. The default store has no remote, so nothing to push."""

    def pending(self) -> list[tuple[str, int]]:
        """``(run_id, round_idx)`` of the rounds saved locally but not yet pushed, oldest first.

        The default store has no remote: always ``[]``."""
        return []
