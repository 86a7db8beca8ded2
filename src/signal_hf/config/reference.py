"""The recipe reference (docs/config_reference.md), generated from the sections' docstrings."""

from __future__ import annotations

import dataclasses
import inspect
import typing

from .experiment import SECTIONS
from .parsing import type_name

__all__ = ["config_reference_markdown", "undocumented_fields"]


def _field_docs(cls: type) -> dict[str, str]:
    """Parse the ``Attributes:`` block of a dataclass docstring into {field: description}."""

    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    current = None
    inside = False  # within an "Attributes:" block (a docstring may have several)
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside, current = True, None
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            inside = False
            continue
        if not inside:
            continue
        text = line.strip()
        head, sep, rest = text.partition(":")
        if indent <= 4 and sep and head.replace("_", "").isalnum() and " " not in head:
            current = head
            out[current] = rest.strip()
        elif current is not None:
            out[current] += " " + text
    return out


def undocumented_fields() -> list[str]:
    """``section.field`` names whose dataclass docstring does not document them."""
    missing = []
    for sec, cls in SECTIONS.items():
        docs = _field_docs(cls)
        missing += [f"{sec}.{f.name}" for f in dataclasses.fields(cls) if f.name not in docs]
    return missing


def config_reference_markdown() -> str:
    """The recipe reference (docs/config_reference.md), generated from the dataclass docstrings."""
    parts = [
        "# Recipe reference\n",
        "Generated from the config dataclasses' docstrings by `signal-hf config --reference`; "
        "do not edit by hand. A recipe is a YAML mapping of these sections; every key is optional.\n",
    ]
    for sec, cls in SECTIONS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        parts.append(f"\n## `{sec}` — {cls.__name__}\n\n{summary}\n\n| key | type | default | meaning |\n|---|---|---|---|")
        docs = _field_docs(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            else:
                default = ""
            # A table cell's `|` must be escaped, inside code spans too (GitHub's table rule).
            meaning = docs.get(f.name, "").replace("|", "\\|")
            tp = type_name(hints[f.name]).replace("|", "\\|")
            parts.append(f"| `{f.name}` | `{tp}` | `{default!r}` | {meaning} |".replace("``", "`"))
    return "\n".join(parts) + "\n"
