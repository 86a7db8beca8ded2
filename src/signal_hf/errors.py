"""Exceptions raised by signal_hf.

Every error a user can cause names the offending field or input and says how to fix it,
so the CLI can print it as a single line instead of a traceback.
"""

from __future__ import annotations


class SignalHFError(Exception):
    """Base class of all signal_hf errors."""


class ConfigError(SignalHFError, ValueError):
    """A recipe or CLI override is invalid. ``field`` is the dotted recipe key, e.g. ``acquisition.k``."""

    def __init__(self, field: str, problem: str, fix: str | None = None):
        self.field = field
        self.problem = problem
        self.fix = fix
        msg = f"{field}: {problem}"
        if fix:
            msg += f" (fix: {fix})"
        super().__init__(msg)


class DataError(SignalHFError):
    """A dataset file is missing, unreadable, altered (checksum mismatch) or lacks a column."""


class EmptyPoolError(SignalHFError):
    """A query strategy was asked to select from an empty pool."""


class StrategyError(SignalHFError):
    """A query strategy was given inputs it cannot use (missing embeddings, bad n, ...)."""


class StoreError(SignalHFError):
    """A round store cannot read or write a round (missing revision, corrupt round, push failure)."""


class GenerationError(SignalHFError):
    """The generator cannot be loaded or configured as asked (e.g. 4-bit on a CPU)."""


class OracleError(SignalHFError):
    """An oracle cannot label the given items."""


class RunLockedError(SignalHFError):
    """Another run holds the output folder's lock (``<output_dir>/.signal_hf.lock``)."""
