"""Stopping criteria: "when do I stop labelling?" (``loop.stop_when``), checked after each round.

* ``stabilizing_predictions`` (Bloodgood & Vijay-Shanker, 2009): the classifiers of consecutive rounds
  agree on a fixed stop set — Cohen's kappa of their predictions ≥ ``loop.stop_kappa`` for each of the
  last ``loop.stop_window`` round pairs.
* ``kappa_average`` (small-text's ``KappaAverage``): the mean of those last ``stop_window`` kappas ≥
  ``stop_kappa``.
* ``overall_uncertainty`` (small-text's ``OverallUncertainty``): the mean normalised entropy of the
  predictions on the stop set's unlabeled part < ``loop.stop_uncertainty``.
* ``max_labels``: |L| ≥ ``loop.stop_max_labels``.

The stop set is the real pool R (its labels are never read): each round's classifier predicts all of
it in the inference pass the strategies already read. The kappa history travels in every round's
saved state, so a resumed run decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["STOP_CRITERIA", "cohen_kappa", "normalised_entropy", "fired_criteria"]

STOP_CRITERIA = ("stabilizing_predictions", "kappa_average", "overall_uncertainty", "max_labels")


def cohen_kappa(a: torch.Tensor, b: torch.Tensor, num_classes: int) -> float:
    """Cohen's kappa of two label vectors; 1.0 when both are one constant class (full agreement)."""
    if a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"cohen_kappa: expected two non-empty label vectors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    observed = float((a == b).double().mean())
    pa = torch.bincount(a, minlength=num_classes).double() / a.numel()
    pb = torch.bincount(b, minlength=num_classes).double() / b.numel()
    expected = float((pa * pb).sum())
    return 1.0 if expected >= 1.0 else (observed - expected) / (1.0 - expected)


def normalised_entropy(probs: torch.Tensor) -> float:
    """Mean entropy of the rows of ``probs`` divided by log(C): 0 = certain, 1 = uniform."""
    if probs.numel() == 0:
        return float("nan")
    p = probs.double().clamp_min(1e-12)
    return float((-(p * p.log()).sum(1) / math.log(probs.shape[1])).mean())


def fired_criteria(criteria: Sequence[str], *, kappas: Sequence[float], uncertainty: float, labeled: int,
                   kappa: float, window: int, max_uncertainty: float, max_labels: int | None) -> list[str]:
    """The names of ``criteria`` that say stop, given the kappa history (one per round pair, oldest
    first), this round's stop-set uncertainty and |L|."""
    last = list(kappas)[-window:]
    full = len(last) == window
    checks = {
        "stabilizing_predictions": full and all(k >= kappa for k in last),
        "kappa_average": full and sum(last) / window >= kappa,
        "overall_uncertainty": not math.isnan(uncertainty) and uncertainty < max_uncertainty,
        "max_labels": max_labels is not None and labeled >= max_labels,
    }
    return [c for c in criteria if checks[c]]
