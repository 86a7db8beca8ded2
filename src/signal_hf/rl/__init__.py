"""Self-informed RL of the generator: the acquisition reward and GRPO / RLOO / PPO optimisers.

Trainers are imported lazily (TRL is heavy); ``from signal_hf.rl import optimize_generator`` is cheap.
"""

from __future__ import annotations

from .._lazy import lazy_getattr
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

__getattr__ = lazy_getattr(__name__, {
    "SignalGRPOTrainer": ".trl_trainers",
    "SignalRLOOTrainer": ".trl_trainers",
    "SignalPPOTrainer": ".ppo_trainer",
    "compute_gae": ".ppo_trainer",
})
