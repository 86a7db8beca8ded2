"""Recipes: one YAML file per experiment, parsed into documented dataclasses.

A recipe has one mapping per section (``data``, ``classifier``, ``acquisition``, ``loop``,
``output``, ``generator``, ``oracle``, ``rl``, ``store``) plus an optional top-level ``name``.
Each section is parsed with :class:`transformers.HfArgumentParser` into its dataclass, which checks
its own values (``__post_init__``); :class:`ExperimentConfig` checks the rules that span sections.
Unknown keys, wrong types and impossible values raise one :class:`~signal_hf.errors.ConfigError`
that names the field (``acquisition.k``) and the fix, before any data or model is loaded.

CLI overrides come after the recipe path, either dotted (``--loop.seeds 3 4`` or
``--loop.seeds=[3,4]``) or HF-style flat (``--seeds 3 4``) when the field name is unique across
sections.
"""

from ..acquisition.config import AcquisitionConfig
from ..generation.config import GeneratorConfig, OracleConfig
from ..rl.config import RLConfig
from ..store.config import StoreConfig
from .experiment import SECTIONS, ExperimentConfig
from .parsing import apply_overrides, config_from_dict, load_recipe, parse_overrides, to_yaml
from .reference import config_reference_markdown, undocumented_fields
from .sections import ClassifierConfig, DataConfig, LoopConfig, OutputConfig

__all__ = [
    "DataConfig",
    "ClassifierConfig",
    "AcquisitionConfig",
    "LoopConfig",
    "OutputConfig",
    "GeneratorConfig",
    "OracleConfig",
    "RLConfig",
    "StoreConfig",
    "ExperimentConfig",
    "SECTIONS",
    "load_recipe",
    "config_from_dict",
    "apply_overrides",
    "parse_overrides",
    "to_yaml",
    "config_reference_markdown",
    "undocumented_fields",
]
