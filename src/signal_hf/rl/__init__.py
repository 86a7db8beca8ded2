"""Self-informed RL of the generator: the acquisition reward and GRPO / RLOO / PPO optimisers.

Trainers are imported lazily (TRL is heavy); ``from signal_hf.rl import optimize_generator`` is cheap.
"""

from __future__ import annotations

from typing import Any

from .config import RLConfig
from .optimize import optimize_generator
from .rewards import AcquisitionReward

__all__ = [
    "RLConfig",
    "AcquisitionReward",
    "optimize_generator",
    "SignalGRPOTrainer",
    "SignalRLOOTrainer",
    "SignalPPOTrainer",
    "compute_gae",
]

_LAZY = {
    "SignalGRPOTrainer": ".grpo_trainer",
    "SignalRLOOTrainer": ".rloo_trainer",
    "SignalPPOTrainer": ".ppo_trainer",
    "compute_gae": ".ppo_trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
