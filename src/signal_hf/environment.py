"""The locked environment a result is made in.

``make install`` installs exactly ``requirements.lock`` (hashes checked). Every result row records
the lock's digest (:func:`lock_digest`), and every report says which lock its rows were made under
and whether the installed packages still match it (:func:`lock_mismatches`), so a table can be
traced to the exact environment that produced it.
"""

from __future__ import annotations

import functools
import os
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .checksums import sha256_file

__all__ = ["LOCK_FILE", "find_lock", "lock_digest", "lock_mismatches", "locked_versions"]

LOCK_FILE = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_lock() -> Path | None:
    """``$SIGNAL_HF_LOCK``, else the lock of the checkout this package is installed from (editable
    install, ``src/`` layout); ``None`` for an installed wheel, which has no lock."""
    if os.environ.get("SIGNAL_HF_LOCK"):
        return Path(os.environ["SIGNAL_HF_LOCK"])
    candidate = Path(__file__).resolve().parents[2] / LOCK_FILE
    return candidate if candidate.is_file() else None


@functools.cache
def lock_digest() -> str | None:
    """The first 12 hex digits of the lock file's SHA-256 (``None`` without a lock file)."""
    path = find_lock()
    if path is None or not path.is_file():
        return None
    return sha256_file(path)[:12]


def locked_versions(path: str | os.PathLike) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` pin in a lock file."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


def lock_mismatches(path: str | os.PathLike | None = None) -> list[str]:
    """Locked packages whose installed version differs (``"numpy 2.4.5, locked 2.4.6"``) or that are
    missing. An empty list means the environment is the lock."""
    path = path or find_lock()
    if path is None:
        return []
    out = []
    for name, pinned in sorted(locked_versions(path).items()):
        try:
            installed = version(name)
        except PackageNotFoundError:
            out.append(f"{name} not installed, locked {pinned}")
            continue
        if installed != pinned:
            out.append(f"{name} {installed}, locked {pinned}")
    return out
