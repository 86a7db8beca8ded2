"""What ``generator.max_new_tokens`` does to one round's candidates: kept, dropped by reason, cost (#17).

The AG News ablation (README) drops 55-62 % of its candidates as truncated at 32 new tokens. This samples
the same seeded prompts from a recipe's generator and real pool (seed-0 pool) at each cap, runs them
through ``Generator.generate`` (the round's own parsing, dedup and truncation rule), labels the kept
ones with the recipe's synthetic-item annotator, and prints one row per cap: kept, dropped by reason,
seconds, seconds per kept candidate, words per kept candidate against the real pool's, and the
annotator's label shares.

Run: .venv/bin/python scripts/max_new_tokens_sweep.py recipes/paper/ablation_ag_news_0.1_signal_gen.yaml 32 48 64 96
"""
import argparse
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import torch

from signal_hf.config.parsing import load_recipe
from signal_hf.data import load_task, sample_pool
from signal_hf.generation import Generator
from signal_hf.oracles import ModelOracle

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("recipe")
p.add_argument("caps", nargs="+", type=int, help="max_new_tokens values to compare")
p.add_argument("--prompts", type=int, default=96, help="prompts per cap (the same prompts and seed for every cap)")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="sampling seeds; each gives its own prompts")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", help="also write the rows as JSON lines here")
a = p.parse_args()
datasets.disable_progress_bars()
torch.set_num_threads(a.threads)

cfg = load_recipe(a.recipe)
task = load_task(cfg.data)
pool = sample_pool(task, cfg.data.pool_fraction, 0)
gen = Generator(cfg.generator, task.spec)
# The annotator's label shares only where it has been trained (make annotator-<dataset>); else not measured.
oracle = ModelOracle(cfg.oracle.annotator_path, task.spec) if cfg.oracle.annotator_path and Path(cfg.oracle.annotator_path).is_dir() else None
if oracle is None:
    print(f"no annotator at {cfg.oracle.annotator_path}: label shares not measured")
names = task.spec.label_names
real_words = np.mean([len(t.split()) for t in pool["text"]])
print(f"{cfg.data.dataset}: pool {len(pool)} items, {real_words:.1f} words each on average; {a.prompts} prompts x seeds {a.seeds} per cap")
rows = []
for cap in a.caps:
    gen.config = dataclasses.replace(cfg.generator, max_new_tokens=cap)
    kept, dropped, words, labels, seconds = 0, Counter(), [], Counter(), 0.0
    for seed in a.seeds:
        t = time.perf_counter()
        ds, stats = gen.generate(pool, a.prompts, round_idx=0, seed=seed)
        seconds += time.perf_counter() - t
        kept += stats.kept
        dropped.update(stats.dropped)
        words += [len(x.split()) for x in ds["text"]]
        if len(ds) and oracle is not None:
            labels.update(names[y] for y in oracle.annotate(ds))
    n = a.prompts * len(a.seeds)
    row = {"max_new_tokens": cap, "generated": n, "kept": kept, "dropped": dict(dropped), "seconds": round(seconds, 1),
           "seconds_per_kept": round(seconds / kept, 2) if kept else None, "words_per_kept": round(float(np.mean(words)), 1) if words else None,
           "real_words": round(float(real_words), 1), "labels": {k: round(v / kept, 3) for k, v in sorted(labels.items())} if kept and oracle is not None else None}
    rows.append(row)
    print(f"max_new_tokens {cap}: kept {kept}/{n} ({100 * kept / n:.0f} %), dropped {dict(dropped)}, {seconds:.0f} s "
          f"({row['seconds_per_kept']} s per kept), {row['words_per_kept']} words per kept (real {real_words:.1f}), labels {row['labels']}", flush=True)
if a.out:
    with open(a.out, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
