"""Why is signal-gen behind signal-gen-norl on SST-2 0.1 % after 100 %? Refit the classifier on swapped labelled sets.

The probe classifier is a deterministic function of its labelled set (rows sorted by id, one L-BFGS fit), so
each trial's labelled set at a round — the seeded initial set, the real items in ``selected_ids``, the synthetic
items with their oracle labels from ``inspect.md`` — can be rebuilt from the committed results and refitted.
First the refit must reproduce the committed accuracy (else the rest is void); then, per seed, the real part of
one method is combined with the synthetic part of the other, which says whether the gap lives in the synthetic
picks, the real picks, or neither. It also measures the synthetic picks themselves: words, distance (1 − cosine,
mpnet) to the nearest test sentence, and mean similarity to their nearest other pick (redundancy).

Run: .venv/bin/python scripts/decompose_sst2_picks.py --out docs/results/ablation_sst2_0.1_to200_6seeds/decompose.md
"""
import argparse
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import datasets
import numpy as np
import torch

from signal_hf.classifier import fit_classifier, order_for_eval
from signal_hf.config.parsing import load_recipe
from signal_hf.data import load_task, sample_pool
from signal_hf.encoder import get_encoder
from signal_hf.loop.schedule import Schedule
from signal_hf.loop.state import derive_seed
from signal_hf.results import read_results, seed_interval

SIX = Path("docs/results/ablation_sst2_0.1_to200_6seeds")
THREE = Path("docs/results/ablation_sst2_0.1_to200")
A, B = "signal-gen", "signal-gen-norl"

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--results", type=Path, default=SIX / "results.jsonl")
p.add_argument("--inspect", type=Path, nargs="+", default=[SIX / "inspect.md", THREE / "inspect_frozen.md", SIX / "inspect_frozen_seeds345.md"])
p.add_argument("--recipe", default="recipes/paper/ablation_sst2_0.1_signal_gen.yaml")
p.add_argument("--rounds", type=int, nargs="+", default=[10, 19], help="rounds to refit (10 = 100 %%, 19 = 200 %%)")
p.add_argument("--out", type=Path, required=True)
a = p.parse_args()
datasets.disable_progress_bars()
torch.set_num_threads(1)

cfg = load_recipe(a.recipe)
task = load_task(cfg.data)
names = list(task.spec.label_names)
test = order_for_eval(task.test)

# Synthetic picks per (method, seed): {round: [(id, label, text)]}, from the inspect reports.
head = re.compile(r"^## (\S+) seed (\d+) — round (\d+) ")
row = re.compile(r"^\| `([^`]+)` \| (\S+) \| [^|]+ \| (.*) \|$")
synthetic: dict[tuple[str, int], dict[int, list[tuple[str, int, str]]]] = defaultdict(lambda: defaultdict(list))
for path in a.inspect:
    key = None
    for line in path.read_text().splitlines():
        if m := head.match(line):
            key = (m[1], int(m[2])), int(m[3])
        elif key and (m := row.match(line)) and m[1].startswith("syn-"):
            synthetic[key[0]][key[1]].append((m[1], names.index(m[2]), m[3].replace("\\|", "|")))

results = read_results(a.results)
by_key = {(r["method"], r["seed"], r["round"]): r for r in results}
seeds = sorted({r["seed"] for r in results if r["method"] == A})


def labelled_set(method: str, seed: int, upto: int, pool: datasets.Dataset, initial: list[str]) -> tuple[list[dict], list[dict]]:
    """(real rows, synthetic rows) labelled by ``method``'s trial after round ``upto``."""
    gold = dict(zip(pool["id"], zip(pool["text"], pool["label"])))
    syn = {i: (lab, text) for r in range(1, upto + 1) for i, lab, text in synthetic[(method, seed)][r]}
    real_ids, syn_rows = list(initial), {}
    for r in range(1, upto + 1):
        for i in by_key[(method, seed, r)]["selected_ids"]:
            if i.startswith("syn-"):
                syn_rows[i] = {"id": i, "text": syn[i][1], "label": syn[i][0]}
            else:
                real_ids.append(i)
    real = [{"id": i, "text": gold[i][0], "label": gold[i][1]} for i in real_ids]
    return real, list(syn_rows.values())


