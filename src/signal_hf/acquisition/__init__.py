"""Query strategies for active learning, and the SIGnAL score.

>>> from signal_hf.acquisition import get_strategy
>>> strategy = get_strategy("signal", config.acquisition)          # doctest: +SKIP
>>> picked = strategy.query(state, n=32)                            # doctest: +SKIP

Registered strategies (:func:`available_strategies`): ``random``, ``entropy``, ``margin``,
``least_confidence``, ``bald``, ``bert_km``, ``badge``, ``coreset``, ``cal``, ``signal``. Score-based
ones (``has_scores``) also give per-candidate ``scores(state)``; ``bert_km``, ``badge`` and
``coreset`` select a set jointly and raise :class:`~signal_hf.errors.StrategyError` from ``scores``.

:func:`signal_scores` and :func:`knn` work on plain tensors (the RL reward scores generated texts
that are in no pool with them).
"""

from .base import (
    POOL_FIELDS,
    STRATEGIES,
    QueryStrategy,
    ScoreStrategy,
    SetStrategy,
    available_strategies,
    get_strategy,
    register_strategy,
    top_n,
)
from .clustering import distinct_nearest, k_center_greedy, kmeans, kmeans_pp_seeding
from .neighbours import knn
from .scores import cal_scores, kl_divergence, signal_scores
from . import strategies
from .strategies import (
    BALDStrategy,
    BadgeStrategy,
    BertKMStrategy,
    CALStrategy,
    CoreSetStrategy,
    EntropyStrategy,
    LeastConfidenceStrategy,
    MarginStrategy,
    RandomStrategy,
    SignalStrategy,
    badge_gradient_embeddings,
    bald_scores,
)

__all__ = [
    "POOL_FIELDS",
    "STRATEGIES",
    "QueryStrategy",
    "ScoreStrategy",
    "SetStrategy",
    "available_strategies",
    "get_strategy",
    "register_strategy",
    "top_n",
    "knn",
    "kl_divergence",
    "signal_scores",
    "cal_scores",
    "kmeans",
    "kmeans_pp_seeding",
    "distinct_nearest",
    "k_center_greedy",
    *strategies.__all__,
]
