"""Revision names of rounds: ``round-3`` for the default run, ``signal-seed0-round-3`` otherwise.

A round is identified by ``(run_id, round_idx)``; its revision name doubles as a Hub branch name,
and the run id as a folder name, so both are kept to a safe alphabet.
"""

from __future__ import annotations

import re

from signal_hf.errors import StoreError

# Run ids become folder names and Hub branch-name prefixes: keep them to a safe alphabet.
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION_RE = re.compile(r"^(?:(?P<run>.+)-)?round-(?P<round>\d+)$")


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
