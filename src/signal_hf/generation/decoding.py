"""A batched sampling loop for short one-line completions on CPU (``generator.decoding: fast``).

Same model, same sampling distribution as ``model.generate(do_sample=True, temperature, top_p,
begin_suppress_tokens, eos_token_id=stop ids)``; what it does differently, each measured by
``make bench`` (benchmarks/throughput.py):

* **nucleus from a partial sort**: the top-p set is read off ``topk`` (widened until it holds
  ``top_p`` of the mass) instead of sorting all 262k logits of Gemma's vocabulary every step, and the
  token is drawn among the kept ones only (the same renormalised distribution, other random draws);
* **finished rows leave the batch**: a completion that reached a stop token is dropped from the KV
  cache, so the batch no longer runs at full width until its longest member stops;
* **length-grouped batches**: prompts are batched in order of token length (less left padding),
  completions are returned in the caller's order.

``transformers``' ``generate`` stays the other path (``generator.decoding: transformers``). GRPO
rollouts use this loop too under ``decoding: fast`` (TRL's ``rollout_func``, :mod:`signal_hf.rl.trl_trainers`);
RLOO and PPO rollouts call ``generate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Completion", "SamplingSettings", "nucleus_sample", "sample_completions"]


@dataclass(frozen=True)
class SamplingSettings:
    """What one sampling call needs besides the model and the prompts."""

    max_new_tokens: int
    temperature: float
    top_p: float
    stop_ids: tuple[int, ...]
    suppress_first: tuple[int, ...] = ()
    batch_size: int = 8


@dataclass(frozen=True)
class Completion:
    """One sampled completion: its text, whether it stopped at the length cap (no stop token), how
    many tokens were sampled for it (the stop token included) and, from the fast loop, those token
    ids (what an RL trainer scores)."""

    text: str
    truncated: bool
    tokens: int
    token_ids: tuple[int, ...] = ()


def nucleus_sample(logits: torch.Tensor, *, temperature: float, top_p: float, generator: torch.Generator, start_k: int = 1024) -> torch.Tensor:
    """One token id per row of ``(B, V)`` logits from softmax(logits / T) restricted to the nucleus.

    The nucleus is the set ``transformers``' ``TopPLogitsWarper`` keeps: the most probable tokens
    whose strictly-larger mass is below ``top_p`` (at least one). It is found among the ``k`` largest
    probabilities, ``k`` growing 4× until they cover ``top_p`` in every row, which avoids a full sort.
    """
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    vocab = probs.shape[-1]
    k = min(start_k, vocab)
    while True:
        top, idx = probs.topk(k, dim=-1)  # sorted, largest first
        if k == vocab or bool((top.sum(-1) >= top_p).all()):
            break
        k = min(4 * k, vocab)
    above = top.cumsum(-1) - top  # mass of the strictly more probable tokens
    keep = above < top_p
    keep[:, 0] = True
    pick = torch.multinomial(top * keep, 1, generator=generator)  # multinomial renormalises
    return idx.gather(1, pick).squeeze(1)


def _decode_batch(model: Any, enc: dict[str, torch.Tensor], settings: SamplingSettings, generator: torch.Generator) -> list[tuple[list[int], bool]]:
    """Sample one batch; returns per row its new token ids (the stop token included) and whether it
    hit ``max_new_tokens`` without a stop token."""
    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows = ids.shape[0]
    stop = torch.tensor(settings.stop_ids, dtype=torch.long, device=ids.device)
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, logits = out.past_key_values, out.logits[:, -1]
    last = positions[:, -1]
    alive = torch.arange(rows, device=ids.device)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    stopped = [False] * rows
    for step in range(settings.max_new_tokens):
        if step == 0 and settings.suppress_first:
            logits[:, list(settings.suppress_first)] = float("-inf")  # a newline first would end the example
        nxt = nucleus_sample(logits, temperature=settings.temperature, top_p=settings.top_p, generator=generator)
        for r, t in zip(alive.tolist(), nxt.tolist()):
            tokens[r].append(t)
        done = torch.isin(nxt, stop)
        for r in alive[done].tolist():
            stopped[r] = True
        if step == settings.max_new_tokens - 1 or bool(done.all()):
            break
        if bool(done.any()):  # finished rows leave the batch and its KV cache
            sel = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(sel)
            alive, mask, last, nxt = alive[sel], mask[sel], last[sel], nxt[sel]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        last = last + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None], past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache, logits = out.past_key_values, out.logits[:, -1]
    return [(t, not s) for t, s in zip(tokens, stopped)]


@torch.no_grad()
def sample_completions(
    model: Any, tokenizer: Any, prompts: Sequence[str], settings: SamplingSettings, *, seed: int, add_special_tokens: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[Completion]:
    """One completion per prompt, in the prompts' order; the same model, prompts, settings and
    seed give the same completions (a local ``torch.Generator``: the global RNG is untouched).
    ``progress(done, total)`` is called after each batch."""
    prompts = list(prompts)
    if not prompts:
        return []
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    lengths = [len(x) for x in tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: (lengths[i], i))
    results: list[Completion | None] = [None] * len(prompts)
    for lo in range(0, len(order), settings.batch_size):
        chunk = order[lo : lo + settings.batch_size]
        enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=add_special_tokens).to(device)
        for i, (toks, truncated) in zip(chunk, _decode_batch(model, enc, settings, generator)):
            results[i] = Completion(tokenizer.decode(toks, skip_special_tokens=True), truncated, len(toks), tuple(toks))
        if progress is not None:
            progress(min(lo + settings.batch_size, len(order)), len(order))
    return results  # type: ignore[return-value]
