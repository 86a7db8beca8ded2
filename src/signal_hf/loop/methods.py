"""Methods: what one trial runs — an acquisition strategy, with or without the generator and RL.

An entry of ``acquisition.strategies`` names a method:

* ``X`` — pool-based strategy X over the real pool R (``signal`` with ``generator.enabled`` is the
  paper's generative SIGnAL, reported as ``signal-gen``);
* ``X-gen`` — the generator writes candidates every round and X acquires from U = R ∪ S;
  ``signal-gen`` also self-informs (RL on the SIGnAL reward) when ``rl.enabled``; for other
  strategies the generator stays the pretrained one (the reward is SIGnAL's score);
* ``signal-gen-norl`` — generative SIGnAL with the generator frozen (the RL ablation);
* any generative entry ``+ -free | -fixed | -adaptive`` — that method with its own budget split
  (``signal-gen-adaptive``), the split ablation beside the recipe's ``loop.budget_split``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..acquisition.config import split_method_name
from ..config import ExperimentConfig

__all__ = ["Method", "parse_method", "method_name"]


@dataclass(frozen=True)
class Method:
    """One trial's method.

    Attributes:
        name: the name in results, tables and plots (``signal-gen``, ``cal-gen``, ``entropy``).
        strategy: the registered acquisition strategy.
        generate: the generator writes candidates every round (U = R ∪ S, limit ``signal_max_fraction``).
        self_inform: RL fine-tunes the generator on the retrained classifier's SIGnAL score.
        budget_split: this method's split of each round's budget between R and S (``None``: the
            recipe's ``loop.budget_split``); pool-based methods always take the top-b of R.
    """

    name: str
    strategy: str
    generate: bool
    self_inform: bool
    budget_split: Literal["free", "fixed", "adaptive"] | None = None


def parse_method(entry: str, cfg: ExperimentConfig) -> Method:
    """The method an ``acquisition.strategies`` entry names under ``cfg`` (checked by the config)."""
    strategy, suffix, split = split_method_name(entry)
    if suffix == "" and strategy == "signal" and cfg.generator.enabled:
        suffix = "-gen"  # the paper's SIGnAL generates whenever the generator is configured
    if suffix == "":
        return Method(strategy, strategy, False, False)
    tag = f"-{split}" if split else ""
    if suffix == "-gen-norl":
        return Method(f"{strategy}-gen-norl{tag}", strategy, True, False, split)
    return Method(f"{strategy}-gen{tag}", strategy, True, strategy == "signal" and cfg.rl.enabled, split)


def method_name(entry: str, cfg: ExperimentConfig) -> str:
    """The results name of an ``acquisition.strategies`` entry (``signal`` → ``signal-gen`` when generating)."""
    return parse_method(entry, cfg).name
