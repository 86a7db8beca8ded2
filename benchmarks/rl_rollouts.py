"""GRPO step time with TRL's ``generate`` rollouts vs the generator's own sampling loop, side by side.

Both paths run the same GRPO steps (``signal_hf.rl.optimize_generator``) on the same rendered
prompts, with the same seed, from the same starting LoRA weights (restored before every run), and a
cheap deterministic reward (the share of the letter "e"), so the time is the RL trainer's own:
rollouts, the policy's log-probabilities, the KL reference (adapter off) and the backward pass.

* ``TRL generate`` — ``model.generate`` inside TRL (``generator.decoding: transformers``);
* ``generator loop`` — ``Generator.rollout_sampler()`` as TRL's ``rollout_func``
  (``generator.decoding: fast``, the default): the nucleus from a partial sort, finished rows leave
  the batch, rows batched by length, the row-major output layer, eval mode (no LoRA dropout while
  sampling, as the generator samples).

Passes alternate the order of the two paths; the fastest pass per path is reported.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from typing import Any

from .common import fmt_s

__all__ = ["ROLLOUT_PATHS", "rl_rollouts_table", "run_rl_rollouts"]

logger = logging.getLogger("benchmarks")

#: name → whether GRPO takes its rollouts from the generator's loop; the first is the old path.
ROLLOUT_PATHS: dict[str, bool] = {"old: TRL generate": False, "new: generator loop": True}


def _e_share(prompts=None, completions=None, **kwargs) -> list[float]:
    return [c.count("e") / max(len(c), 1) for c in completions]


def run_rl_rollouts(models: list[str], *, steps: int = 2, prompts_per_step: int = 2, num_generations: int = 4,
                    passes: int = 2, max_new_tokens: int | None = None, recipe: str = "recipes/demo_signal.yaml",
                    seed: int = 0) -> dict[str, Any]:
    """Seconds per GRPO step for each generator and rollout path (see the module docstring).

    Args:
        models: generator names (``bundled:gemma3-270m``, ...).
        steps: GRPO steps per run.
        prompts_per_step, num_generations: the step's batch (``rl.prompts_per_step`` × ``rl.num_generations``).
        passes: alternating passes; the fastest per path is reported.
        max_new_tokens: completion cap (default: the recipe's ``generator.max_new_tokens``).
        recipe: recipe whose data, generator and RL settings (β, learning rate) are used.
        seed: the RL seed, the same for both paths.
    """
    import torch

    from signal_hf.config import load_recipe
    from signal_hf.data import load_task, sample_pool
    from signal_hf.generation import Generator
    from signal_hf.rl import optimize_generator

    if steps < 1 or passes < 1 or prompts_per_step < 1 or num_generations < 2:
        raise ValueError("run_rl_rollouts: need steps, passes, prompts_per_step >= 1 and num_generations >= 2")
    cfg = load_recipe(recipe)
    task = load_task(cfg.data)
    pool = sample_pool(task, cfg.data.pool_fraction, 0)
    rl = dataclasses.replace(cfg.rl, algorithm="grpo", steps_per_round=steps, prompts_per_step=prompts_per_step, num_generations=num_generations)
    rows: list[dict[str, Any]] = []
    for model in models:
        gcfg = dataclasses.replace(cfg.generator, model_name_or_path=model)
        if max_new_tokens is not None:
            gcfg.max_new_tokens = max_new_tokens
        gen = Generator(gcfg, task.spec)
        prompts = gen.build_prompts(pool, prompts_per_step * steps, seed=seed)
        start = {n: p.detach().clone() for n, p in gen.model.named_parameters() if "lora_" in n}
        runs: dict[str, list[dict[str, float]]] = {p: [] for p in ROLLOUT_PATHS}
        for k in range(passes):
            for path in (list(ROLLOUT_PATHS) if k % 2 == 0 else list(ROLLOUT_PATHS)[::-1]):
                with torch.no_grad():
                    for n, p in gen.model.named_parameters():
                        if n in start:
                            p.copy_(start[n])
                sampler = gen.rollout_sampler() if ROLLOUT_PATHS[path] else None
                with tempfile.TemporaryDirectory() as tmp:
                    t = time.perf_counter()
                    m = optimize_generator(gen.model, gen.tokenizer, prompts, _e_share, rl, output_dir=tmp, seed=seed,
                                           max_new_tokens=gcfg.max_new_tokens, temperature=gcfg.temperature, top_p=gcfg.top_p,
                                           sampler=sampler)
                    wall = time.perf_counter() - t
                got = {"seconds_per_step": m["seconds_per_step"], "wall_s": wall,
                       "mean_completion_length": m.get("mean_completion_length", float("nan")), "kl": m["kl"]}
                runs[path].append(got)
                logger.info("rl rollouts %s %s pass %d: %.1f s per step", model, path, k + 1, got["seconds_per_step"])
        first = None
        for path in ROLLOUT_PATHS:
            best = min(runs[path], key=lambda g: g["seconds_per_step"])
            first = first or best["seconds_per_step"]
            rows.append({"model": model, "path": path, "steps": steps, "completions_per_step": prompts_per_step * num_generations,
                         "max_new_tokens": gcfg.max_new_tokens, "passes": runs[path], "seconds_per_step": best["seconds_per_step"],
                         "mean_completion_length": best["mean_completion_length"], "speedup": first / best["seconds_per_step"]})
        del gen
    return {"config": {"models": list(models), "steps": steps, "prompts_per_step": prompts_per_step, "num_generations": num_generations,
                       "passes": passes, "max_new_tokens": max_new_tokens, "recipe": recipe, "seed": seed,
                       "statistic": "fastest of the alternating passes"}, "rows": rows}


def rl_rollouts_table(report: dict[str, Any]):
    from rich.table import Table

    cfg = report["config"]
    table = Table(title=f"GRPO step time, rollouts from TRL's generate vs the generator's loop ({cfg['steps']} steps of "
                        f"{cfg['prompts_per_step']} prompts × {cfg['num_generations']} completions, best of {cfg['passes']} alternating passes)")
    for col in ("generator", "rollouts", "completions/step", "mean completion tokens", "s per step", "× old"):
        table.add_column(col, justify="left" if col in ("generator", "rollouts") else "right")
    for r in report["rows"]:
        table.add_row(r["model"], r["path"], str(r["completions_per_step"]), f"{r['mean_completion_length']:.1f}",
                      fmt_s(r["seconds_per_step"]), f"{r['speedup']:.2f}×")
    return table
