"""Configuration of the self-informed generator optimisation (recipe section ``rl``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RLConfig:
    """RL fine-tuning of the generator on the acquisition reward.

    Common to all algorithms:

    Attributes:
        enabled: fine-tune the generator after each round.
        algorithm: ``grpo`` or ``rloo`` (TRL trainers) or ``ppo`` (clipped surrogate + value head + GAE).
        beta: KL penalty coefficient to the pretrained (adapter-off) policy; must be > 0. GRPO adds
            ``beta · KL`` to the per-token loss; RLOO and PPO subtract ``beta · (log π − log π_ref)`` from
            the reward (RLOO per sequence, PPO per token).
        learning_rate: optimizer (AdamW) learning rate of the LoRA parameters.
        steps_per_round: optimisation steps per active-learning round; each step samples
            ``prompts_per_step × num_generations`` fresh completions.
        num_generations: completions per prompt (group size for GRPO/RLOO; PPO samples as many).
        prompts_per_step: prompts per optimisation step.
        reward_normalization: normalise rewards per batch (``batch``: z-score of the valid completions'
            scores) or not (``none``).
        invalid_penalty: reward given to dropped (empty/over-long/duplicate) generations.
        max_grad_norm: gradient-norm clipping of every optimisation step.
        trl_args: extra keyword arguments for :class:`trl.GRPOConfig` / :class:`trl.RLOOConfig`
            (e.g. ``{"loss_type": "grpo", "epsilon": 0.2}``); they override the values derived from
            the fields above. Ignored by PPO.

    PPO only (``algorithm: ppo``):

    Attributes:
        ppo_epochs: passes of clipped-surrogate optimisation over each sampled batch.
        ppo_minibatches: mini-batches per PPO epoch (the batch of completions is split evenly);
            each mini-batch is one optimizer step.
        clip_range: ε of the clipped surrogate, the ratio ``π/π_old`` is clipped to ``[1−ε, 1+ε]``.
        clip_range_value: clipping of the value prediction around the old value (clipped value loss).
        vf_coef: weight of the value loss in ``loss = policy_loss + vf_coef · value_loss``.
        gamma: discount γ of GAE over completion tokens (1.0 = undiscounted, as in RLHF).
        lam: GAE λ (bias/variance trade-off of the advantage estimate).
        whiten_advantages: standardise the advantages over the valid tokens of the batch.
        value_learning_rate: learning rate of the freshly initialised value head (it starts from
            scratch each round, so it needs a larger step than the LoRA parameters).
    """

    enabled: bool = False
    algorithm: str = "grpo"
    beta: float = 0.04
    learning_rate: float = 1e-5
    steps_per_round: int = 1
    num_generations: int = 4
    prompts_per_step: int = 2
    reward_normalization: str = "batch"
    invalid_penalty: float = -1.0
    max_grad_norm: float = 1.0
    trl_args: dict[str, Any] = field(default_factory=dict)
    ppo_epochs: int = 4
    ppo_minibatches: int = 1
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    whiten_advantages: bool = True
    value_learning_rate: float = 1e-4
