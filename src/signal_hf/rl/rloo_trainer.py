"""RLOO on the acquisition reward: a thin subclass of :class:`trl.RLOOTrainer` (TRL 1.16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from datasets import Dataset
from trl import RLOOConfig, RLOOTrainer

from ._common import (
    PretrainedReferenceMixin,
    RecordingReward,
    keep_training_mode,
    summarize_trl_logs,
    timed,
    trl_common_args,
)
from .config import RLConfig

__all__ = ["SignalRLOOTrainer", "make_rloo_config", "run_rloo"]


class SignalRLOOTrainer(PretrainedReferenceMixin, RLOOTrainer):
    """:class:`trl.RLOOTrainer` whose KL reference is the adapter-disabled pretrained generator.

    REINFORCE with a leave-one-out baseline: each completion's advantage is its reward minus the mean
    reward of the other ``num_generations − 1`` completions of the same prompt. The KL enters the
    reward: ``r − beta · Σ_t (log π − log π_ref)`` per sequence (as in Ahmadian et al., 2024).
    """


def make_rloo_config(config: RLConfig, *, output_dir: str | Path, seed: int, max_new_tokens: int,
                     temperature: float = 1.0, top_p: float = 1.0) -> RLOOConfig:
    """The :class:`trl.RLOOConfig` of one round (``config.trl_args`` override the derived values)."""
    args = trl_common_args(config, output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p)
    args.update(config.trl_args)
    return RLOOConfig(**args)


def run_rloo(model: Any, tokenizer: Any, prompts: list[str], reward_fn: Callable, config: RLConfig, *,
             output_dir: str | Path, seed: int, max_new_tokens: int, temperature: float = 1.0,
             top_p: float = 1.0) -> dict[str, float]:
    """``config.steps_per_round`` RLOO steps on ``prompts``; trains ``model``'s LoRA weights in place."""
    recorder = RecordingReward(reward_fn)
    args = make_rloo_config(config, output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p)
    with keep_training_mode(model):
        trainer = SignalRLOOTrainer(
            model=model,
            reward_funcs=recorder,
            args=args,
            train_dataset=Dataset.from_dict({"prompt": list(prompts)}),
            processing_class=tokenizer,
        )
        _, seconds = timed(trainer.train)
    metrics = summarize_trl_logs(trainer.state.log_history)
    metrics.update(recorder.summary())
    metrics["seconds_per_step"] = seconds / max(trainer.state.global_step, 1)
    metrics["steps"] = float(trainer.state.global_step)
    return metrics
