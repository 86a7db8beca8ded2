"""The RL effect, measured every round: did self-informing move the generator?

After the round's RL step, a fixed probe set of prompts (the same prompts and sampling seed every
round) is sampled with the adapter on (the trained policy) and off (the pretrained policy). Both
sets of completions are parsed like candidates and scored with the reward's own SIGnAL score
under the round's retrained classifier. The gain is the difference of the mean rewards of the
valid completions, with a paired bootstrap interval over prompts (the same prompt is sampled by
both policies, so resampling prompts keeps the pairs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..types import display_text

__all__ = ["PolicySample", "bootstrap_gain", "measure_policy", "probe_metrics"]


@dataclass
class PolicySample:
    """One policy's completions of the probe prompts, as the loop measured them.

    Attributes:
        rewards: ``(n,)`` raw SIGnAL score per prompt's completion, NaN where it was dropped.
        reasons: drop reason per completion (``None`` = valid).
        labels: the oracle's label name per valid completion.
        relevance: ``(valid,)`` distance of each valid completion to its nearest real pool item in Φ.
        texts: each completion's text (as parsed when valid).
    """

    rewards: torch.Tensor
    reasons: Sequence[str | None]
    labels: Sequence[str]
    relevance: torch.Tensor
    texts: Sequence[str] = ()


def _nanmean(x: torch.Tensor) -> float:
    ok = ~torch.isnan(x)
    return float(x[ok].mean()) if bool(ok.any()) else float("nan")


def bootstrap_gain(on: torch.Tensor, off: torch.Tensor, *, seed: int, resamples: int = 2000, level: float = 0.95) -> tuple[float, float, float]:
    """``(gain, low, high)``: mean(on) − mean(off) over the non-NaN entries, and its percentile
    interval from ``resamples`` paired bootstrap draws of the prompts (vectorised)."""
    if on.shape != off.shape or on.dim() != 1:
        raise ValueError(f"on/off: expected two 1-D tensors of one shape, got {tuple(on.shape)} and {tuple(off.shape)}")
    gain = _nanmean(on) - _nanmean(off)
    n = on.numel()
    if n == 0:
        return gain, float("nan"), float("nan")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (resamples, n), generator=g)
    a, b = on.double()[idx], off.double()[idx]  # (resamples, n)
    diff = a.nanmean(1) - b.nanmean(1)
    diff = diff[~torch.isnan(diff)]
    if diff.numel() == 0:
        return gain, float("nan"), float("nan")
    tail = (1 - level) / 2
    lo, hi = torch.quantile(diff, torch.tensor([tail, 1 - tail], dtype=diff.dtype)).tolist()
    return gain, lo, hi


def _side(sample: PolicySample, label_names: Sequence[str]) -> dict:
    n = max(1, len(sample.reasons))
    duplicate = sum(1 for r in sample.reasons if r in ("duplicate", "near_duplicate"))
    counts = Counter(sample.labels)
    return {
        "reward": _nanmean(sample.rewards),
        "valid": sum(1 for r in sample.reasons if r is None) / n,
        "duplicate": duplicate / n,
        "labels": {name: counts.get(name, 0) for name in label_names},
        "relevance": float(sample.relevance.mean()) if sample.relevance.numel() else float("nan"),
    }


def _ranked(sample: PolicySample, n: int) -> tuple[list[dict], list[dict]]:
    """The ``n`` highest- and lowest-rewarded valid completions, as ``{"text", "reward"}``."""
    valid = [i for i in range(len(sample.rewards)) if not bool(torch.isnan(sample.rewards[i]))]
    order = sorted(valid, key=lambda i: (-float(sample.rewards[i]), i))
    row = lambda i: {"text": sample.texts[i] if sample.texts else "", "reward": float(sample.rewards[i])}  # noqa: E731
    return [row(i) for i in order[:n]], [row(i) for i in order[::-1][:n]]


def probe_metrics(on: PolicySample, off: PolicySample, *, label_names: Sequence[str], seed: int, shown: int = 5) -> dict:
    """The round's probe metrics (``probe_*`` keys of the result row), with the ``shown`` best and
    worst rewarded completions of the trained policy (``probe_top_on``/``probe_bottom_on``)."""
    gain, lo, hi = bootstrap_gain(on.rewards, off.rewards, seed=seed)
    out: dict = {"probe_prompts": len(on.reasons), "probe_gain": gain, "probe_gain_low": lo, "probe_gain_high": hi}
    for name, sample in (("on", on), ("off", off)):
        for key, value in _side(sample, label_names).items():
            out[f"probe_{key}_{name}"] = value
    out["probe_top_on"], out["probe_bottom_on"] = _ranked(on, shown)
    return out


def measure_policy(completions: list[str], *, parse_fn: Callable, classify: Callable, score_outputs: Callable,
                   annotate: Callable | None, real_embeddings: torch.Tensor) -> PolicySample:
    """Parse, score (one classifier call), label and place one policy's completions."""
    from ..acquisition import knn

    parsed = parse_fn(completions)
    valid = [i for i, (fields, _) in enumerate(parsed) if fields is not None]
    rewards = torch.full((len(completions),), float("nan"))
    labels: list[str] = []
    relevance = torch.zeros(0)
    if valid:
        items = [parsed[i][0] for i in valid]
        outputs = classify(items)
        rewards[torch.as_tensor(valid)] = score_outputs(outputs)
        labels = annotate(items) if annotate is not None else []
        relevance = knn(outputs.embeddings, real_embeddings, 1)[0][:, 0]
    texts = [display_text(fields) if fields is not None else raw for (fields, _), raw in zip(parsed, completions)]
    return PolicySample(rewards, [reason for _, reason in parsed], labels, relevance, texts)
