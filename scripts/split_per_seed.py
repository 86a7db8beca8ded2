"""The budget-split ablation seed by seed: each split's accuracy at the checkpoints, its difference from the free
split and from the pool (every pool baseline labels the whole pool at 100 %, so they share one accuracy there),
how much of its budget went to synthetic text, and the shares it used round by round.

Run: .venv/bin/python scripts/split_per_seed.py runs/ablation_sst2/split docs/results/cpu_sst2_0.1/results.jsonl \
       --out docs/results/ablation_sst2_0.1_split/per_seed.md
"""
import argparse
from pathlib import Path

from signal_hf.results import format_seed_interval, read_results, rows_by_seed

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("run", help="the grid folder of the split ablation")
p.add_argument("pool", type=Path, help="results.jsonl of the pool-based grid on the same seeds")
p.add_argument("--free", default="signal-gen-norl", help="the method under the free split")
p.add_argument("--splits", nargs="+", default=["signal-gen-norl-adaptive", "signal-gen-norl-fixed"])
p.add_argument("--pool-method", default="random", help="a pool baseline (all equal at their last checkpoint, 100 %%)")
p.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100], help="labelled %% of the pool")
p.add_argument("--out", type=Path, required=True)
a = p.parse_args()


rows = read_results(a.run)
runs = {m: rows_by_seed(rows, m) for m in [a.free, *a.splits]}
pool = rows_by_seed(read_results(a.pool), a.pool_method)
seeds = sorted(set.intersection(*(set(v) for v in runs.values()), set(pool)))
last = max(a.checkpoints)


def acc(method: str, seed: int, cp: int) -> float:
    return 100 * runs[method][seed][cp]["accuracy"]


def mean_acc(method: str, seed: int) -> float:
    cps = [c for c in runs[method][seed] if c <= last]
    return sum(acc(method, seed, c) for c in cps) / len(cps)


lines = [f"# Budget split, seed by seed: {', '.join([a.free, *a.splits])} (`{a.run}`)", ""]
lines += ["Accuracy (%) at the checkpoints and averaged over every checkpoint up to the last; items acquired from S of all",
          "acquired; the synthetic share each round used (a free split uses none) and the share a free top-b took from S",
          "under the method's own classifier that round.", ""]
head = " | ".join(f"{c} %" for c in a.checkpoints)
lines += [f"| method | seed | {head} | mean ≤ {last} % | from S | share used, rounds 1– | free share, rounds 1– |",
          "|---" * (6 + len(a.checkpoints)) + "|"]
for m, per_seed in runs.items():
    for s in seeds:
        rs = [per_seed[s][c] for c in sorted(per_seed[s]) if c <= last]
        picked = sum(len(r.get("selected_ids") or []) for r in rs if r["round"] > 0)
        synthetic = sum(r.get("acquired_synthetic") or 0 for r in rs)
        shares = [r.get("synthetic_share_used") for r in rs if r["round"] > 0]
        free = [r.get("free_synthetic_share") for r in rs if r["round"] > 0]
        # "—" for a round with no split to make (a free split; or R or S has no candidates left, as when a
        # fixed split has labelled every real item)
        fmt = lambda xs: "—" if all(x is None for x in xs) else " ".join("—" if x is None else f"{x:.2f}" for x in xs)
        cells = " | ".join(f"{acc(m, s, c):.1f}" for c in a.checkpoints)
        lines.append(f"| {m} | {s} | {cells} | {mean_acc(m, s):.1f} | {synthetic}/{picked} | {fmt(shares)} | {fmt(free)} |")
lines += ["", "Differences in accuracy points, mean [95 % Student-t interval over seeds]:", ""]
for m in a.splits:
    for c in a.checkpoints:
        lines.append(f"- {m} − {a.free}, {c} %: " + format_seed_interval([acc(m, s, c) - acc(a.free, s, c) for s in seeds]))
    lines.append(f"- {m} − {a.free}, mean ≤ {last} %: " + format_seed_interval([mean_acc(m, s) - mean_acc(a.free, s) for s in seeds]))
pool_last = min(max(pool[s]) for s in seeds)  # the pool-based runs stop at 100 %: the goal line compares with that
for m in runs:
    lines.append(f"- {m} at {last} % − the pool at {pool_last} %: "
                 + format_seed_interval([acc(m, s, last) - 100 * pool[s][pool_last]["accuracy"] for s in seeds]))
a.out.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
