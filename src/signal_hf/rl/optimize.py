"""One round of self-informed generator optimisation: dispatch to GRPO, RLOO or PPO."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from ._common import Sampler, validate_inputs
from .config import RLConfig

__all__ = ["optimize_generator"]


def optimize_generator(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    reward_fn: Callable[..., list[float]],
    config: RLConfig,
    *,
    output_dir: str | Path,
    seed: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    callbacks: list | None = None,
    sampler: Sampler | None = None,
) -> dict[str, float]:
    """Fine-tune the generator's LoRA adapter on ``reward_fn`` for ``config.steps_per_round`` steps.

    Args:
        model: a ``peft.PeftModel`` causal LM whose ``default`` adapter is trainable; its LoRA weights
            are updated in place (the base weights never change) — the caller saves the adapter.
        tokenizer: the generator's tokenizer.
        prompts: already-rendered prompt strings (``Generator.build_prompts``); each step draws
            ``config.prompts_per_step`` of them and samples ``config.num_generations`` completions each.
        reward_fn: TRL-style reward ``reward_fn(prompts=, completions=, **kw) -> list[float]``, e.g.
            :class:`~signal_hf.rl.rewards.AcquisitionReward`.
        config: the ``rl`` recipe section (its values are checked when it is built); ``algorithm`` picks
            ``grpo`` / ``rloo`` (TRL trainers) or ``ppo``.
        output_dir: scratch folder TRL requires; nothing (no checkpoint) is saved there.
        seed: seeds prompt order and sampling.
        max_new_tokens: completion length cap.
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        callbacks: :class:`transformers.TrainerCallback` objects for the trainer (GRPO/RLOO); PPO,
            which is not a Trainer, calls their ``on_log`` with each step's metrics (e.g.
            :class:`~signal_hf.tracking.TrackerCallback`, for the step curves).
        sampler: ``(prompts, seed) -> (prompt ids, completion ids)`` that writes GRPO's rollouts
            (``Generator.rollout_sampler``: the generator's own sampling loop) instead of TRL's
            ``generate``; RLOO and PPO ignore it.

    The KL penalty (``config.beta > 0``) is to the pretrained generator: log-probs of the reference
    are computed with the adapter disabled, so no second model copy is loaded.

    Returns:
        Metrics averaged over the steps: ``reward_mean``, ``reward_std`` (of the rewards the reward
        function returned), ``kl`` (per-token mean of the KL estimate to the reference),
        ``policy_loss`` (TRL's training loss for GRPO/RLOO; the clipped surrogate for PPO),
        ``seconds_per_step``, ``steps`` and, when available, ``valid_fraction``, ``raw_reward_mean``,
        ``entropy``, ``grad_norm``, ``clip_fraction``, ``mean_completion_length``, and for PPO
        ``value_loss``, ``approx_kl``, ``value_mean``.
    """
    validate_inputs(model, tokenizer, prompts, config, max_new_tokens)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = dict(output_dir=output_dir, seed=seed, max_new_tokens=max_new_tokens,
                                  temperature=temperature, top_p=top_p, callbacks=callbacks)
    if config.algorithm == "ppo":
        from .ppo_trainer import run_ppo as run
    else:  # grpo / rloo (RLConfig refuses any other name)
        from .trl_trainers import run_trl as run

        kwargs["sampler"] = sampler
    metrics = run(model, tokenizer, list(prompts), reward_fn, config, **kwargs)
    for key in ("reward_mean", "reward_std", "kl", "policy_loss"):
        metrics.setdefault(key, math.nan)
    return metrics
