"""Pieces shared by the GRPO, RLOO and PPO generator optimisers."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..errors import ConfigError, GenerationError
from .config import RLConfig

#: ``(prompts, seed) -> (prompt token ids, completion token ids)``: one completion per prompt, e.g.
#: ``Generator.rollout_sampler()``; GRPO takes its rollouts from it.
Sampler = Callable[[list[str], int], tuple[list[list[int]], list[list[int]]]]

# TRL's log keys → the metric names optimize_generator returns (same names for every algorithm).
_TRL_LOG_KEYS = {
    "kl": "kl",
    "loss": "policy_loss",
    "entropy": "entropy",
    "grad_norm": "grad_norm",
    "completions/mean_length": "mean_completion_length",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "clip_ratio/region_mean": "clip_fraction",
}


def validate_inputs(model: Any, tokenizer: Any, prompts: list[str], config: RLConfig, max_new_tokens: int) -> None:
    """Raise a signal_hf error naming the input when the RL inputs of one round cannot work.

    Only what needs the runtime inputs: the ``rl`` values themselves are checked when
    :class:`~signal_hf.rl.config.RLConfig` is built.
    """
    if max_new_tokens < 1:
        raise ConfigError("generator.max_new_tokens", f"must be >= 1, got {max_new_tokens}", "e.g. 40")
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ConfigError("prompts", "need a non-empty list of non-empty prompt strings", "build them with Generator.build_prompts")
    if len(prompts) < config.prompts_per_step:
        raise ConfigError("rl.prompts_per_step", f"{config.prompts_per_step} prompts per step but only {len(prompts)} prompts given",
                          "pass at least prompts_per_step prompts or lower rl.prompts_per_step")
    peft_config = getattr(model, "peft_config", None)
    if not isinstance(peft_config, dict) or not hasattr(model, "disable_adapter"):
        raise GenerationError("model: RL trains a LoRA adapter in place and needs a peft.PeftModel "
                              "(fix: wrap the causal LM with peft.get_peft_model)")
    if model.active_adapter != "default":
        # TRL copies/looks up the adapter called "default"; another name would train nothing
        raise GenerationError(f"model: the active adapter is {model.active_adapter!r} (fix: train the adapter named 'default')")
    if "ref" in peft_config:
        raise GenerationError("model: already has an adapter named 'ref' (fix: delete it; the KL reference is the adapter-off base model)")
    if not any(p.requires_grad for p in model.parameters()):
        raise GenerationError("model: has no trainable parameters (fix: load the adapter with is_trainable=True)")
    if tokenizer is None or (tokenizer.pad_token_id is None and tokenizer.eos_token_id is None):
        raise GenerationError("tokenizer: needs a pad or eos token to batch prompts")


class RecordingReward:
    """Wraps the reward callable to keep every returned reward (and the reward's ``last_stats``).

    The metrics optimize_generator returns are computed from these records, so they mean the same for
    GRPO, RLOO and PPO (TRL's own ``reward`` log is after its KL shaping for RLOO).
    """

    def __init__(self, reward_fn: Callable[..., list[float]]):
        self.reward_fn = reward_fn
        self.__name__ = getattr(reward_fn, "__name__", type(reward_fn).__name__)
        self.rewards: list[torch.Tensor] = []
        self.stats: list[dict] = []

    def __call__(self, prompts: list | None = None, completions: list | None = None, **kwargs: Any) -> list[float]:
        out = self.reward_fn(prompts=prompts, completions=completions, **kwargs)
        values = torch.as_tensor([math.nan if r is None else float(r) for r in out], dtype=torch.float32)
        if len(values) != len(completions or []):
            raise GenerationError(f"reward_fn: returned {len(values)} rewards for {len(completions or [])} completions")
        self.rewards.append(values)
        stats = getattr(self.reward_fn, "last_stats", None)
        if isinstance(stats, dict) and stats:
            self.stats.append(dict(stats))
        return values.tolist()

    def summary(self) -> dict[str, float]:
        """``reward_mean`` / ``reward_std`` over all recorded completions, plus validity statistics."""
        out: dict[str, float] = {}
        if self.rewards:
            allr = torch.cat(self.rewards)
            allr = allr[~torch.isnan(allr)]
            out["reward_mean"] = float(allr.mean()) if allr.numel() else math.nan
            out["reward_std"] = float(allr.std(correction=0)) if allr.numel() else math.nan
            out["num_completions"] = float(sum(len(r) for r in self.rewards))
        if self.stats:
            total = sum(s.get("total", 0) for s in self.stats)
            valid = sum(s.get("valid", 0) for s in self.stats)
            out["valid_fraction"] = valid / total if total else math.nan
            raw = [s["raw_reward_mean"] for s in self.stats if not math.isnan(s.get("raw_reward_mean", math.nan))]
            out["raw_reward_mean"] = sum(raw) / len(raw) if raw else math.nan
        return out


def summarize_trl_logs(log_history: list[dict]) -> dict[str, float]:
    """Average TRL's per-step logs (``logging_steps=1``) into optimize_generator's metric names."""
    sums: dict[str, list[float]] = {}
    for entry in log_history:
        if "train_runtime" in entry:  # the end-of-training summary, not a step
            continue
        for key, name in _TRL_LOG_KEYS.items():
            value = entry.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                sums.setdefault(name, []).append(float(value))
    return {name: sum(v) / len(v) for name, v in sums.items()}


def _per_device_batch(config: RLConfig) -> int:
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    total = config.prompts_per_step * config.num_generations
    if total % world:
        raise ConfigError(
            "rl.prompts_per_step",
            f"{config.prompts_per_step} prompts × {config.num_generations} generations cannot be split over {world} processes",
            f"make prompts_per_step × num_generations a multiple of {world}",
        )
    return total // world


def trl_common_args(config: RLConfig, *, output_dir: str | Path, seed: int, max_new_tokens: int,
                    temperature: float, top_p: float) -> dict[str, Any]:
    """GRPOConfig/RLOOConfig arguments shared by both: one generation batch per step, quiet, no saving."""
    return dict(
        output_dir=str(output_dir),
        max_steps=config.steps_per_round,
        # One optimizer step per generation batch of prompts_per_step × num_generations completions,
        # split across data-parallel ranks.
        per_device_train_batch_size=_per_device_batch(config),
        gradient_accumulation_steps=1,
        num_generations=config.num_generations,
        num_iterations=1,
        max_completion_length=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        beta=config.beta,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        max_grad_norm=config.max_grad_norm,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        push_to_hub=False,
        disable_tqdm=True,
        log_completions=False,
        # TRL defaults to bf16 autocast and gradient checkpointing; neither helps a small LoRA run on CPU
        # (on a GPU, pass rl.trl_args: {bf16: true}).
        bf16=False,
        fp16=False,
        activation_checkpointing=False,  # transformers 5 name of gradient_checkpointing
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        remove_unused_columns=False,
        # Without CUDA, torchrun-launched ranks only form a DDP group when the trainer runs "on CPU";
        # otherwise every rank would train its own, diverging adapter.
        use_cpu=not torch.cuda.is_available(),
    )


def add_special_tokens_for(tokenizer: Any, prompts: list[str]) -> bool:
    """Whether tokenising the rendered prompts should add the tokenizer's special tokens.

    Chat-rendered prompts may already start with the BOS token (the template writes it); adding it
    again would shift the model off its training distribution. Plain prompts get the tokenizer's
    usual specials (e.g. Gemma's ``<bos>``), as the generator itself does.
    """
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and prompts and all(p.startswith(bos) for p in prompts))


class PretrainedReferenceMixin:
    """Makes a TRL trainer's KL reference the *pretrained* policy (adapter disabled).

    TRL 1.16 copies an existing PEFT adapter into a frozen ``ref`` adapter when it is given a
    ``PeftModel`` with ``beta > 0``, so the KL would be to the adapter as it was at the start of the
    round. SIGnAL's KL is to the pretrained generator, so the copy is deleted right after TRL's
    constructor; TRL then computes reference log-probs with ``model.disable_adapter()`` (see
    ``use_adapter(model, None)`` in its ``_generate_and_score_completions``). No second model is loaded.
    """

    def __init__(self, model: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, *args, **kwargs)  # type: ignore[call-arg]
        peft_model = self.accelerator.unwrap_model(self.model)  # type: ignore[attr-defined]
        if "ref" in peft_model.peft_config:
            peft_model.delete_adapter("ref")
        peft_model.set_adapter("default")  # keeps only the default adapter's LoRA weights trainable
        self.ref_model = None
        # Quiet: Trainer prints every log dict when tqdm is disabled.
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        for cb in (PrinterCallback, ProgressCallback):
            self.remove_callback(cb)  # type: ignore[attr-defined]

    def _tokenize_prompts(self, prompts: list) -> tuple[list, None, dict]:
        """Plain-text prompts: no second BOS when the rendered prompt already has one (see above)."""
        if prompts and all(isinstance(p, str) for p in prompts):
            tok = self._tokenizer  # type: ignore[attr-defined]
            ids = tok(prompts, add_special_tokens=add_special_tokens_for(tok, prompts))["input_ids"]
            return ids, None, {}
        return super()._tokenize_prompts(prompts)  # type: ignore[misc]


@contextlib.contextmanager
def keep_training_mode(model: torch.nn.Module) -> Iterator[None]:
    """Undo what the trainers change on the caller's model besides the LoRA weights.

    Restores the train/eval mode (the Trainer leaves it in train mode) and removes the fused-LM-head
    ``forward`` TRL patches onto the base model's instance (it would otherwise stack one wrapper per
    round).
    """
    was_training = model.training
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    missing = object()
    patched_before = base.__dict__.get("forward", missing)
    try:
        yield
    finally:
        model.train(was_training)
        if patched_before is missing:
            base.__dict__.pop("forward", None)
        else:
            base.__dict__["forward"] = patched_before


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
