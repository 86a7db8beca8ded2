"""Generator throughput: batched sampling vs one prompt at a time, with the bundled generators.

The same few-shot prompts (real SST-2 pool sentences, the demo recipe's generator settings) are
sampled with :meth:`signal_hf.generation.Generator.generate_raw` at each batch size. Sampling is
seeded, but different batch sizes draw different completions, so the comparable number is tokens
per second: *useful* tokens (up to and including each completion's stop token — EOS or the
newline that ends a one-line example) over wall time. ``slots`` counts what the batches computed
(batch × decode steps); a batch runs until its longest completion stops, so ``tokens / slots`` is
the share of batch work that was not padding.

Passes alternate the order of the batch sizes (1, 8, 8, 1, …) and the best pass per batch size is
reported, to damp the noise of a shared machine. vLLM (``generator.backend`` on GPU machines) is
not measured: it needs CUDA.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from .common import fmt_s
from .rounds import count_new_tokens

__all__ = ["run_generation", "generation_table"]

logger = logging.getLogger("benchmarks")


def _load(model: str, recipe: str, max_new_tokens: int | None):
    from signal_hf.config import load_recipe
    from signal_hf.data import load_task, sample_pool
    from signal_hf.generation import Generator

    cfg = load_recipe(recipe)
    task = load_task(cfg.data)
    pool = sample_pool(task, cfg.data.pool_fraction, 0)
    gcfg = dataclasses.replace(cfg.generator, model_name_or_path=model)
    if max_new_tokens is not None:
        gcfg.max_new_tokens = max_new_tokens
    t = time.perf_counter()
    gen = Generator(gcfg, task.spec)
    return gen, pool, time.perf_counter() - t


def _sample(gen: Any, prompts: list[str], batch_size: int, seed: int) -> dict[str, float]:
    stop_ids = list(gen.generation_kwargs()["eos_token_id"])
    inner = gen.model.generate
    counts = {"tokens": 0, "slots": 0, "calls": 0}

    def counting_generate(*a: Any, **kw: Any):
        seqs = inner(*a, **kw)
        useful, slots = count_new_tokens(seqs[:, kw["input_ids"].shape[1]:], stop_ids)
        counts["tokens"] += useful
        counts["slots"] += slots
        counts["calls"] += 1
        return seqs

    old_bs = gen.config.batch_size
    gen.config.batch_size = batch_size
    gen.model.generate = counting_generate
    try:
        t = time.perf_counter()
        out = gen.generate_raw(prompts, seed=seed)
        dt = time.perf_counter() - t
    finally:
        del gen.model.generate
        gen.config.batch_size = old_bs
    return {"seconds": dt, "completions": len(out), **counts}


def run_generation(
    models: list[str],
    *,
    batch_sizes: list[int] = (1, 8),
    n_prompts: int = 16,
    passes: int = 2,
    max_new_tokens: int | None = None,
    recipe: str = "recipes/demo_signal.yaml",
    seed: int = 0,
) -> dict[str, Any]:
    """Tokens/s of each generator at each batch size.

    Args:
        models: generator names (``bundled:gemma3-270m``, ``bundled:smollm2-135m``, a folder, ...).
        batch_sizes: prompts per ``generate`` call to compare.
        n_prompts: prompts sampled per pass (the same prompts for every batch size).
        passes: measurement passes; the order of the batch sizes alternates between passes and the
            fastest pass per batch size is reported.
        max_new_tokens: completion cap (default: the recipe's ``generator.max_new_tokens``).
        recipe: recipe whose data and generator settings (sampling, prompt size) are used.
        seed: sampling seed (the same for every batch size).
    """
    if passes < 1 or n_prompts < 1 or not batch_sizes:
        raise ValueError("run_generation: need passes >= 1, n_prompts >= 1 and at least one batch size")
    rows: list[dict[str, Any]] = []
    for model in models:
        gen, pool, load_s = _load(model, recipe, max_new_tokens)
        prompts = gen.build_prompts(pool, n_prompts, seed=seed)
        per_bs: dict[int, list[dict[str, float]]] = {bs: [] for bs in batch_sizes}
        for p in range(passes):
            order = list(batch_sizes) if p % 2 == 0 else list(reversed(batch_sizes))
            for bs in order:
                got = _sample(gen, prompts, bs, seed)
                per_bs[bs].append(got)
                logger.info("generation %s batch %d pass %d: %d tokens in %.1fs", model, bs, p + 1, got["tokens"], got["seconds"])
        base = None
        for bs in batch_sizes:
            best = max(per_bs[bs], key=lambda g: g["tokens"] / g["seconds"])
            tps = best["tokens"] / best["seconds"]
            base = tps if base is None else base
            rows.append({
                "model": model, "batch_size": bs, "prompts": n_prompts, "max_new_tokens": gen.config.max_new_tokens,
                "load_s": load_s, "passes": [dict(g) for g in per_bs[bs]], "best_seconds": best["seconds"],
                "tokens": best["tokens"], "slots": best["slots"], "tokens_per_s": tps,
                "prompts_per_s": n_prompts / best["seconds"], "padding_share": 1.0 - best["tokens"] / max(best["slots"], 1),
                "speedup_vs_first": tps / base,
            })
        del gen
    return {"config": {"models": list(models), "batch_sizes": list(batch_sizes), "n_prompts": n_prompts, "passes": passes,
                       "max_new_tokens": max_new_tokens, "recipe": recipe, "seed": seed,
                       "statistic": "fastest of the alternating passes", "vllm": "not measured (needs CUDA; no GPU here)"},
            "rows": rows}


def generation_table(report: dict[str, Any]):
    from rich.table import Table

    cfg = report["config"]
    first = cfg["batch_sizes"][0]
    table = Table(title=f"Generation throughput ({cfg['n_prompts']} prompts, best of {cfg['passes']} alternating passes; vLLM: n/a on CPU)")
    for col in ("generator", "batch", "time", "tokens", "tok/s", "prompts/s", "padding", f"vs batch {first}"):
        table.add_column(col, justify="left" if col == "generator" else "right")
    for r in report["rows"]:
        table.add_row(r["model"], str(r["batch_size"]), fmt_s(r["best_seconds"]), str(r["tokens"]), f"{r['tokens_per_s']:.1f}",
                      f"{r['prompts_per_s']:.2f}", f"{100 * r['padding_share']:.0f} %", f"{r['speedup_vs_first']:.2f}×")
    return table
