"""Experiment tracking (``output.report_to``): each trial's result rows as step series in TensorBoard,
trackio or Weights & Biases, and a :class:`transformers.TrainerCallback` that adds a Trainer's
training logs to the same tracker run.

One tracker run per (method, seed) trial, named like its store run (``random-seed0``). A result row
is logged at step = its round (0 = the initial labeled set), the same index as in results.jsonl and
the round store; the labeled count is its own series (``labeled``). Every numeric field of the row
is logged (bools, ``None`` and non-finite values are not), nested dicts flattened with ``/``.

Resume: the trial logs exactly the rows it appends to results.jsonl in this process (new rounds, and
stored rounds results.jsonl lacked), never the rows already there, so the series of a resumed run
continues from the restored round. Trackers open on their first log, so a finished run that is run
again opens none.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import math
import numbers
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .errors import ConfigError

__all__ = [
    "Tracker", "TensorBoardTracker", "TrackioTracker", "WandbTracker", "TrackerCallback",
    "flatten_scalars", "require_backend", "open_tracker", "ROUND_AXIS",
]

logger = logging.getLogger("signal_hf")

#: The step axis of result rows (its step is the round index); training logs name their own axis.
ROUND_AXIS = "round"

# report_to -> (package that must be installed, pip requirement for the fix).
_BACKENDS = {
    "tensorboard": ("tensorboard", "pip install 'signal_hf[tracking]' (or pip install tensorboard)"),
    "trackio": ("trackio", "pip install 'signal_hf[tracking]' (or pip install trackio)"),
    "wandb": ("wandb", "pip install wandb"),
}


def flatten_scalars(row: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of ``row`` as ``{"a/b": value}``; bools, ``None``, NaN/inf, strings and lists dropped."""
    out: dict[str, float] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_scalars(value, f"{name}/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = value.item() if hasattr(value, "item") else value  # numpy scalars -> Python
    return out


def require_backend(report_to: str) -> None:
    """Raise :class:`ConfigError` (``output.report_to``) if the tracker's package is not installed;
    called before a run touches its folder. Found, not imported: trackio must first be imported
    once its folder is chosen (:class:`TrackioTracker`)."""
    if report_to == "none":
        return
    package, fix = _BACKENDS[report_to]
    if importlib.util.find_spec(package) is None:
        raise ConfigError("output.report_to", f"{report_to} is not installed", fix)


class Tracker(ABC):
    """One tracker run. ``log(row, step)`` records a result row (or any metrics dict); ``finish()`` closes it."""

    def log(self, row: Mapping[str, Any], step: int, *, axis: str = ROUND_AXIS) -> None:
        """Log the numeric fields of ``row`` at ``step`` of the step axis ``axis`` (:data:`ROUND_AXIS`
        for result rows; a Trainer's logs use their own, e.g. ``train/rl``)."""
        scalars = flatten_scalars(row)
        if scalars:
            self._log(scalars, int(step), axis)

    def callback(self, prefix: str = "train/", step_offset: int = 0) -> TrackerCallback:
        """A :class:`TrackerCallback` that logs a Trainer's logs into this run."""
        return TrackerCallback(self, prefix=prefix, step_offset=step_offset)

    @abstractmethod
    def _log(self, scalars: dict[str, float], step: int, axis: str) -> None: ...

    @abstractmethod
    def finish(self) -> None:
        """Flush and close the run (a no-op if nothing was logged)."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()


class TensorBoardTracker(Tracker):
    """Event files under ``log_dir`` (result rows) and ``log_dir/<axis>`` (each training-log axis, a
    separate TensorBoard run, as its steps are not rounds)."""

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _log(self, scalars: dict[str, float], step: int, axis: str) -> None:
        writer = self._writers.get(axis)
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            folder = self.log_dir if axis == ROUND_AXIS else self.log_dir.joinpath(*axis.split("/"))
            # purge_step: events at or after the first step this process logs are stale (a run
            # continued with `resume --from-round`); TensorBoard's reader drops them.
            writer = self._writers[axis] = SummaryWriter(log_dir=str(folder), purge_step=step)
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, global_step=step)

    def finish(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


@contextlib.contextmanager
def _quiet_stdout():
    """trackio prints its banners to stdout, which carries the run's summary table: log them instead."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    for line in buf.getvalue().splitlines():
        if line.strip():
            logger.debug("trackio: %s", line.strip())


class TrackioTracker(Tracker):
    """A trackio run (local SQLite, no UI, no CPU/GPU monitor threads) in ``directory``.

    trackio reads ``TRACKIO_DIR`` once, when first imported: ``directory`` is used when this process
    imports it first and ``TRACKIO_DIR`` is unset; otherwise trackio's own directory is (logged).
    The run resumes (``resume="allow"``) a run of the same name, so a resumed trial continues its series.
    """

    def __init__(self, project: str, name: str, *, group: str, config: dict, directory: str | os.PathLike):
        self.project, self.name, self.group, self.config = project, name, group, config
        self.directory = Path(directory).resolve()
        self._run = None

    def _import(self) -> Any:
        if "trackio" in sys.modules or os.environ.get("TRACKIO_DIR"):
            import trackio
        else:
            os.environ["TRACKIO_DIR"] = str(self.directory)
            try:
                import trackio
            finally:  # the value is read at import; later runs in this process keep that directory
                del os.environ["TRACKIO_DIR"]
        where = Path(trackio.utils.TRACKIO_DIR).resolve()
        if where != self.directory:
            logger.info("trackio logs to %s (TRACKIO_DIR, or trackio imported before this run)", where)
        self.directory = where
        return trackio

    def _log(self, scalars: dict[str, float], step: int, axis: str) -> None:
        if self._run is None:
            trackio = self._import()
            with _quiet_stdout():
                self._run = trackio.init(
                    project=self.project, name=self.name, group=self.group, config=self.config, resume="allow",
                    embed=False, auto_log_gpu=False, auto_log_cpu=False,
                )
        self._run.log(scalars, step=step)

    def finish(self) -> None:
        if self._run is None:
            return
        import trackio

        with _quiet_stdout():
            trackio.finish()  # also clears trackio's current run, so its atexit hook does not finish it again
        self._run = None


class WandbTracker(Tracker):
    """A Weights & Biases run; files under ``directory/wandb``. ``WANDB_MODE=offline`` keeps it local
    (``wandb sync`` uploads it later); ``WANDB_PROJECT`` overrides the project.

    wandb needs one monotonic step per run, so every axis is logged as a metric of its own
    (``round`` for result rows, ``<axis>/step`` for training logs) and declared the x-axis of its
    metrics with ``define_metric``. The run id is derived from the run folder and trial, so a resumed
    trial continues its run (``resume="allow"``).
    """

    def __init__(self, project: str, name: str, *, group: str, config: dict, directory: str | os.PathLike):
        self.project, self.name, self.group, self.config = project, name, group, config
        self.directory = Path(directory)
        self.run_id = f"{name}-{hashlib.sha256(str(self.directory.resolve()).encode()).hexdigest()[:8]}"
        self._run = None
        self._defined: set[str] = set()

    def _log(self, scalars: dict[str, float], step: int, axis: str) -> None:
        if self._run is None:
            import wandb

            self.directory.mkdir(parents=True, exist_ok=True)
            self._run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or self.project, name=self.name, group=self.group,
                id=self.run_id, resume="allow", config=self.config, dir=str(self.directory),
            )
        step_key = ROUND_AXIS if axis == ROUND_AXIS else f"{axis}/step"
        for key in scalars.keys() - self._defined - {step_key}:
            self._run.define_metric(key, step_metric=step_key)
            self._defined.add(key)
        self._run.log({**scalars, step_key: step})

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


