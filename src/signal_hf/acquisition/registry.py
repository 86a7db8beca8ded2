"""The names of the registered query strategies (filled by ``base.register_strategy``).

A module of its own, importing nothing of the package, so the ``acquisition`` config section can
check names against it without a circle of imports.
"""

from __future__ import annotations

__all__ = ["STRATEGIES", "available_strategies"]

#: name → strategy class.
STRATEGIES: dict[str, type] = {}


def available_strategies() -> list[str]:
    """Sorted names of the registered strategies."""
    return sorted(STRATEGIES)
