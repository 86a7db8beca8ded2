"""Few-shot synthetic-text generation (:class:`Generator`) and its recipe sections.

The config dataclasses import nothing heavy (recipes are validated before any model loads); the
generator, prompt and post-processing modules (torch, transformers, peft) load on first use.
"""

from __future__ import annotations

from typing import Any

from .config import GeneratorConfig, OracleConfig, check_generator_config

__all__ = [
    "DROP_REASONS",
    "GenerationStats",
    "Generator",
    "GeneratorConfig",
    "NearDuplicateIndex",
    "OracleConfig",
    "check_generator_config",
    "dedup_key",
    "default_instruction",
    "load_base_model",
    "normalize_text",
    "parse_completion",
    "render_prompt",
    "sample_example_indices",
    "synthetic_features",
]

_LAZY = {
    "Generator": "generator",
    "GenerationStats": "generator",
    "load_base_model": "generator",
    "synthetic_features": "generator",
    "NearDuplicateIndex": "postprocess",
    "parse_completion": "postprocess",
    "normalize_text": "postprocess",
    "dedup_key": "postprocess",
    "DROP_REASONS": "postprocess",
    "default_instruction": "prompts",
    "render_prompt": "prompts",
    "sample_example_indices": "prompts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
