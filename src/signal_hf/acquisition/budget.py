"""The budget split between real and synthetic candidates (``loop.budget_split``).

A generative round's candidates are U = R ∪ S. ``free`` lets the strategy take its top-b over U;
``fixed`` reserves ``synthetic_share`` of b for S and the rest for R, each part filled by the
strategy's own ranking inside it; ``adaptive`` (the paper's proposed improvement) is ``fixed`` with a
share that follows what a free top-b would have taken from S in the previous round. A pure function
of the strategy, its state, the candidates' sources and the share: the caller keeps the share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..types import AcquisitionState
from .base import QueryStrategy, top_n

__all__ = ["BudgetSplit", "split_budget"]


@dataclass(frozen=True)
class BudgetSplit:
    """One round's selection under a budget split.

    Attributes:
        picked: indices into the candidates, in the order they were taken.
        next_share: the synthetic share the next round uses (moves only under ``adaptive``).
        info: measurements for the round's row: ``free_synthetic_share`` (share of S in a free top-b,
            score strategies only) and ``synthetic_share_used``; empty for a free selection.
        scores: the strategy's score of each picked candidate (score strategies; ``None`` for set
            strategies, which have no per-candidate score).
    """

    picked: list[int]
    next_share: float
    info: dict[str, float] = field(default_factory=dict)
    scores: list[float] | None = None


def split_budget(
    strategy: QueryStrategy,
    state: AcquisitionState,
    sources: Sequence[str],
    n: int,
    *,
    mode: Literal["free", "fixed", "adaptive"],
    share: float,
) -> BudgetSplit:
    """Pick ``n`` of the candidates of ``state`` (their ``sources``: ``real``/``synthetic``)."""
    syn_idx = [i for i, s in enumerate(sources) if s == "synthetic"]
    real_idx = [i for i, s in enumerate(sources) if s != "synthetic"]
    if mode == "free" or not syn_idx or not real_idx:
        if not strategy.has_scores:
            return BudgetSplit(strategy.query(state, n).tolist(), share)
        picked, scores = strategy.query_with_scores(state, n)
        return BudgetSplit(picked.tolist(), share, scores=_picked_scores(scores, picked.tolist()))
    scores = strategy.scores(state) if strategy.has_scores else None
    info: dict[str, float] = {}
    if scores is not None:
        free = top_n(scores, n).tolist()
        info["free_synthetic_share"] = sum(1 for i in free if sources[i] == "synthetic") / max(1, len(free))
    # Half up, not Python's half-to-even round: a share of 0.5 takes ceil(n/2) of S whatever n's parity
    # (round would take 2 of 5 but 4 of 7, and 0 of a last round's single label).
    n_syn = min(len(syn_idx), math.floor(share * n + 0.5))
    n_real = min(len(real_idx), n - n_syn)
    n_syn = min(len(syn_idx), n - n_real)
    picked: list[int] = []
    for idx, k in ((syn_idx, n_syn), (real_idx, n_real)):
        if k <= 0:
            continue
        if scores is not None:
            local = top_n(scores[idx], k).tolist()
        else:  # a set strategy (BERT-KM, BADGE) selects jointly inside each part
            sub = AcquisitionState(unlabeled=state.unlabeled.select(idx), labeled=state.labeled, seed=state.seed, metadata=state.metadata)
            local = strategy.query(sub, k).tolist()
        picked.extend(idx[j] for j in local)
    info["synthetic_share_used"] = share
    # Adaptive: move budget to synthetic data as the generator's share under free competition grows.
    next_share = info["free_synthetic_share"] if mode == "adaptive" and "free_synthetic_share" in info else share
    return BudgetSplit(picked, next_share, info, _picked_scores(scores, picked))


def _picked_scores(scores, picked: list[int]) -> list[float] | None:
    return None if scores is None else [float(scores[i]) for i in picked]
