"""Query-strategy base classes, the strategy registry and shared input checks.

Two kinds of strategy:

* :class:`ScoreStrategy` — one informativeness score per candidate (``scores``); ``query`` takes the
  top-n by score, ties broken towards the lower candidate index.
* :class:`SetStrategy` — selects a *set* jointly (BERT-KM clustering, BADGE k-means++ seeding);
  there is no per-candidate score, so ``has_scores`` is False and ``scores`` raises
  :class:`~signal_hf.errors.StrategyError` instead of inventing numbers.
"""

from __future__ import annotations

import dataclasses
import operator
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, TypeVar

import torch

from .config import AcquisitionConfig
from ..errors import ConfigError, EmptyPoolError, StrategyError
from ..types import AcquisitionState, PoolOutputs
from .neighbours import all_finite
from .registry import STRATEGIES, available_strategies

__all__ = [
    "QueryStrategy",
    "ScoreStrategy",
    "SetStrategy",
    "STRATEGIES",
    "register_strategy",
    "get_strategy",
    "available_strategies",
    "top_n",
    "POOL_FIELDS",
]

#: The PoolOutputs fields a strategy may declare in ``requires``.
POOL_FIELDS: frozenset[str] = frozenset({"probs", "embeddings", "grad_embeddings", "pretrained_embeddings", "mc_probs"})

#: Fields whose rows are not dimension 0: ``mc_probs`` is ``(T, n, C)``.
_ROW_DIM: dict[str, int] = {"mc_probs": 1}

