"""The ``acquisition`` recipe section: which strategies run, and their parameters.

It lives with the strategies (not in :mod:`signal_hf.config`) so that the strategy registry it
checks names against is this package's own (filled as the strategies import), and nothing of the
package imports the recipe parser.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

from ..checks import check_choices, in_unit_interval, non_empty_unique, positive
from ..errors import ConfigError
from .registry import available_strategies

__all__ = ["AcquisitionConfig", "BUDGET_SPLIT_SUFFIXES", "METHOD_SUFFIXES", "split_budget_suffix", "split_method_name"]

#: Suffixes of an ``acquisition.strategies`` entry that turn the generator on for that method
#: (signal_hf.loop.methods); longest first, so ``signal-gen-norl`` is not read as ``signal-gen`` + ``-norl``.
METHOD_SUFFIXES: tuple[str, ...] = ("-gen-norl", "-gen")
# A generative method's own budget split, overriding ``loop.budget_split`` (``signal-gen-adaptive``), so that
# the split ablation runs side by side with the recipe's split on the same seeds under its own name.
BUDGET_SPLIT_SUFFIXES: dict[str, str] = {"-free": "free", "-fixed": "fixed", "-adaptive": "adaptive"}


def split_budget_suffix(entry: str) -> tuple[str, str | None]:
    """``"signal-gen-adaptive"`` → ``("signal-gen", "adaptive")``; ``"cal-gen"`` → ``("cal-gen", None)``."""
    for suffix, mode in BUDGET_SPLIT_SUFFIXES.items():
        if entry.endswith(suffix) and len(entry) > len(suffix):
            return entry[: -len(suffix)], mode
    return entry, None


def split_method_name(entry: str) -> tuple[str, str, str | None]:
    """An ``acquisition.strategies`` entry as (strategy, method suffix, budget split): ``"cal-gen"`` →
    ``("cal", "-gen", None)``; ``"entropy"`` → ``("entropy", "", None)``; ``"signal-gen-norl-fixed"`` →
    ``("signal", "-gen-norl", "fixed")``."""
    entry, split = split_budget_suffix(entry)
    for suffix in METHOD_SUFFIXES:
        if entry.endswith(suffix) and len(entry) > len(suffix):
            return entry[: -len(suffix)], suffix, split
    return entry, "", split


@dataclass
class AcquisitionConfig:
    """Which query strategies run and their parameters (recipe section ``acquisition``).

    Attributes:
        strategies: the methods run side by side on the same seeds: strategy names (see
            ``signal_hf.acquisition.available_strategies()``: ``random``, ``entropy``, ``margin``,
            ``least_confidence``, ``bald``, ``bert_km``, ``badge``, ``coreset``, ``cal``, ``signal``), pool-based
            over the real pool R, except ``signal`` with ``generator.enabled`` (reported as
            ``signal-gen``). ``NAME-gen`` (e.g. ``cal-gen``, ``entropy-gen``) runs the strategy with the
            generator on, acquiring from U = R ∪ S (the pretrained generator, no RL, for all but
            SIGnAL); ``signal-gen-norl`` is generative SIGnAL with the generator frozen. ``-gen``
            entries need ``generator.enabled``. A generative entry may end in ``-free``, ``-fixed`` or
            ``-adaptive``: that method's budget split instead of ``loop.budget_split``, under its own
            name (``[signal-gen, signal-gen-adaptive]`` runs the split ablation side by side).
        k: neighbours of CAL and SIGnAL.
        neighbours: SIGnAL's neighbour set: ``labeled`` (the labeled set L, default) or ``all``
            (L and the other candidates).
        distance: ``euclidean`` or ``cosine`` distance between embeddings Φ.
        eps: floor of the distance in SIGnAL's denominator (duplicates would divide by zero).
        knn_batch_size: query rows per block in the batched kNN (memory is block × reference rows).
        use_faiss: use faiss for the kNN when it is installed (large pools).
        bald_mc_samples: BALD's T, the stochastic forward passes with dropout active (MC dropout)
            whose class probabilities it reads; at least 2. 10 is small-text's BALD default. Only
            BALD's trials run them: with ``classifier.backend: finetune`` they cost T inference
            passes over L and the candidates per round, on the head backends T products with the head.
        bald_dropout: the head backends' (``probe``, ``setfit``) MC dropout: the encoder embeddings
            are cached, so instead of dropout inside the encoder each pass drops features of the
            head's input Φ at this rate (inverted dropout, kept features scaled by 1/(1 − rate)),
            under a head fitted without dropout: a perturbation of the fitted head, not the network's
            own dropout posterior. In (0, 1); 0.1 is BERT's hidden dropout and the finetune head's.
            ``finetune`` ignores it and runs the network's own dropout layers at their trained rates.
    """

    strategies: list[str] = field(
        default_factory=lambda: ["random", "entropy", "bert_km", "badge", "cal", "signal"]
    )
    k: int = 10
    neighbours: Literal["labeled", "all"] = "labeled"
    distance: Literal["euclidean", "cosine"] = "euclidean"
    eps: float = 1e-4
    knn_batch_size: int = 4096
    use_faiss: bool = False
    bald_mc_samples: int = 10
    bald_dropout: float = 0.1

    def __post_init__(self) -> None:
        non_empty_unique("acquisition.strategies", self.strategies, "strategy", "[random, signal]")
        known = available_strategies()
        for i, entry in enumerate(self.strategies):
            name, suffix, split = split_method_name(entry)
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                fix = f"did you mean {close[0] + entry[len(name):]!r}?" if close else f"use one of {known}, optionally with -gen"
                raise ConfigError(f"acquisition.strategies[{i}]", f"unknown strategy {name!r}", fix)
            if suffix == "-gen-norl" and name != "signal":
                raise ConfigError(f"acquisition.strategies[{i}]", f"{entry!r}: only SIGnAL self-informs, so only it has a -norl ablation", f"use {name}-gen")
            if split and not suffix and name != "signal":
                raise ConfigError(f"acquisition.strategies[{i}]", f"{entry!r}: a budget split divides a generative method's budget between R and S, and {name} acquires from R only", f"use {name}-gen-{split}")
        if isinstance(self.k, bool) or not isinstance(self.k, int):
            raise ConfigError("acquisition.k", f"must be a positive integer, got {self.k!r}", "e.g. 10")
        positive("acquisition.k", self.k, "e.g. 10")
        positive("acquisition.eps", self.eps, "e.g. 1e-4")
        positive("acquisition.knn_batch_size", self.knn_batch_size, "e.g. 4096")
        # One pass has no disagreement to measure: BALD would score every candidate 0.
        if isinstance(self.bald_mc_samples, bool) or not isinstance(self.bald_mc_samples, int) or self.bald_mc_samples < 2:
            raise ConfigError("acquisition.bald_mc_samples", f"must be an integer >= 2, got {self.bald_mc_samples!r}", "e.g. 10")
        in_unit_interval("acquisition.bald_dropout", self.bald_dropout, "e.g. 0.1", high_open=True)
        check_choices("acquisition", self)
