"""Generator throughput against this machine's bound, old sampling path vs new, side by side.

**The bound.** Every ``nn.Linear`` of the generator (the LoRA matrices and the output layer
included) is timed here, at the shape one decode step gives it (``batch`` rows), with torch's fp32
GEMM in both layouts (``linear(h, W)`` and ``(W·hᵀ)ᵀ``), keeping the faster. A decode step cannot
take less than the sum of those GEMMs, so ``batch / Σ t`` is the tokens/s this machine's GEMM allows
at that batch size ("GEMM bound"; attention, norms and sampling come on top). The peak-FLOP bound —
the model's FLOPs per token at the rate of one large square GEMM — is printed next to it: at small
batches the output layer is bound by streaming its weight, not by FLOPs, so it is far above what any
path can reach.

**The paths**, each on the same prompts and seed (``Generator.sample``):

* ``transformers`` + ``linear`` head — the old path (``model.generate``);
* ``transformers`` + row-major head;
* ``fast`` loop + ``linear`` head;
* ``fast`` loop + row-major head — the new default (``generator.decoding: fast``,
  ``generator.row_major_head: true``).

Tokens are the useful ones: up to and including each completion's stop token. The two loops draw
different random numbers (same distribution), so their completions, and token counts, differ.
Passes alternate the order of the paths and the best pass per (path, batch size) is reported, to damp
the noise of a shared machine. vLLM is not measured: it needs CUDA.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from typing import Any

import torch

from .common import fmt_s

__all__ = ["PATHS", "gemm_bound", "generation_table", "run_generation"]

logger = logging.getLogger("benchmarks")

#: name → (generator.decoding, generator.row_major_head); the first is the old path, the last the new.
PATHS: dict[str, tuple[str, bool]] = {
    "old: generate + linear head": ("transformers", False),
    "generate + row-major head": ("transformers", True),
    "fast loop + linear head": ("fast", False),
    "new: fast loop + row-major head": ("fast", True),
}


def _time(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def linear_shapes(model: Any) -> Counter[tuple[int, int]]:
    """``(in_features, out_features) → count`` over every ``nn.Linear`` a decode step runs."""
    return Counter((m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear))


@torch.no_grad()
def gemm_bound(shapes: Counter[tuple[int, int]], batch_sizes: list[int], *, repeats: int = 3) -> dict[str, Any]:
    """Per batch size: the fastest measured fp32 GEMM time of every shape (either layout), their
    sum for one decode step, and the tokens/s bound it implies; plus the peak square-GEMM rate."""
    per_bs: dict[int, dict[str, Any]] = {}
    for bs in batch_sizes:
        step_s, parts = 0.0, []
        for (k, n), count in sorted(shapes.items(), key=lambda kv: -kv[0][0] * kv[0][1]):
            w, x = torch.randn(n, k), torch.randn(bs, k)
            t_lin = _time(lambda: torch.nn.functional.linear(x, w), repeats)
            t_row = _time(lambda: torch.mm(w, x.t()), repeats)
            t = min(t_lin, t_row)
            step_s += count * t
            parts.append({"in": k, "out": n, "count": count, "linear_s": t_lin, "row_major_s": t_row, "gflops": 2 * bs * k * n / t / 1e9})
        per_bs[bs] = {"step_s": step_s, "tokens_per_s": bs / step_s, "shapes": parts}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    peak = 2 * 2048**3 / _time(lambda: a @ b, repeats) / 1e9
    flops_per_token = 2 * sum(k * n * c for (k, n), c in shapes.items())
    return {"per_batch": per_bs, "peak_gflops": peak, "flops_per_token": flops_per_token,
            "peak_tokens_per_s": peak * 1e9 / flops_per_token, "threads": torch.get_num_threads()}


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


def _sample(gen: Any, prompts: list[str], path: str, batch_size: int, seed: int) -> dict[str, Any]:
    from signal_hf.generation.model import use_row_major_head

    decoding, row_major = PATHS[path]
    old = gen.config
    gen.config = dataclasses.replace(old, decoding=decoding, batch_size=batch_size)
    use_row_major_head(gen.model.get_base_model(), row_major)
    try:
        t = time.perf_counter()
        out = gen.sample(prompts, seed=seed)
        dt = time.perf_counter() - t
    finally:
        gen.config = old
        use_row_major_head(gen.model.get_base_model(), old.row_major_head)
    return {"seconds": dt, "completions": len(out), "tokens": sum(c.tokens for c in out), "truncated": sum(c.truncated for c in out)}


def run_generation(
    models: list[str],
    *,
    batch_sizes: list[int] = (8, 32),
    paths: list[str] | None = None,
    n_prompts: int = 32,
    passes: int = 2,
    max_new_tokens: int | None = None,
    recipe: str = "recipes/demo_signal.yaml",
    seed: int = 0,
    bound_repeats: int = 3,
) -> dict[str, Any]:
    """Tokens/s of each generator for each (path, batch size), and the GEMM bound at each batch size.

    Args:
        models: generator names (``bundled:gemma3-270m``, ``bundled:smollm2-135m``, a folder, ...).
        batch_sizes: prompts per batch to compare.
        paths: names from :data:`PATHS` (default: all four).
        n_prompts: prompts sampled per pass (the same prompts for every path and batch size).
        passes: measurement passes; the order of the paths alternates between passes and the fastest
            pass per (path, batch size) is reported.
        max_new_tokens: completion cap (default: the recipe's ``generator.max_new_tokens``).
        recipe: recipe whose data and generator settings (sampling, prompt size) are used.
        seed: sampling seed (the same for every path and batch size).
        bound_repeats: timings per GEMM shape for the bound (the fastest is kept).
    """
    paths = list(paths or PATHS)
    unknown = [p for p in paths if p not in PATHS]
    if passes < 1 or n_prompts < 1 or not batch_sizes or unknown:
        raise ValueError(f"run_generation: need passes >= 1, n_prompts >= 1, a batch size, known paths (unknown: {unknown})")
    rows: list[dict[str, Any]] = []
    bounds: dict[str, Any] = {}
    for model in models:
        gen, pool, load_s = _load(model, recipe, max_new_tokens)
        bound = bounds[model] = gemm_bound(linear_shapes(gen.model.get_base_model()), list(batch_sizes), repeats=bound_repeats)
        prompts = gen.build_prompts(pool, n_prompts, seed=seed)
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {(p, bs): [] for p in paths for bs in batch_sizes}
        for k in range(passes):
            order = [(p, bs) for bs in batch_sizes for p in paths]
            for p, bs in (order if k % 2 == 0 else order[::-1]):
                got = _sample(gen, prompts, p, bs, seed)
                runs[(p, bs)].append(got)
                logger.info("generation %s %s batch %d pass %d: %d tokens in %.1fs", model, p, bs, k + 1, got["tokens"], got["seconds"])
        old_tps: dict[int, float] = {}
        for bs in batch_sizes:
            for p in paths:
                best = max(runs[(p, bs)], key=lambda g: g["tokens"] / g["seconds"])
                tps = best["tokens"] / best["seconds"]
                old_tps.setdefault(bs, tps)  # the first path listed is the reference, at each batch size
                rows.append({
                    "model": model, "path": p, "decoding": PATHS[p][0], "row_major_head": PATHS[p][1], "batch_size": bs,
                    "prompts": n_prompts, "max_new_tokens": gen.config.max_new_tokens, "load_s": load_s,
                    "passes": runs[(p, bs)], "best_seconds": best["seconds"], "tokens": best["tokens"], "truncated": best["truncated"],
                    "tokens_per_s": tps, "vs_first_path": tps / old_tps[bs],
                    "vs_old_at_first_batch": tps / old_tps[batch_sizes[0]], "bound_tokens_per_s": bound["per_batch"][bs]["tokens_per_s"],
                    "of_bound": tps / bound["per_batch"][bs]["tokens_per_s"], "of_peak": tps / bound["peak_tokens_per_s"],
                })
        del gen
    return {"config": {"models": list(models), "batch_sizes": list(batch_sizes), "paths": paths, "n_prompts": n_prompts, "passes": passes,
                       "max_new_tokens": max_new_tokens, "recipe": recipe, "seed": seed,
                       "statistic": "fastest of the alternating passes", "vllm": "not measured (needs CUDA; no GPU here)"},
            "bounds": bounds, "rows": rows}


def generation_table(report: dict[str, Any]):
    from rich.table import Table

    cfg = report["config"]
    table = Table(title=f"Generation throughput ({cfg['n_prompts']} prompts, best of {cfg['passes']} alternating passes; "
                        f"ratios vs the first path at the same batch and vs it at batch {cfg['batch_sizes'][0]}; vLLM: n/a on CPU)")
    for col in ("generator", "path", "batch", "time", "tokens", "tok/s", "× same batch", f"× batch {cfg['batch_sizes'][0]}",
                "GEMM bound tok/s", "of bound", "of peak"):
        table.add_column(col, justify="left" if col in ("generator", "path") else "right")
    for r in report["rows"]:
        table.add_row(r["model"], r["path"], str(r["batch_size"]), fmt_s(r["best_seconds"]), str(r["tokens"]), f"{r['tokens_per_s']:.1f}",
                      f"{r['vs_first_path']:.2f}×", f"{r['vs_old_at_first_batch']:.2f}×", f"{r['bound_tokens_per_s']:.1f}",
                      f"{100 * r['of_bound']:.0f} %", f"{100 * r['of_peak']:.1f} %")
    return table


def bound_table(report: dict[str, Any]):
    from rich.table import Table

    table = Table(title="The bound: fp32 GEMMs of one decode step, measured here (fastest layout per shape)")
    for col in ("generator", "batch", "step GEMMs", "GEMM bound tok/s", "output layer share", "peak GFLOP/s", "peak-FLOP bound tok/s", "threads"):
        table.add_column(col, justify="left" if col == "generator" else "right")
    for model, b in report["bounds"].items():
        for bs, pb in b["per_batch"].items():
            head = pb["shapes"][0]  # the largest shape: the output layer
            share = head["count"] * min(head["linear_s"], head["row_major_s"]) / pb["step_s"]
            table.add_row(model, str(bs), fmt_s(pb["step_s"]), f"{pb['tokens_per_s']:.1f}", f"{100 * share:.0f} %",
                          f"{b['peak_gflops']:.0f}", f"{b['peak_tokens_per_s']:.0f}", str(b["threads"]))
    return table
