"""Few-shot synthetic-text generation (:class:`Generator`) and its recipe sections.

The config dataclasses import nothing heavy (recipes are validated before any model loads); the
generator, model-loading, prompt and post-processing modules (torch, transformers, peft) load on
first use.
"""

from __future__ import annotations

from .._lazy import lazy_getattr
from .config import GeneratorConfig, OracleConfig

__all__ = [
    "DROP_REASONS",
    "GenerationStats",
    "Generator",
    "GeneratorConfig",
    "NearDuplicateIndex",
    "OracleConfig",
    "dedup_key",
    "default_instruction",
    "load_base_model",
    "normalize_text",
    "parse_completion",
    "render_prompt",
    "sample_example_indices",
    "synthetic_features",
]

__getattr__ = lazy_getattr(__name__, {
    "Generator": ".generator",
    "GenerationStats": ".generator",
    "synthetic_features": ".generator",
    "load_base_model": ".model",
    "NearDuplicateIndex": ".postprocess",
    "parse_completion": ".postprocess",
    "normalize_text": ".postprocess",
    "dedup_key": ".postprocess",
    "DROP_REASONS": ".postprocess",
    "default_instruction": ".prompts",
    "render_prompt": ".prompts",
    "sample_example_indices": ".prompts",
})