class TrackerCallback(TrainerCallback):
    """Forwards a Trainer's ``on_log`` dicts to a :class:`Tracker`: keys under ``prefix`` (``train/``
    by default), at step ``step_offset + state.global_step`` of the axis named by the prefix.

    A Trainer counts steps from 0 each time it is built; give each training of a trial an offset
    past the previous ones (e.g. ``(round - 1) * steps_per_round``) so the curves follow each other.
    """

    def __init__(self, tracker: Tracker, prefix: str = "train/", step_offset: int = 0):
        self.tracker, self.prefix, self.step_offset = tracker, prefix, step_offset
        self.axis = prefix.rstrip("/") or "train"

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and getattr(state, "is_world_process_zero", True):
            self.tracker.log({f"{self.prefix}{k}": v for k, v in logs.items()}, self.step_offset + state.global_step, axis=self.axis)


def open_tracker(cfg: Any, run_id: str, *, group: str) -> Tracker | None:
    """The tracker of one trial (``run_id`` = ``{method}-seed{seed}``, ``group`` = its method) per
    ``cfg.output.report_to``, or ``None`` for ``none``. Nothing is created before its first row."""
    report_to, out = cfg.output.report_to, Path(cfg.output.output_dir)
    if report_to == "none":
        return None
    require_backend(report_to)
    if report_to == "tensorboard":
        return TensorBoardTracker(out / "tensorboard" / run_id)
    if report_to == "trackio":
        return TrackioTracker(cfg.name, run_id, group=group, config=cfg.to_dict(), directory=out / "trackio")
    return WandbTracker(cfg.name, run_id, group=group, config=cfg.to_dict(), directory=out)  # wandb adds its wandb/
