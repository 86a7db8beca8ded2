"""The round schedule of a trial: how many rounds, how much each acquires, which checkpoint it is.

Counted in fractions of the real pool |R| (the paper's +10 % per round), not in labels: with
rounded sizes (|R| = 105, b = 10) a count in labels would add a 1-item round reported as the next
checkpoint; instead the last round takes the remainder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import LoopConfig

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    """Rounds 0..``num_rounds`` of one trial.

    Attributes:
        pool_size: |R|.
        budget: b, the items acquired per round (``step_fraction`` · |R|, at least 1).
        initial_size: |L| after round 0 (``initial_fraction`` · |R|, at least 1).
        initial_fraction: round 0's checkpoint, as a fraction of |R|.
        step_fraction: the checkpoint step, as a fraction of |R|.
        limit_fraction: the last checkpoint (``max_fraction``, or ``signal_max_fraction`` when the
            trial generates).
    """

    pool_size: int
    budget: int
    initial_size: int
    initial_fraction: float
    step_fraction: float
    limit_fraction: float

    @classmethod
    def from_config(cls, loop: LoopConfig, pool_size: int, *, generative: bool) -> "Schedule":
        return cls(
            pool_size=pool_size,
            budget=max(1, int(round(loop.step_fraction * pool_size))),
            initial_size=max(1, int(round(loop.initial_fraction * pool_size))),
            initial_fraction=loop.initial_fraction,
            step_fraction=loop.step_fraction,
            limit_fraction=loop.signal_max_fraction if generative else loop.max_fraction,
        )

    @property
    def max_labeled(self) -> int:
        """|L| after the last round."""
        return int(round(self.limit_fraction * self.pool_size))

    @property
    def num_rounds(self) -> int:
        """Rounds after round 0: one per checkpoint up to the limit."""
        checkpoints = math.ceil((self.limit_fraction - self.initial_fraction) / self.step_fraction - 1e-6)
        # ... but never a round with nothing left to acquire (a limit just above a checkpoint).
        return max(0, min(checkpoints, math.ceil((self.max_labeled - self.initial_size) / self.budget)))

    def round_budget(self, round_idx: int, labeled: int) -> int:
        """Items to acquire in ``round_idx``: b, or whatever reaches ``max_labeled`` in the last round."""
        remaining = self.max_labeled - labeled
        return remaining if round_idx >= self.num_rounds else min(self.budget, remaining)

    def step_percent(self, round_idx: int) -> int:
        """The checkpoint of ``round_idx`` in % of |R| (the last one is the limit itself)."""
        return int(round(100 * min(self.initial_fraction + round_idx * self.step_fraction, self.limit_fraction)))
