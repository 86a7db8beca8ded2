"""Configuration of the self-informed generator optimisation (recipe section ``rl``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..checks import check_choices, in_unit_interval, non_negative, positive
from ..errors import ConfigError

__all__ = ["RLConfig", "GROUP_BASELINES"]

#: Algorithms whose baseline is the other completions of the same prompt (need >= 2 per prompt).
GROUP_BASELINES = ("grpo", "rloo")


@dataclass
class RLConfig:
    """RL fine-tuning of the generator on the acquisition reward.

    Every value is checked when the section is built (``__post_init__``), the PPO-only ones too
    whatever the algorithm, so a bad value is refused when the recipe is read, not after round 1.

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
            The group baselines of GRPO and RLOO need at least 2; PPO (a learned value baseline)
            works from 1.
        prompts_per_step: prompts per optimisation step.
        reward_normalization: normalise rewards per batch (``batch``: z-score of the valid completions'
            scores) or not (``none``).
        invalid_penalty: reward given to dropped (empty/over-long/duplicate) generations.
        max_grad_norm: gradient-norm clipping of every optimisation step; must be > 0.
        probe_prompts: the RL effect, measured every round of a generative method: this many fixed
            probe prompts (the same prompts and sampling seed every round) are sampled with the
            adapter on and off and scored with the reward's SIGnAL score under the round's retrained
            classifier (``probe_*`` metrics: both mean rewards, the gain with a paired 95 % Student-t
            interval on its jackknife standard error over prompts, valid/duplicate shares, the
            oracle's labels, distance to the nearest real item, the per-prompt rewards). ``0`` turns
            it off. A frozen generator is sampled once (on = off).
        trl_args: extra keyword arguments for :class:`trl.GRPOConfig` / :class:`trl.RLOOConfig`
            (e.g. ``{"loss_type": "grpo", "epsilon": 0.2}``); they override the values derived from
            the fields above. Ignored by PPO. ``{"use_vllm": true, "vllm_mode": "colocate"}`` is
            TRL's vLLM generation for GPU users; it needs the vllm package, which today's pins rule
            out (vllm 0.33.0 requires transformers < 5.21 and torch 2.14.0: docs/benchmarks.md), so
            it is refused while vllm is not importable.

    PPO only (``algorithm: ppo``):

    Attributes:
        ppo_epochs: passes of clipped-surrogate optimisation over each sampled batch.
        ppo_minibatches: mini-batches per PPO epoch (the batch of completions is split evenly);
            each mini-batch is one optimizer step. At most ``prompts_per_step × num_generations``.
        clip_range: ε of the clipped surrogate, the ratio ``π/π_old`` is clipped to ``[1−ε, 1+ε]``.
        clip_range_value: clipping of the value prediction around the old value (clipped value loss).
        vf_coef: weight of the value loss in ``loss = policy_loss + vf_coef · value_loss``.
        gamma: discount γ of GAE over completion tokens (1.0 = undiscounted, as in RLHF); in [0, 1].
        lam: GAE λ (bias/variance trade-off of the advantage estimate); in [0, 1].
        value_learning_rate: learning rate of the freshly initialised value head (it starts from
            scratch each round, so it needs a larger step than the LoRA parameters).
        whiten_advantages: standardise the advantages over the valid tokens of the batch.
    """

    enabled: bool = False
    algorithm: Literal["grpo", "rloo", "ppo"] = "grpo"
    beta: float = 0.04
    learning_rate: float = 1e-5
    steps_per_round: int = 1
    num_generations: int = 4
    prompts_per_step: int = 2
    reward_normalization: Literal["batch", "none"] = "batch"
    invalid_penalty: float = -1.0
    max_grad_norm: float = 1.0
    probe_prompts: int = 32
    trl_args: dict[str, Any] = field(default_factory=dict)
    ppo_epochs: int = 4
    ppo_minibatches: int = 1
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    value_learning_rate: float = 1e-4
    whiten_advantages: bool = True

    def __post_init__(self) -> None:
        check_choices("rl", self)  # algorithm, reward_normalization
        # The PPO-only fields are checked whatever the algorithm: the defaults are valid, so a bad
        # value is a typo, better refused now than when the recipe is switched to ppo.
        for name, fix in (("beta", "the KL penalty keeps the generator near the pretrained policy, e.g. 0.04"),
                          ("learning_rate", "e.g. 1e-5"), ("max_grad_norm", "e.g. 1.0"), ("steps_per_round", "e.g. 1"),
                          ("prompts_per_step", "e.g. 2"), ("ppo_epochs", "e.g. 4"), ("ppo_minibatches", "e.g. 1"),
                          ("clip_range", "e.g. 0.2"), ("clip_range_value", "e.g. 0.2"), ("value_learning_rate", "e.g. 1e-4")):
            positive(f"rl.{name}", getattr(self, name), fix)
        non_negative("rl.vf_coef", self.vf_coef, "e.g. 0.1")
        non_negative("rl.probe_prompts", self.probe_prompts, "e.g. 32, or 0 to measure nothing")
        in_unit_interval("rl.gamma", self.gamma, "e.g. 1.0 (undiscounted)", low_open=False)
        in_unit_interval("rl.lam", self.lam, "e.g. 0.95", low_open=False)
        # One rule for every algorithm: a group baseline (grpo, rloo) compares completions of the
        # same prompt, so it needs two of them; PPO's baseline is its value head.
        fewest = 2 if self.algorithm in GROUP_BASELINES else 1
        if self.num_generations < fewest:
            raise ConfigError("rl.num_generations", f"must be >= {fewest} for {self.algorithm}, got {self.num_generations}",
                              "the group baselines of grpo and rloo need at least 2 completions per prompt (ppo: 1)")
        if self.trl_args.get("use_vllm"):
            import importlib.util

            if importlib.util.find_spec("vllm") is None:
                raise ConfigError("rl.trl_args.use_vllm", "needs the vllm package (CUDA), which is not installed",
                                  "drop use_vllm, or on a GPU machine install vllm==0.33.0 with transformers==5.20.2 and torch==2.14.0 (docs/benchmarks.md, vLLM)")
        batch = self.prompts_per_step * self.num_generations
        if self.ppo_minibatches > batch:
            raise ConfigError("rl.ppo_minibatches", f"{self.ppo_minibatches} mini-batches of a batch of {batch} completions",
                              "use at most prompts_per_step × num_generations mini-batches")
