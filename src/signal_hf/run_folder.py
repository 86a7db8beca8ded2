"""A run owns its output folder: the folder is checked, then locked for the whole run, before
anything is written into it.

* ``output.output_dir`` may not be the working directory (``""``, ``"."``) nor a file, and a folder
  holding files that are not a signal_hf run is refused unless ``--force``.
* ``<output_dir>/.signal_hf.lock`` is held with an exclusive ``flock`` for the run's lifetime. The
  kernel releases it when the holder dies (``kill -9`` included), so a lock left by a dead run is
  never in the way; the file records the holder's pid, host and start time for the refusal message.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, RunLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: runs are not serialised
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "RUN_ENTRIES", "check_output_dir", "hold_run_folder"]

LOCK_FILE = ".signal_hf.lock"
#: What a signal_hf run (or a grid's merged report) writes into its folder.
RUN_ENTRIES = frozenset(
    {"recipe.yaml", "recipe.tmp", "results.jsonl", "results.jsonl.tmp", "summary.md", "summary.json", "learning_curves.png",
     "store", "work", "seeds", "grid.json", "inspect.md", "probe_rewards.png", LOCK_FILE,
     "tensorboard", "trackio", "wandb"}  # the output.report_to trackers' files
)
FIELD = "output.output_dir"


def _foreign_results(folder: Path) -> bool:
    """Whether ``folder/results.jsonl`` exists and holds rows that are not signal_hf results."""
    results = folder / "results.jsonl"
    if not results.is_file():
        return False
    first = next((line for line in results.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()), "")
    try:
        row = json.loads(first) if first else {}
    except json.JSONDecodeError:
        return True
    return not (isinstance(row, dict) and (not row or {"method", "seed", "round"} <= set(row)))


def _foreign(folder: Path) -> list[str]:
    """Entries of ``folder`` that a signal_hf run does not write."""
    return [e.name for e in sorted(folder.iterdir()) if e.name not in RUN_ENTRIES and not e.name.endswith(".tmp")]


def check_output_dir(output_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """The run folder ``output_dir`` as a Path, or a :class:`ConfigError` naming what is wrong."""
    raw = str(output_dir).strip()
    if raw in ("", ".") or Path(raw).expanduser().resolve() == Path.cwd().resolve():
        raise ConfigError(FIELD, f"{raw!r} is the working directory; a run writes recipe.yaml, results and a store into its folder", "give the run a folder of its own, e.g. runs/NAME")
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(FIELD, f"{raw} is a file, not a folder", "choose a folder path, e.g. runs/NAME")
    if path.is_dir() and _foreign_results(path):
        # Never appended to, even with --force: the rows would corrupt both the file and our reports.
        raise ConfigError(FIELD, f"{raw}/results.jsonl holds rows that are not signal_hf results", "use a new output_dir (or move that file away)")
    if path.is_dir() and not force:
        foreign = _foreign(path)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise ConfigError(FIELD, f"{raw} holds files that are not a signal_hf run ({shown})", "use a new or empty folder, or pass --force to write next to them")
    return path


@contextlib.contextmanager
def hold_run_folder(folder: Path) -> Iterator[None]:
    """Hold the folder's run lock until the block ends; :class:`RunLockedError` if another run has it.

    Only the lock file is created before the lock is taken, so a refused run changes nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fh = open(folder / LOCK_FILE, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            try:
                holder = json.loads(fh.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')}"
            raise RunLockedError(
                f"{FIELD}: {folder} is in use by another run ({who}) (fix: wait for it to end, or use another output_dir)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the flock
