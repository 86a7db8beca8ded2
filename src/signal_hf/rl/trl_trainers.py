"""GRPO and RLOO on the acquisition reward: thin subclasses of TRL's trainers (TRL 1.16).

Both algorithms run through the same code, :func:`run_trl`; they differ only in the TRL trainer and
config classes :data:`TRL_ALGORITHMS` names (and in what those classes do with the same arguments).
GRPO can take its rollouts from the generator's own sampling loop (TRL's ``rollout_func``); RLOO's
trainer has no such hook and always samples with ``generate``.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any, Callable

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from ._common import (
    PretrainedReferenceMixin,
    RecordingReward,
    Sampler,
    keep_training_mode,
    summarize_trl_logs,
    timed,
    trl_common_args,
)
from .config import RLConfig

__all__ = ["Sampler", "SignalGRPOTrainer", "SignalRLOOTrainer", "TRL_ALGORITHMS", "make_trl_config", "rollout_func", "run_trl"]


class SignalGRPOTrainer(PretrainedReferenceMixin, GRPOTrainer):
    """:class:`trl.GRPOTrainer` whose KL reference is the adapter-disabled pretrained generator.

    Group-relative advantages ``(r − mean_group) / std_group`` over ``num_generations`` completions of
    the same prompt; the loss adds ``beta · KL(π ‖ π_ref)`` per token (Schulman's k3 estimator).
    """


class SignalRLOOTrainer(PretrainedReferenceMixin, RLOOTrainer):
    """:class:`trl.RLOOTrainer` whose KL reference is the adapter-disabled pretrained generator.

    REINFORCE with a leave-one-out baseline: each completion's advantage is its reward minus the mean
    reward of the other ``num_generations − 1`` completions of the same prompt. The KL enters the
    reward: ``r − beta · Σ_t (log π − log π_ref)`` per sequence (as in Ahmadian et al., 2024).
    """


def rollout_func(sampler: Sampler, seed: int) -> Callable[[list[str], Any], dict[str, Any]]:
    """TRL's ``rollout_func`` around ``sampler``: each call (one per generation batch) samples with
    its own seed, derived from ``seed``, the call's index and the process rank, so a step's rollouts
    are reproducible and ranks draw different ones. TRL passes every prompt as often as it wants
    completions for it (``num_generations`` times). No sampling log-probs are returned: TRL then
    scores the completions with the policy itself, as it does after ``generate``."""
    calls = count()

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        call_seed = (seed + 7919 * (next(calls) + 1) + 104729 * trainer.accelerator.process_index) % 2**63
        prompt_ids, completion_ids = sampler(list(prompts), call_seed)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


#: ``rl.algorithm`` → (trainer class, TRL config class) for the algorithms TRL implements.
TRL_ALGORITHMS: dict[str, tuple[type, type]] = {
    "grpo": (SignalGRPOTrainer, GRPOConfig),
    "rloo": (SignalRLOOTrainer, RLOOConfig),
}


def make_trl_config(config: RLConfig, *, output_dir: str | Path, seed: int, max_new_tokens: int,
                    temperature: float = 1.0, top_p: float = 1.0) -> Any:
    """The :class:`trl.GRPOConfig` / :class:`trl.RLOOConfig` of one round (``config.algorithm`` picks
    which); ``config.trl_args`` override the derived values."""
    _, config_cls = TRL_ALGORITHMS[config.algorithm]
    args = trl_common_args(config, output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p)
    args.update(config.trl_args)
    return config_cls(**args)


def run_trl(model: Any, tokenizer: Any, prompts: list[str], reward_fn: Callable, config: RLConfig, *,
            output_dir: str | Path, seed: int, max_new_tokens: int, temperature: float = 1.0,
            top_p: float = 1.0, callbacks: list | None = None, sampler: Sampler | None = None) -> dict[str, float]:
    """``config.steps_per_round`` GRPO or RLOO steps on ``prompts``; trains ``model``'s LoRA weights in
    place. ``callbacks`` are passed to the TRL trainer; ``sampler`` (GRPO only) writes the rollouts
    instead of TRL's ``generate``."""
    trainer_cls, _ = TRL_ALGORITHMS[config.algorithm]
    extra = {"rollout_func": rollout_func(sampler, seed)} if sampler is not None and config.algorithm == "grpo" else {}
    recorder = RecordingReward(reward_fn)
    args = make_trl_config(config, output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p)
    with keep_training_mode(model):
        trainer = trainer_cls(
            model=model,
            reward_funcs=recorder,
            args=args,
            train_dataset=Dataset.from_dict({"prompt": list(prompts)}),
            processing_class=tokenizer,
            callbacks=callbacks,
            **extra,
        )
        _, seconds = timed(trainer.train)
    metrics = summarize_trl_logs(trainer.state.log_history)
    metrics.update(recorder.summary())
    metrics["seconds_per_step"] = seconds / max(trainer.state.global_step, 1)
    metrics["steps"] = float(trainer.state.global_step)
    return metrics
