"""PPO on the acquisition reward (the paper's algorithm), written on Accelerate.

TRL removed its ``PPOTrainer`` (and ``AutoModelForCausalLMWithValueHead``) in 1.13, so this module
implements the RLHF-style PPO loop directly, for a ``peft.PeftModel`` whose LoRA adapter is trained
in place:

1. sample ``num_generations`` completions for each of ``prompts_per_step`` prompts;
2. score them with the reward function (one call per step) — the sequence reward sits on the last
   completion token;
3. per-token KL penalty ``−β (log π_old − log π_ref)`` added to every token's reward, with ``π_ref``
   the pretrained generator (``model.disable_adapter()``: no second model copy);
4. a learned value head (one linear layer on the policy's last hidden state) gives ``V(s_t)``;
   advantages by GAE(γ, λ), returns ``= A + V``;
5. ``ppo_epochs`` passes over the batch minimising the clipped surrogate plus ``vf_coef`` × the
   clipped value loss.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ._common import RecordingReward, add_special_tokens_for, keep_training_mode
from .config import RLConfig

__all__ = [
    "ValueHead",
    "SignalPPOTrainer",
    "run_ppo",
    "masked_mean",
    "masked_whiten",
    "compute_gae",
    "token_level_rewards",
    "clipped_surrogate_loss",
    "clipped_value_loss",
]


# ----------------------------------------------------------------------------- math (pure functions)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (0 when the mask is empty)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x − mean) / std`` over the masked positions (population std); masked-out positions → 0."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask.to(x.dtype)


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over completion tokens.

    ``δ_t = r_t + γ V_{t+1} − V_t`` and ``A_t = δ_t + γλ A_{t+1}``, with ``V`` and ``A`` taken as 0
    past the last valid token, so padding after a completion's end neither receives nor passes on
    value. One vectorised reverse scan over the token axis (batch rows in parallel).

    Args:
        rewards: ``(B, T)`` per-token rewards.
        values: ``(B, T)`` value estimates ``V(s_t)``.
        mask: ``(B, T)`` 1 for completion tokens, 0 for padding (a contiguous prefix per row).
        gamma: discount γ.
        lam: GAE λ.

    Returns:
        ``(advantages, returns)``, both ``(B, T)`` and 0 at padding; ``returns = advantages + values``.
    """
    m = mask.to(values.dtype)
    values = values * m
    rewards = rewards * m
    steps = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_adv = torch.zeros_like(rewards[:, 0])
    for t in range(steps - 1, -1, -1):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = (delta + gamma * lam * next_adv) * m[:, t]
        advantages[:, t] = next_adv
        next_value = values[:, t]
    return advantages, (advantages + values) * m


def token_level_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards ``−β (log π − log π_ref)``, plus the sequence score on each row's last valid token.

    Returns ``(rewards, kl)`` with ``kl = (log π − log π_ref) · mask`` (the k1 estimate per token).
    """
    m = mask.to(logprobs.dtype)
    kl = (logprobs - ref_logprobs) * m
    rewards = -beta * kl
    lengths = mask.long().sum(1)
    last = (lengths - 1).clamp_min(0)
    has_tokens = (lengths > 0).to(rewards.dtype)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += scores.to(rewards.dtype) * has_tokens
    return rewards, kl


def clipped_surrogate_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped policy loss ``mean_t max(−A ρ, −A clip(ρ, 1−ε, 1+ε))``, ``ρ = exp(log π − log π_old)``.

    Returns ``(loss, clip_fraction)``; the fraction counts tokens where the clipped term was chosen.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
    return loss, clip_fraction


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``0.5 · mean_t max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²)``; returns ``(loss, clip_fraction)``."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    err = (values - returns) ** 2
    err_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(err, err_clipped), mask)
    clip_fraction = masked_mean((err_clipped > err).to(values.dtype), mask)
    return loss, clip_fraction


# ----------------------------------------------------------------------------- model pieces


class ValueHead(nn.Module):
    """``V(s_t) = w·h_t + b`` on the policy's last hidden state; zero-initialised so ``V ≡ 0`` at start."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.summary(hidden_states.to(self.summary.weight.dtype)).squeeze(-1)


