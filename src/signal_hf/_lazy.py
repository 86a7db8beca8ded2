"""Lazy re-exports for packages whose submodules import heavy libraries (torch, transformers, TRL)."""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``package``: ``modules`` maps an exported name to the
    submodule that defines it (relative, e.g. ``".generator"``), imported on first access."""

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(modules[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
