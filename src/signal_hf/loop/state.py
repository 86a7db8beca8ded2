"""What flows through a round: the trial's fixed context and the round state the stages pass on."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets import Dataset

from ..acquisition import QueryStrategy
from ..config import ExperimentConfig
from ..data import TaskData
from ..oracles import Oracle
from ..store import RoundStore
from ..tracking import Tracker
from ..types import PoolOutputs
from .methods import Method
from .schedule import Schedule
from .training import Fitted, Retrainer

__all__ = ["RoundContext", "RoundState", "derive_seed", "labeled_features", "synthetic_features_of"]


def derive_seed(*parts: Any) -> int:
    """A seed for one random choice of one trial and round: a run resumed from its last complete
    round makes the same choices as an uninterrupted one."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def labeled_features(real_pool: Dataset) -> datasets.Features:
    return datasets.Features({**real_pool.features, "round_acquired": datasets.Value("int64")})


def synthetic_features_of(real_pool: Dataset) -> datasets.Features:
    return datasets.Features({
        **real_pool.features, "prompt": datasets.Value("string"), "generator_revision": datasets.Value("string"), "round": datasets.Value("int64"),
    })


@dataclass
class RoundContext:
    """Everything a stage reads that does not change from round to round of one trial.

    Attributes:
        cfg: the recipe.
        task: the task (test set ordered for evaluation).
        method: the trial's method.
        seed: the trial's seed.
        run_id: ``{method}-seed{seed}``: the run's name in the store.
        real_pool: R.
        schedule: rounds and budgets.
        strategy: the acquisition strategy.
        retrainer: fits and scores M.
        store: where rounds are saved.
        real_oracle: labels real items (gold).
        synthetic_oracle: labels synthetic items (generative methods).
        generator: the generator (generative methods, once loaded).
        workdir: the trial's scratch folder (classifier and RL outputs).
        phase: reports what the trial is doing now (progress bar).
        tracker: the trial's ``output.report_to`` tracker (main process; ``None``: not tracked).
    """

    cfg: ExperimentConfig
    task: TaskData
    method: Method
    seed: int
    run_id: str
    real_pool: Dataset
    schedule: Schedule
    strategy: QueryStrategy
    retrainer: Retrainer
    store: RoundStore
    real_oracle: Oracle
    workdir: Path
    phase: Callable[[str], None]
    synthetic_oracle: Oracle | None = None
    generator: Any = None
    tracker: Tracker | None = None


@dataclass
class RoundState:
    """The state after a stage of round ``round``.

    Attributes:
        round: the round index (0 = the initial random labeled set).
        labeled: L, with the round each row was acquired in.
        synthetic: S, everything generated so far that was kept.
        synthetic_share: the budget split's share of synthetic items for the next selection.
        model: M fitted on ``labeled`` (after ``retrain``), and its outputs.
        candidates: U \\ L as scored this round (after ``score``).
        scored: (outputs over L, outputs over ``candidates``) the selection reads.
        chosen: the items selected this round, before annotation (after ``select``).
        stop: why the trial ends at this round without saving it (nothing left to acquire), or ``None``.
        stopped_by: the stopping criteria (``loop.stop_when``) that fired after this round: it is saved
            and is the trial's last.
        stop_predictions: this round's predictions on the stop set (the real pool), for the next kappa.
        kappas: Cohen's kappa of each pair of consecutive rounds' stop-set predictions so far.
    """

    round: int
    labeled: Dataset
    synthetic: Dataset
    synthetic_share: float
    model: Fitted | None = None
    candidates: Dataset | None = None
    scored: tuple[PoolOutputs, PoolOutputs] | None = None
    chosen: Dataset | None = None
    stop: str | None = None
    stopped_by: tuple[str, ...] = ()
    stop_predictions: torch.Tensor | None = None
    kappas: tuple[float, ...] = ()

    def next_round(self) -> "RoundState":
        """The state a new round starts from: this round's L, S, share, model and stopping history."""
        return RoundState(self.round + 1, self.labeled, self.synthetic, self.synthetic_share, model=self.model,
                          stop_predictions=self.stop_predictions, kappas=self.kappas)
