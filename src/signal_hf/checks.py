"""Value checks shared by the recipe sections' ``__post_init__`` methods.

``check_choices`` covers every fixed-choice (``typing.Literal``) field: the recipe parser already
refuses a value outside a ``Literal``; this gives a section built directly in Python
(``RLConfig(algorithm="dpo")``) the same error, with the choices read from the annotation itself.

Each raises one :class:`~signal_hf.errors.ConfigError` naming the field (``section.key``) and the
fix, so a bad recipe is refused when it is read, before any data or model loads.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Literal

from .errors import ConfigError

__all__ = ["positive", "non_negative", "in_unit_interval", "non_empty_unique", "check_choices"]


def positive(where: str, value: Any, fix: str) -> None:
    """``value > 0`` (a missing or NaN value counts as not positive)."""
    if value is None or not value > 0:
        raise ConfigError(where, f"must be > 0, got {value!r}", fix)


def non_negative(where: str, value: Any, fix: str) -> None:
    if value is None or not value >= 0:
        raise ConfigError(where, f"must be >= 0, got {value!r}", fix)


def in_unit_interval(where: str, value: float, fix: str, *, low_open: bool = True, high_open: bool = False) -> None:
    """``value`` in (0, 1] by default; ``low_open``/``high_open`` choose which ends are excluded."""
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if not (low_ok and high_ok):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ConfigError(where, f"must be in {interval}, got {value}", fix)


def non_empty_unique(where: str, values: list, what: str, example: str) -> None:
    """A list that must name at least one item and none twice (seeds, strategies)."""
    if not values:
        raise ConfigError(where, "is empty", f"give at least one {what}, e.g. {example}")
    if len(set(values)) != len(values):
        raise ConfigError(where, f"lists a {what} twice", "remove the duplicate")


@functools.lru_cache(maxsize=None)
def _literal_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...], bool], ...]:
    """``(field, choices, is_list)`` of every ``Literal`` and ``list[Literal]`` field of ``cls``."""
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if typing.get_origin(tp) is Literal:
            out.append((f.name, typing.get_args(tp), False))
        elif typing.get_origin(tp) is list and typing.get_origin(item := typing.get_args(tp)[0]) is Literal:
            out.append((f.name, typing.get_args(item), True))
    return tuple(out)


def check_choices(section: str, obj: Any) -> None:
    """Raise :class:`ConfigError` (``section.field``, ``section.field[i]`` for list items) for the first
    ``Literal`` value of the dataclass instance ``obj`` that is not one of the annotation's choices."""
    for name, allowed, is_list in _literal_fields(type(obj)):
        value = getattr(obj, name)
        for where, v in ([(f"{name}[{i}]", v) for i, v in enumerate(value)] if is_list else [(name, value)]):
            if v not in allowed:
                raise ConfigError(f"{section}.{where}", f"{v!r} is not one of {list(allowed)}", f"use one of {list(allowed)}")
