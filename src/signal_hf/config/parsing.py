"""Reading a recipe: YAML → typed, checked dataclasses, with CLI overrides applied first.

Each section is type-checked field by field (strictly: no text where a number is expected) and
built with :class:`transformers.HfArgumentParser`; the dataclasses then check their own values.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError
from .experiment import SECTIONS, ExperimentConfig

__all__ = ["load_recipe", "config_from_dict", "apply_overrides", "parse_overrides", "to_yaml", "type_name"]


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


_YAML_EXPONENT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _takes_list(section: str, name: str) -> bool:
    """Whether the field ``section.name`` holds a list (``list[...]``, optionally ``| None``)."""
    cls = SECTIONS.get(section)
    tp = typing.get_type_hints(cls).get(name) if cls is not None else None
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if a is not type(None)), None)
    return typing.get_origin(tp) in (list, tuple)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; convert the few lossless cases (int→float, str→number
    for CLI strings). Raises ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, where)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        raise ConfigError(where, f"{value!r} is not one of {list(allowed)}", f"use one of {list(allowed)}")
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        # Strict: a recipe writes lists as lists (CLI overrides are made lists in parse_overrides).
        if not isinstance(value, (list, tuple)):
            raise ConfigError(where, f"expected a list, got {value!r}", "give a YAML list, e.g. [a, b]")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(where, f"expected a mapping, got {value!r}", "give a YAML mapping")
        return dict(value)
    return _SCALARS[tp](value, where) if tp in _SCALARS else value


def _coerce_union(value: Any, tp: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
        return None
    for a in args:
        if a is type(None):
            continue
        try:
            return _coerce(value, a, where)
        except ConfigError:
            continue
    raise ConfigError(where, f"expected {type_name(tp)}, got {value!r}", f"give a {type_name(tp)}")


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigError(where, f"expected true/false, got {value!r}", "write true or false")


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    # Strict: a quoted "3" in a recipe is text, not a number (CLI overrides are YAML-parsed first).
    fix = "give a whole number" if isinstance(value, bool) else "give a whole number, unquoted"
    raise ConfigError(where, f"expected an integer, got {value!r}", fix)


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    # PyYAML reads 5e-5 (no dot) as text: that one spelling of a number is accepted, no other text.
    if isinstance(value, str) and _YAML_EXPONENT.match(value.strip()):
        return float(value)
    fix = "give a number" if isinstance(value, bool) else "give a number, unquoted"
    raise ConfigError(where, f"expected a number, got {value!r}", fix)


def _as_str(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(where, f"expected a string, got {value!r}", "quote the value")


_SCALARS = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str}


def _parse_section(section: str, cls: type, values: Any) -> Any:
    from transformers import HfArgumentParser

    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(section, f"expected a mapping of fields, got {values!r}", f"write `{section}:` followed by indented `key: value` lines")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, names, n=1)
        fix = f"did you mean `{section}.{close[0]}`?" if close else f"valid keys: {', '.join(sorted(names))}"
        raise ConfigError(f"{section}.{key}", "unknown key", fix)
    typed = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    # HfArgumentParser builds the dataclass (and would reject unknown keys on its own).
    (obj,) = HfArgumentParser(cls).parse_dict(typed, allow_extra_keys=False)
    return obj


def parse_overrides(args: list[str]) -> dict[str, dict[str, Any]]:
    """``["--loop.seeds", "3", "4", "--k=5"]`` → ``{"loop": {"seeds": ["3", "4"]}, "acquisition": {"k": "5"}}``.

    Values stay strings (or YAML scalars/lists) and are type-checked with the recipe.
    """
    flat_owner: dict[str, list[str]] = {}
    for sec, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            flat_owner.setdefault(f.name, []).append(sec)
    out: dict[str, dict[str, Any]] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            raise ConfigError(tok, "unexpected argument", "overrides look like --section.key value")
        key, eq, val = tok[2:].partition("=")
        values: list[str] = [val] if eq else []
        i += 1
        if not eq:
            while i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
        if key == "name":
            out.setdefault("", {})["name"] = values[0] if values else ""
            continue
        if "." in key:
            sec, _, fname = key.partition(".")
            if sec not in SECTIONS:
                raise ConfigError(key, f"unknown section {sec!r}", f"sections: {', '.join(SECTIONS)}")
        else:
            fname = key.replace("-", "_")
            owners = flat_owner.get(fname, [])
            if not owners:
                raise ConfigError(key, "unknown option", "use --section.key value, e.g. --loop.seeds 0 1")
            if len(owners) > 1:
                raise ConfigError(key, f"is ambiguous (in {', '.join(owners)})", f"write --{owners[0]}.{fname}")
            sec = owners[0]
        if not values:
            value: Any = True  # bare flag
        elif len(values) == 1:
            value = yaml.safe_load(values[0]) if values[0] else ""
        else:
            value = [yaml.safe_load(v) for v in values]
        if sec and _takes_list(sec, fname) and not isinstance(value, list):
            # `--loop.seeds 3` means [3]; `--acquisition.strategies=random,cal` means [random, cal].
            value = [yaml.safe_load(v) for v in value.replace(",", " ").split()] if isinstance(value, str) else [value]
        out.setdefault(sec, {})[fname] = value
    return out


def config_from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """Build a checked :class:`ExperimentConfig` from a recipe mapping."""
    if not isinstance(raw, dict):
        raise ConfigError("recipe", "is not a mapping of sections", "see recipes/demo.yaml for the layout")
    unknown = sorted(set(raw) - set(SECTIONS) - {"name"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(SECTIONS), n=1)
        raise ConfigError(unknown[0], "unknown section", f"did you mean `{close[0]}`?" if close else f"sections: {', '.join(SECTIONS)}")
    kwargs = {sec: _parse_section(sec, cls, raw.get(sec)) for sec, cls in SECTIONS.items()}
    return ExperimentConfig(name=raw.get("name", "experiment"), **kwargs)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML recipe, apply CLI overrides, type-check and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("recipe", f"file {str(path)!r} not found", "pass the path of a YAML recipe, e.g. recipes/demo.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError("recipe", f"{path} is not UTF-8 text (byte {e.start})", "save the recipe as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError("recipe", f"{path} is not valid YAML{where}: {getattr(e, 'problem', e)}", "fix the YAML syntax") from None
    if raw is None or raw == {}:
        # An empty file would otherwise start the full default experiment.
        raise ConfigError("recipe", f"{path} is empty", "write at least data and output sections, see recipes/demo.yaml")
    if not isinstance(raw, dict):
        raise ConfigError("recipe", f"{path} is not a mapping of sections", "see recipes/demo.yaml for the layout")
    return config_from_dict(apply_overrides(raw, overrides or []))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the recipe mapping ``raw`` with the CLI ``overrides`` (``--section.key value``) applied."""
    raw = dict(raw)
    for sec, values in parse_overrides(list(overrides)).items():
        if sec == "":
            raw.update(values)
            continue
        section = raw.get(sec) or {}
        if not isinstance(section, dict):
            raise ConfigError(sec, "is not a mapping", f"write `{sec}:` followed by indented keys")
        raw[sec] = {**section, **values}
    return raw


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
