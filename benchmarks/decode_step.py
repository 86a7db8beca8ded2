"""Where a decode step's time goes, and what a static KV cache and ``torch.compile`` change.

``python -m benchmarks.decode_step [--model bundled:gemma3-270m] [--batch 8] [--steps 16]`` loads the
generator as the loop does (base model + LoRA, row-major output layer), prefills ``batch`` few-shot
prompts of ``recipes/demo_signal.yaml`` and times ``steps`` greedy decode steps (argmax, so every
variant computes the same tokens — checked) in three ways:

* ``dynamic cache, eager`` — what ``generator.decoding: fast`` runs (transformers' ``DynamicCache``);
* ``static cache, eager`` — a preallocated ``StaticCache`` of the final length;
* ``static cache, torch.compile`` — the model's forward compiled (inductor, fixed shapes), timed
  after its compilation, whose seconds are reported separately.

It also reports the prefill's share of one sampling call and the instruction's share of the prompt
tokens (what reusing a shared prefix's KV cache could save at most), next to the GEMM bound of
:mod:`benchmarks.generation`. Not part of ``make bench`` (the compilation alone takes minutes on
2 cores); results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

__all__ = ["run_decode_step"]


def _decode(model: Any, enc: dict[str, torch.Tensor], steps: int, cache: Any = None) -> tuple[list[list[int]], float, float]:
    """Greedy prefill + ``steps`` decode steps; returns the tokens, the prefill and the decode seconds."""
    ids, mask = enc["input_ids"], enc["attention_mask"]
    length = ids.shape[1]
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    static = cache is not None  # a preallocated cache needs the positions it writes
    kw: dict[str, Any] = {"past_key_values": cache, "cache_position": torch.arange(length)} if static else {}
    t = time.perf_counter()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1, **kw)
    prefill = time.perf_counter() - t
    cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
    tokens = [nxt.tolist()]
    last = positions[:, -1]
    full_mask = torch.cat([mask, mask.new_ones(mask.shape[0], steps)], dim=1)
    t = time.perf_counter()
    for s in range(steps):
        last = last + 1
        kw = {"cache_position": torch.tensor([length + s])} if static else {}
        m = full_mask[:, : length + s + 1]
        out = model(input_ids=nxt[:, None], attention_mask=m, position_ids=last[:, None], past_key_values=cache, use_cache=True, logits_to_keep=1, **kw)
        cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
        tokens.append(nxt.tolist())
    return tokens, prefill, (time.perf_counter() - t) / steps


@torch.no_grad()
def run_decode_step(model_name: str = "bundled:gemma3-270m", *, batch: int = 8, steps: int = 16, recipe: str = "recipes/demo_signal.yaml",
                    compile_model: bool = True, repeats: int = 2) -> dict[str, Any]:
    import dataclasses

    from transformers import StaticCache

    from signal_hf.config import load_recipe
    from signal_hf.data import load_task, sample_pool
    from signal_hf.generation import Generator

    from .generation import gemm_bound, linear_shapes

    cfg = load_recipe(recipe)
    task = load_task(cfg.data)
    pool = sample_pool(task, cfg.data.pool_fraction, 0)
    gen = Generator(dataclasses.replace(cfg.generator, model_name_or_path=model_name), task.spec)
    model = gen.model.get_base_model().eval()
    prompts = gen.build_prompts(pool, batch, seed=0)
    tok = gen.tokenizer
    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=not gen.chat)
    length = enc["input_ids"].shape[1]
    instruction_tokens = len(tok(gen.instruction, add_special_tokens=False)["input_ids"]) if gen.instruction else 0
    bound = gemm_bound(linear_shapes(model), [batch], repeats=3)["per_batch"][batch]

    def static_cache():
        return StaticCache(config=model.config, max_cache_len=length + steps + 1)

    variants: dict[str, dict[str, Any]] = {}
    reference = None
    for name, fwd, make_cache in (("dynamic cache, eager", model, lambda: None), ("static cache, eager", model, static_cache)):
        best = None
        for _ in range(repeats + 1):  # the first run warms up
            tokens, prefill, step = _decode(fwd, enc, steps, make_cache())
            best = step if best is None else min(best, step)
        reference = reference or tokens
        variants[name] = {"step_s": best, "prefill_s": prefill, "same_tokens": tokens == reference}
    if compile_model:
        compiled = torch.compile(model, dynamic=False)
        t = time.perf_counter()
        tokens, _, _ = _decode(compiled, enc, steps, static_cache())  # compiles prefill and step graphs
        compile_s = time.perf_counter() - t
        best = min(_decode(compiled, enc, steps, static_cache())[2] for _ in range(repeats))
        variants["static cache, torch.compile"] = {"step_s": best, "compile_s": compile_s, "same_tokens": tokens == reference}
    base = variants["dynamic cache, eager"]["step_s"]
    for v in variants.values():
        v["tokens_per_s"] = batch / v["step_s"]
        v["of_bound"] = v["tokens_per_s"] / bound["tokens_per_s"]
        v["speedup"] = base / v["step_s"]
    sample_decode = variants["dynamic cache, eager"]
    return {"model": model_name, "batch": batch, "steps": steps, "prompt_tokens": length, "instruction_tokens": instruction_tokens,
            "gemm_bound_tokens_per_s": bound["tokens_per_s"], "gemm_step_s": bound["step_s"],
            "prefill_share_of_a_sampling_call": sample_decode["prefill_s"] / (sample_decode["prefill_s"] + steps * sample_decode["step_s"]),
            "variants": variants, "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decode_step", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bundled:gemma3-270m")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--no-compile", action="store_true")
    a = p.parse_args(argv)
    print(json.dumps(run_decode_step(a.model, batch=a.batch, steps=a.steps, compile_model=not a.no_compile), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
