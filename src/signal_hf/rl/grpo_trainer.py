"""GRPO on the acquisition reward: a thin subclass of :class:`trl.GRPOTrainer` (TRL 1.16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from ._common import (
    PretrainedReferenceMixin,
    RecordingReward,
    keep_training_mode,
    summarize_trl_logs,
    timed,
    trl_common_args,
)
from .config import RLConfig

__all__ = ["SignalGRPOTrainer", "make_grpo_config", "run_grpo"]


class SignalGRPOTrainer(PretrainedReferenceMixin, GRPOTrainer):
    """:class:`trl.GRPOTrainer` whose KL reference is the adapter-disabled pretrained generator.

    Group-relative advantages ``(r − mean_group) / std_group`` over ``num_generations`` completions of
    the same prompt; the loss adds ``beta · KL(π ‖ π_ref)`` per token (Schulman's k3 estimator).
    """


def make_grpo_config(config: RLConfig, *, output_dir: str | Path, seed: int, max_new_tokens: int,
                     temperature: float = 1.0, top_p: float = 1.0) -> GRPOConfig:
    """The :class:`trl.GRPOConfig` of one round (``config.trl_args`` override the derived values)."""
    args = trl_common_args(config, output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p)
    args.update(config.trl_args)
    return GRPOConfig(**args)


def run_grpo(model: Any, tokenizer: Any, prompts: list[str], reward_fn: Callable, config: RLConfig, *,
             output_dir: str | Path, seed: int, max_new_tokens: int, temperature: float = 1.0,
             top_p: float = 1.0) -> dict[str, float]:
    """``config.steps_per_round`` GRPO steps on ``prompts``; trains ``model``'s LoRA weights in place."""
    recorder = RecordingReward(reward_fn)
    args = make_grpo_config(config, output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p)
    with keep_training_mode(model):
        trainer = SignalGRPOTrainer(
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
