"""The self-informed reward: the SIGnAL acquisition score of a generated text under the current classifier."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch

from ..acquisition.config import AcquisitionConfig
from ..errors import StrategyError
from ..types import AcquisitionState, PoolOutputs
from .config import RLConfig

__all__ = ["AcquisitionReward"]

ScoreFn = Callable[[list[dict]], PoolOutputs]
#: Parses a batch of completions: per completion ``(fields, None)`` or ``(None, drop reason)``;
#: e.g. ``Generator.completion_parser(...)``, which also drops duplicates of S, R, L and of each other.
ParseFn = Callable[[list[str]], "list[tuple[dict | None, str | None]]"]


class AcquisitionReward:
    """TRL ``reward_funcs``-compatible reward: ``__call__(prompts, completions, **kw) -> list[float]``.

    ``parse_fn`` parses the call's completions together: each becomes the classifier's input fields
    (``{"text": ...}`` or ``{"text": ..., "text_pair": ...}``) or is dropped with a reason (malformed,
    too long, a duplicate of S, R, L or of another completion — whatever the acquisition would never
    see). All valid completions of one call are scored together by ONE ``score_fn`` call (the
    retrained classifier's probabilities and L2-normalised embeddings), then by the ``signal``
    strategy itself under ``acquisition`` (its ``k``, ``eps``, ``distance``, ``neighbours``,
    ``knn_batch_size``, ``use_faiss``) with ``reference`` (the labeled set's outputs) as L: the reward
    is the SIGnAL score the acquisition would give the text. With ``neighbours: all`` the other valid
    completions of the call are the candidates next to it.

    Normalisation (``rl.reward_normalization: batch``): the valid completions' scores are z-scored within the
    call, ``(s − mean) / std`` (population std). SIGnAL scores are unbounded and their scale changes as
    the classifier is retrained, so this keeps the RL step size comparable across rounds. With fewer
    than two valid completions, or all scores equal, the valid rewards are only centred (all 0).
    Invalid completions receive ``rl.invalid_penalty`` *after* normalisation, so on the z-scale the default
    −1 means "one standard deviation worse than an average valid text"; they never enter the mean/std.
    With ``none`` rewards are the raw scores and invalid ones get ``invalid_penalty``
    as is (pick a value on the raw scale then).

    Attributes:
        last_stats: statistics of the latest call: ``total``, ``valid``, ``valid_fraction``,
            ``raw_reward_mean``/``raw_reward_std`` (raw SIGnAL scores of the valid completions, NaN
            when none is valid), ``reward_mean`` (returned rewards, invalid included) and
            ``drop_reasons`` (reason → count).
        num_calls: how many times the reward was computed.
        num_score_calls: how many times ``score_fn`` was called (at most once per reward call).
    """

    __name__ = "signal_acquisition"  # TRL names its reward metrics after this

    def __init__(
        self,
        score_fn: ScoreFn,
        reference: PoolOutputs,
        *,
        parse_fn: ParseFn,
        acquisition: AcquisitionConfig | None = None,
        rl: RLConfig | None = None,
    ) -> None:
        from ..acquisition import get_strategy  # lazily: keeps signal_hf.rl importable on its own

        if not isinstance(reference, PoolOutputs) or len(reference) == 0:
            raise StrategyError(
                "reference: the SIGnAL reward needs the labeled set's classifier outputs (at least one row) "
                "(fix: acquire/label some examples before optimising the generator)"
            )
        if not callable(score_fn) or not callable(parse_fn):
            raise TypeError("score_fn and parse_fn must be callables")
        rl = rl if rl is not None else RLConfig()
        self.score_fn = score_fn
        self.reference = reference
        self.strategy = get_strategy("signal", acquisition)  # the config sections checked their values
        self.parse_fn = parse_fn
        self.invalid_penalty = float(rl.invalid_penalty)
        self.normalization = rl.reward_normalization
        self.last_stats: dict[str, Any] = {}
        self.num_calls = 0
        self.num_score_calls = 0

    def score(self, items: list[dict]) -> torch.Tensor:
        """Raw SIGnAL scores of already-parsed classifier inputs (one ``score_fn`` call)."""
        return self.score_outputs(self.classify(items))

    def classify(self, items: list[dict]) -> PoolOutputs:
        """The classifier's outputs for parsed inputs (one ``score_fn`` call, checked)."""
        outputs = self.score_fn(items)
        self.num_score_calls += 1
        if not isinstance(outputs, PoolOutputs) or len(outputs) != len(items):
            got = len(outputs) if isinstance(outputs, PoolOutputs) else type(outputs).__name__
            raise StrategyError(
                f"score_fn: must return PoolOutputs with one row per item ({len(items)}), got {got} "
                "(fix: return the classifier's probs/embeddings for exactly the given texts, in order)"
            )
        return outputs

    def score_outputs(self, outputs: PoolOutputs) -> torch.Tensor:
        """The SIGnAL score the acquisition would give texts with these outputs."""
        return self.strategy.scores(AcquisitionState(unlabeled=outputs, labeled=self.reference)).float()

    def __call__(self, prompts: list | None = None, completions: list | None = None, **kwargs: Any) -> list[float]:
        if completions is None:
            raise TypeError("AcquisitionReward needs the keyword argument completions=[...]")
        texts = [_completion_text(c) for c in completions]
        parsed = self.parse_fn(texts)
        if len(parsed) != len(texts):
            raise StrategyError(f"parse_fn: returned {len(parsed)} results for {len(texts)} completions (fix: one (fields, reason) per completion)")
        valid_idx = [i for i, (fields, _) in enumerate(parsed) if fields is not None]
        reasons = Counter(str(reason) for fields, reason in parsed if fields is None)

        rewards = torch.full((len(texts),), self.invalid_penalty, dtype=torch.float32)
        raw = torch.empty(0)
        if valid_idx:
            raw = self.score([parsed[i][0] for i in valid_idx])
            shaped = raw
            if self.normalization == "batch":
                shaped = raw - raw.mean()
                std = raw.std(correction=0) if raw.numel() > 1 else raw.new_zeros(())
                if float(std) > 1e-8:  # all-equal scores carry no preference: leave them centred at 0
                    shaped = shaped / std
            rewards[torch.as_tensor(valid_idx, dtype=torch.long)] = shaped

        self.num_calls += 1
        nan = float("nan")
        self.last_stats = {
            "total": len(texts),
            "valid": len(valid_idx),
            "valid_fraction": len(valid_idx) / max(len(texts), 1),
            "raw_reward_mean": float(raw.mean()) if raw.numel() else nan,
            "raw_reward_std": float(raw.std(correction=0)) if raw.numel() else nan,
            "reward_mean": float(rewards.mean()) if rewards.numel() else nan,
            "drop_reasons": dict(reasons),
        }
        return rewards.tolist()


def _completion_text(completion: Any) -> str:
    """TRL passes strings for plain-text prompts and message lists for conversational ones."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"completions: expected strings or message lists, got {type(completion).__name__}")