def accuracy(rows: list[dict], seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        model = fit_classifier(cfg.classifier, task.spec, datasets.Dataset.from_list(rows), test, output_dir=tmp, seed=seed)
        return 100 * model.accuracy()


encoder = get_encoder(cfg.classifier.model_name_or_path, cfg.classifier.pooling, cfg.classifier.max_length)
test_emb = torch.nn.functional.normalize(encoder.embed_dataset(test, cfg.classifier.pair_features), dim=-1)


def pick_stats(rows: list[dict]) -> dict[str, float]:
    emb = torch.nn.functional.normalize(encoder.embed_dataset(datasets.Dataset.from_list(rows), cfg.classifier.pair_features), dim=-1)
    sim = emb @ emb.T
    sim.fill_diagonal_(-1)
    return {
        "words": float(np.mean([len(r["text"].split()) for r in rows])),
        "to_test": float((1 - (emb @ test_emb.T).max(1).values).mean()),
        "redundancy": float(sim.max(1).values.mean()),
        "positive": float(np.mean([r["label"] for r in rows])),
    }


out: dict = {"seeds": seeds, "rounds": {}}
for rnd in a.rounds:
    cells = defaultdict(list)
    for seed in seeds:
        pool = sample_pool(task, cfg.data.pool_fraction, seed)
        size = Schedule.from_config(cfg.loop, len(pool), generative=True).initial_size
        initial = pool.shuffle(seed=derive_seed(seed, "initial")).select(range(size))["id"]
        parts = {m: labelled_set(m, seed, rnd, pool, initial) for m in (A, B)}
        for m in (A, B):
            committed = 100 * by_key[(m, seed, rnd)]["accuracy"]
            cells[f"{m} committed"].append(committed)
            cells[f"{m} refit"].append(accuracy(parts[m][0] + parts[m][1], seed))
            cells[f"{m} real only"].append(accuracy(parts[m][0], seed))
            for k, v in pick_stats(parts[m][1]).items():
                cells[f"{m} picks {k}"].append(v)
            cells[f"{m} n real / synthetic"].append(f"{len(parts[m][0])}/{len(parts[m][1])}")
        cells[f"real {A} + synthetic {B}"].append(accuracy(parts[A][0] + parts[B][1], seed))
        # Fewer real items, or other ones? Both real sets at the smaller one's size (10 seeded random
        # subsets of the larger), each with its own synthetic part.
        n = min(len(parts[A][0]), len(parts[B][0]))
        rng = np.random.default_rng(seed)
        for m in (A, B):
            real, syn = parts[m]
            subsets = [real] if len(real) == n else [[real[i] for i in rng.choice(len(real), n, replace=False)] for _ in range(10)]
            cells[f"{m} real at equal count"].append(float(np.mean([accuracy(s, seed) for s in subsets])))
            cells[f"{m} at equal real count"].append(float(np.mean([accuracy(s + syn, seed) for s in subsets])))
        shared = len(set(r["id"] for r in parts[A][0]) & set(r["id"] for r in parts[B][0]))
        cells["real items in both"].append(f"{shared} of {len(parts[A][0])}/{len(parts[B][0])}")
        cells[f"real {B} + synthetic {A}"].append(accuracy(parts[B][0] + parts[A][1], seed))
        print(f"round {rnd} seed {seed}: " + ", ".join(f"{k} {v[-1]:.3g}" if not isinstance(v[-1], str) else f"{k} {v[-1]}" for k, v in cells.items()), flush=True)
    out["rounds"][rnd] = dict(cells)


def interval(x: list[float]) -> str:
    mean, low, high = seed_interval(x)
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"


lines = [f"# Refitting the classifier on rebuilt and swapped labelled sets (`{Path(__file__).name}`)", ""]
for rnd, cells in out["rounds"].items():
    lines += [f"## Round {rnd}", "", "| cell | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |", "|---|" + "---|" * (len(seeds) + 1)]
    for k, v in cells.items():
        vals = " | ".join(x if isinstance(x, str) else f"{x:.3g}" if "picks" in k else f"{x:.1f}" for x in v)
        mean = "" if isinstance(v[0], str) else f"{np.mean(v):.3g}" if "picks" in k else f"{np.mean(v):.1f}"
        lines.append(f"| {k} | {vals} | {mean} |")
    diff = lambda x, y: [p - q for p, q in zip(cells[x], cells[y])]  # noqa: E731
    lines += ["", "Per-seed differences, mean [95 % Student-t interval over seeds]:", ""]
    lines.append(f"- {A} − {B}, refit: {interval(diff(f'{A} refit', f'{B} refit'))}")
    lines.append(f"- synthetic part swapped ({B}'s real + {A}'s synthetic − {B}): {interval(diff(f'real {B} + synthetic {A}', f'{B} refit'))}")
    lines.append(f"- real part swapped ({A}'s real + {B}'s synthetic − {B}): {interval(diff(f'real {A} + synthetic {B}', f'{B} refit'))}")
    lines.append(f"- real only, {A} − {B}: {interval(diff(f'{A} real only', f'{B} real only'))}")
    lines.append(f"- real only at equal count, {A} − {B}: {interval(diff(f'{A} real at equal count', f'{B} real at equal count'))}")
    lines.append(f"- whole set at equal real count, {A} − {B}: {interval(diff(f'{A} at equal real count', f'{B} at equal real count'))}")
    for k in ("words", "to_test", "redundancy", "positive"):
        lines.append(f"- picks {k}, {A} − {B}: {interval(diff(f'{A} picks {k}', f'{B} picks {k}'))}")
    lines.append("")
a.out.write_text("\n".join(lines))
a.out.with_suffix(".json").write_text(json.dumps(out, indent=1))
print("\n".join(lines))