class SignalPPOTrainer:
    """PPO over a ``peft.PeftModel``'s LoRA weights with a fresh value head, on Accelerate.

    Args:
        model: the generator; its trainable (LoRA) parameters are updated in place.
        tokenizer: its tokenizer; prompts are already rendered strings (BOS added only when missing).
        reward_fn: ``reward_fn(prompts=[...], completions=[...], completion_ids=[...]) -> list[float]``.
        config: :class:`~signal_hf.rl.config.RLConfig` (``beta``, ``ppo_*``, ``gamma``, ``lam``, ...).
        seed: seeds prompt order, mini-batch order and sampling.
        max_new_tokens: completion length cap.
        temperature: sampling temperature (log-probs are computed at the same temperature).
        top_p: nucleus sampling mass.
    """

    def __init__(self, model: Any, tokenizer: Any, reward_fn: Callable[..., list[float]], config: RLConfig, *,
                 seed: int, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0) -> None:
        from accelerate import Accelerator

        self.config = config
        self.tokenizer = tokenizer
        self.reward_fn = reward_fn
        self.seed = seed
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.accelerator = Accelerator()
        hidden = model.get_base_model().config.get_text_config().hidden_size
        value_head = ValueHead(hidden).to(model.device)
        lora_params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [
                {"params": lora_params, "lr": config.learning_rate},
                {"params": list(value_head.parameters()), "lr": config.value_learning_rate},
            ]
        )
        self.model, self.value_head, self.optimizer = self.accelerator.prepare(model, value_head, optimizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
            eos.append(tokenizer.eos_token_id)
        self.eos_ids = eos  # any declared end token (e.g. <|im_end|>) ends a completion
        self._rng = torch.Generator().manual_seed(seed)

    # -- rollout ---------------------------------------------------------------

    @property
    def _policy(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    @torch.no_grad()
    def generate(self, prompts: list[str]) -> dict[str, Any]:
        """Sample one completion per prompt; returns ids, masks and decoded completions."""
        from transformers import GenerationConfig

        device = self.accelerator.device
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left",
                             add_special_tokens=add_special_tokens_for(self.tokenizer, prompts)).to(device)
        gen_config = GenerationConfig(
            do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0,
            max_new_tokens=self.max_new_tokens, pad_token_id=self.pad_id, eos_token_id=self.eos_ids,
        )
        out = self._policy.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                    generation_config=gen_config)
        prompt_len = enc["input_ids"].shape[1]
        completion_ids = out[:, prompt_len:]
        # Completion = tokens up to and including the first end token.
        is_eos = torch.isin(completion_ids, torch.tensor(self.eos_ids, dtype=torch.long, device=device))
        first_eos = torch.where(is_eos.any(1), is_eos.int().argmax(1), completion_ids.shape[1])
        positions = torch.arange(completion_ids.shape[1], device=device)
        completion_mask = (positions.unsqueeze(0) <= first_eos.unsqueeze(1)).long()
        completion_ids = completion_ids.masked_fill(completion_mask == 0, self.pad_id)
        id_lists = [ids[m.bool()].tolist() for ids, m in zip(completion_ids, completion_mask)]
        texts = self.tokenizer.batch_decode(id_lists, skip_special_tokens=True)
        return {
            "prompt_ids": enc["input_ids"],
            "prompt_mask": enc["attention_mask"],
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "completions": texts,
            "completion_id_lists": id_lists,
        }

    def forward(self, batch: dict[str, torch.Tensor], *, with_values: bool = True,
                use_adapter: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token log-probs of the completion tokens (at the sampling temperature) and values ``V(s_t)``."""
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
        attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
        # Left padding: positions count real tokens only, as during generation.
        position_ids = (attention.cumsum(1) - 1).clamp_min(0)
        steps = batch["completion_ids"].shape[1]
        model = self.model if use_adapter else self._policy
        kwargs = dict(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                      output_hidden_states=with_values, logits_to_keep=steps + 1)
        if use_adapter:
            out = model(**kwargs)
        else:
            with model.disable_adapter():
                out = model(**kwargs)
        # logits at position p predict token p+1: the last steps+1 positions, minus the final one.
        logits = out.logits[:, :-1].float() / self.temperature
        logprobs = torch.gather(logits, 2, batch["completion_ids"].unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        values = None
        if with_values:
            hidden = out.hidden_states[-1][:, -steps - 1 : -1]
            values = self.value_head(hidden).float()
        return logprobs, values

    # -- optimisation ----------------------------------------------------------

    def step(self, prompts: list[str]) -> dict[str, float]:
        """One PPO step: rollout of ``prompts`` (already repeated per generation), scoring, ``ppo_epochs`` updates."""
        cfg = self.config
        self.model.eval()  # dropout off: old and new log-probs must be computed by the same function
        batch = self.generate(prompts)
        scores = torch.as_tensor(
            self.reward_fn(prompts=prompts, completions=batch["completions"],
                           completion_ids=batch["completion_id_lists"]),
            dtype=torch.float32, device=self.accelerator.device,
        )
        scores = torch.nan_to_num(scores, nan=cfg.invalid_penalty)
        mask = batch["completion_mask"].float()
        with torch.no_grad():
            old_logprobs, old_values = self.forward(batch, with_values=True)
            ref_logprobs, _ = self.forward(batch, with_values=False, use_adapter=False)
            rewards, kl = token_level_rewards(scores, old_logprobs, ref_logprobs, mask, cfg.beta)
            advantages, returns = compute_gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
            if cfg.whiten_advantages:
                advantages = masked_whiten(advantages, mask)

        n = len(prompts)
        sums: dict[str, float] = {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0,
                                  "value_clip_fraction": 0.0, "approx_kl": 0.0, "grad_norm": 0.0}
        updates = 0
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(n, generator=self._rng).to(mask.device)
            for idx in order.chunk(cfg.ppo_minibatches):
                mb = {k: batch[k][idx] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
                logprobs, values = self.forward(mb, with_values=True)
                m = mask[idx]
                pg_loss, clip_frac = clipped_surrogate_loss(logprobs, old_logprobs[idx], advantages[idx], m,
                                                            cfg.clip_range)
                vf_loss, vf_clip = clipped_value_loss(values, old_values[idx], returns[idx], m, cfg.clip_range_value)
                loss = pg_loss + cfg.vf_coef * vf_loss
                self.optimizer.zero_grad(set_to_none=True)
                self.accelerator.backward(loss)
                grad_norm = self.accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    sums["policy_loss"] += float(pg_loss)
                    sums["value_loss"] += float(vf_loss)
                    sums["clip_fraction"] += float(clip_frac)
                    sums["value_clip_fraction"] += float(vf_clip)
                    sums["approx_kl"] += float(masked_mean(0.5 * (logprobs - old_logprobs[idx]) ** 2, m))
                    sums["grad_norm"] += float(grad_norm)
                updates += 1
        metrics = {k: v / updates for k, v in sums.items()}
        metrics.update(
            kl=float(masked_mean(kl, mask)),  # per-token mean of log π − log π_ref, like TRL's RLOO log
            score_mean=float(scores.mean()),
            mean_completion_length=float(mask.sum(1).mean()),
            value_mean=float(masked_mean(old_values, mask)),
        )
        return metrics

    def train(self, prompts: list[str], callbacks: list | None = None) -> dict[str, float]:
        """``config.steps_per_round`` PPO steps over ``prompts`` (cycled in a seeded order); averaged
        metrics. Each step's metrics go to every callback's ``on_log``, as a Trainer's logs would."""
        from transformers import TrainerControl, TrainerState, set_seed

        set_seed(self.seed)
        cfg = self.config
        order = torch.randperm(len(prompts), generator=self._rng).tolist()
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        cursor = 0
        for _ in range(cfg.steps_per_round):
            if cursor + cfg.prompts_per_step > len(order):  # new pass over the prompts
                order = torch.randperm(len(prompts), generator=self._rng).tolist()
                cursor = 0
            chosen = [prompts[i] for i in order[cursor : cursor + cfg.prompts_per_step]]
            cursor += cfg.prompts_per_step
            repeated = [p for p in chosen for _ in range(cfg.num_generations)]
            history.append(self.step(repeated))
            for cb in callbacks or ():
                cb.on_log(None, TrainerState(global_step=len(history)), TrainerControl(), logs=dict(history[-1]))
        seconds = time.perf_counter() - start
        metrics = {k: sum(h[k] for h in history) / len(history) for k in history[0]}
        metrics["seconds_per_step"] = seconds / len(history)
        metrics["steps"] = float(len(history))
        return metrics


def run_ppo(model: Any, tokenizer: Any, prompts: list[str], reward_fn: Callable, config: RLConfig, *,
            output_dir: str | Path, seed: int, max_new_tokens: int, temperature: float = 1.0,
            top_p: float = 1.0, callbacks: list | None = None) -> dict[str, float]:
    """``config.steps_per_round`` PPO steps; trains ``model``'s LoRA weights in place. Writes nothing to
    ``output_dir`` (kept for symmetry with the TRL trainers; the round store saves the adapter).
    ``callbacks``' ``on_log`` receives each step's metrics."""
    recorder = RecordingReward(reward_fn)
    with keep_training_mode(model):
        trainer = SignalPPOTrainer(model, tokenizer, recorder, config, seed=seed, max_new_tokens=max_new_tokens,
                                   temperature=temperature, top_p=top_p)
        metrics = trainer.train(prompts, callbacks)
    metrics.update(recorder.summary())
    for key in ("reward_mean", "reward_std"):
        metrics.setdefault(key, math.nan)
    return metrics