S = TypeVar("S", bound=type["QueryStrategy"])


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator: register a :class:`QueryStrategy` subclass under ``name`` (lowercase)."""

    def deco(cls: S) -> S:
        if not name or name != name.lower():
            raise StrategyError(f"strategy name {name!r} must be a non-empty lowercase string")
        if not (isinstance(cls, type) and issubclass(cls, QueryStrategy)):
            raise StrategyError(f"register_strategy({name!r}): {cls!r} is not a QueryStrategy subclass")
        bad = set(cls.requires) - POOL_FIELDS
        if bad:
            raise StrategyError(f"strategy {name!r}: unknown required fields {sorted(bad)} (valid: {sorted(POOL_FIELDS)})")
        old = STRATEGIES.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise StrategyError(f"strategy name {name!r} is already registered by {old.__qualname__}")
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return deco


def _config_with(config: AcquisitionConfig | None, overrides: dict[str, Any]) -> AcquisitionConfig:
    """``config`` (default: ``AcquisitionConfig()``) with single fields replaced; the dataclass
    checks the new values itself."""
    cfg = config if config is not None else AcquisitionConfig()
    names = {f.name for f in dataclasses.fields(AcquisitionConfig)}
    for key in overrides:
        if key not in names:
            raise ConfigError(f"acquisition.{key}", "unknown key", f"valid keys: {', '.join(sorted(names))}")
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def get_strategy(name: str, config: AcquisitionConfig | None = None, **overrides: Any) -> "QueryStrategy":
    """Build the strategy registered as ``name``.

    Args:
        name: a name from :func:`available_strategies`.
        config: the recipe's acquisition section (``k``, ``neighbours``, ``distance``, ``eps``,
            ``knn_batch_size``, ``use_faiss``); defaults to ``AcquisitionConfig()``.
        **overrides: replace single config fields, e.g. ``k=5``.

    Raises:
        StrategyError: unknown ``name`` (the message lists the valid ones).
        ConfigError: an unknown override key or an impossible value.
    """
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        import difflib

        known = available_strategies()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise StrategyError(f"unknown strategy {name!r} ({hint}valid strategies: {', '.join(known)})")
    return cls(_config_with(config, overrides))


def top_n(scores: torch.Tensor, n: int) -> torch.LongTensor:
    """Indices of the ``min(n, len(scores))`` highest scores, best first; ties → lower index.

    NaN scores are rejected (they would sort arbitrarily).
    """
    if scores.dim() != 1:
        raise StrategyError(f"scores: expected a 1-D tensor, got shape {tuple(scores.shape)}")
    if bool(torch.isnan(scores).any()):
        raise StrategyError("scores: contain NaN (fix: check the classifier probabilities/embeddings)")
    # A stable descending sort keeps equal scores in index order, so the lower index wins.
    order = torch.sort(scores.detach().cpu(), descending=True, stable=True).indices
    return order[: min(n, scores.numel())]


def _rows(t: torch.Tensor | None) -> int:
    return 0 if t is None or t.dim() == 0 else int(t.shape[0])


class QueryStrategy(ABC):
    """A query strategy: chooses which candidates the oracle labels next.

    Class attributes:
        name: registry name (set by :func:`register_strategy`).
        requires: the :class:`~signal_hf.types.PoolOutputs` fields it reads; the classifier computes
            ``grad_embeddings``/``pretrained_embeddings`` only when some strategy requires them.
        has_scores: whether :meth:`scores` gives one value per candidate.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    has_scores: ClassVar[bool] = True

    def __init__(self, config: AcquisitionConfig | None = None):
        self.config = _config_with(config, {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # ------------------------------------------------------------ public API

    @abstractmethod
    def query(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        """``min(n, len(state.unlabeled))`` distinct indices into ``state.unlabeled``, in selection order.

        Raises:
            EmptyPoolError: no candidates.
            StrategyError: ``n <= 0``, or a required field is missing/inconsistent.
        """

    @abstractmethod
    def scores(self, state: AcquisitionState) -> torch.Tensor:
        """``(n_unlabeled,)`` float informativeness, higher = more informative."""

    # ------------------------------------------------------------ checks

    def _check_n(self, n: int) -> int:
        try:
            # operator.index accepts int, numpy and 0-d torch integers but not floats or bools' cousins.
            if isinstance(n, bool):
                raise TypeError
            n = operator.index(n)
        except TypeError:
            raise StrategyError(f"{self.name}: n must be an integer, got {n!r}") from None
        if n <= 0:
            raise StrategyError(f"{self.name}: n must be > 0, got {n} (fix: ask for at least one item)")
        return n

    def _check_state(self, state: AcquisitionState) -> None:
        if not isinstance(state, AcquisitionState):
            raise StrategyError(f"{self.name}: expected an AcquisitionState, got {type(state).__name__}")
        u = state.unlabeled
        nu = _rows(u.probs)
        if nu == 0:
            raise EmptyPoolError(f"{self.name}: the candidate pool (state.unlabeled) is empty; nothing to select")
        self._check_outputs(u, "unlabeled", nu)

    def _check_outputs(self, out: PoolOutputs, where: str, rows: int) -> None:
        for f in sorted(self.requires):
            t = getattr(out, f)
            if t is None:
                raise StrategyError(
                    f"{self.name}: state.{where}.{f} is None but this strategy needs it "
                    f"(fix: compute {f} for the pool, e.g. include {self.name!r} in the strategies the classifier is told about)"
                )
            row_dim = _ROW_DIM.get(f, 0)
            if t.dim() != row_dim + 2 or t.shape[row_dim] != rows:
                expected = f"T, {rows}, C" if row_dim else f"{rows}, ..."
                raise StrategyError(
                    f"{self.name}: state.{where}.{f} has shape {tuple(t.shape)}, expected ({expected}) "
                    f"with the {rows} rows of state.{where}.probs"
                )
            if not all_finite(t):
                raise StrategyError(f"{self.name}: state.{where}.{f} contains NaN or inf")


class ScoreStrategy(QueryStrategy):
    """A strategy with a per-candidate score; ``query`` is the top-n by :meth:`compute_scores`."""

    def scores(self, state: AcquisitionState) -> torch.Tensor:
        self._check_state(state)
        return self.compute_scores(state)

    def query(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        return self.query_with_scores(state, n)[0]

    def query_with_scores(self, state: AcquisitionState, n: int) -> tuple[torch.LongTensor, torch.Tensor]:
        """``query``'s picks and every candidate's score, from one scoring pass."""
        n = self._check_n(n)
        scores = self.scores(state)
        return top_n(scores, n), scores

    @abstractmethod
    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        """Scores of a checked state (non-empty, required fields present)."""


class SetStrategy(QueryStrategy):
    """A strategy that selects a set jointly; it has no per-candidate score."""

    has_scores: ClassVar[bool] = False

    def scores(self, state: AcquisitionState) -> torch.Tensor:
        raise StrategyError(
            f"{self.name}: is a set-based strategy and has no per-candidate score "
            "(fix: call query(state, n), or check strategy.has_scores first)"
        )

    def query(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        n = self._check_n(n)
        self._check_state(state)
        return self.select(state, min(n, len(state.unlabeled)))

    @abstractmethod
    def select(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        """``n`` (≤ pool size) distinct indices of a checked state, in selection order."""
