"""A re-run of a committed grid, seed by seed: where its path left the committed one, its accuracies at the
checkpoints against the committed ones, and the probe gain's rounds beyond its 95 % interval in each run.

Run: .venv/bin/python scripts/rerun_vs_committed.py runs/ablation_sst2/signal_gen \
       docs/results/ablation_sst2_0.1_to200_6seeds/results.jsonl --out docs/results/ablation_sst2_0.1_rerun/vs_committed.md
"""
import argparse
from pathlib import Path

from signal_hf.results import format_seed_interval, read_results, rows_by_seed

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("rerun", help="run folder of the re-run (results.jsonl, or seeds/seed-N/results.jsonl)")
p.add_argument("committed", type=Path, help="the committed results.jsonl")
p.add_argument("--method", default="signal-gen")
p.add_argument("--versus", default="signal-gen-norl", help="a committed method to set both runs against, same seeds")
p.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100, 150, 200], help="labelled %% of the pool")
p.add_argument("--out", type=Path, required=True)
a = p.parse_args()


committed = read_results(a.committed)
new, old, ref = rows_by_seed(read_results(a.rerun), a.method), rows_by_seed(committed, a.method), rows_by_seed(committed, a.versus)
seeds = sorted(s for s in new if s in old)


def beyond(rows: dict[int, dict]) -> str:
    """Rounds whose probe gain is beyond its interval: 'positive/negative (rounds of the positive ones)'."""
    pos = [r["round"] for r in rows.values() if r.get("probe_gain_low") is not None and r["probe_gain_low"] > 0]
    neg = [r["round"] for r in rows.values() if r.get("probe_gain_high") is not None and r["probe_gain_high"] < 0]
    return f"{len(pos)}/{len(neg)} of {sum(1 for r in rows.values() if 'probe_gain' in r)}" + (f" (rounds {', '.join(map(str, sorted(pos)))})" if pos else "")


lines = [f"# `{a.rerun}` against `{a.committed}`, method {a.method}", "",
         "The first round whose acquired items differ; accuracy (%) re-run / committed at each checkpoint; the probe gain's "
         "seed-rounds beyond its 95 % interval, positive/negative (the re-run's interval is the jackknife one; "
         "rows committed before 2026-12-06 carry the percentile bootstrap).", "",
         "| seed | rounds compared | first round that differs | " + " | ".join(f"{c} %" for c in a.checkpoints) + " | probe beyond, re-run | probe beyond, committed |",
         "|---|---|---|" + "---|" * len(a.checkpoints) + "---|---|"]
diffs: dict[int, list[float]] = {c: [] for c in a.checkpoints}
for s in seeds:
    common = sorted(set(new[s]) & set(old[s]), key=lambda c: new[s][c]["round"])
    first = next((new[s][c]["round"] for c in common if new[s][c].get("selected_ids") != old[s][c].get("selected_ids")), None)
    cells = []
    for c in a.checkpoints:
        if c in new[s] and c in old[s]:
            x, y = 100 * new[s][c]["accuracy"], 100 * old[s][c]["accuracy"]
            diffs[c].append(x - y)
            cells.append(f"{x:.1f} / {y:.1f}")
        else:
            cells.append("—")
    lines.append(f"| {s} | {len(common)} | {first if first is not None else 'none'} | " + " | ".join(cells) + f" | {beyond(new[s])} | {beyond({k: old[s][k] for k in new[s] if k in old[s]})} |")


lines += ["", "Re-run − committed, mean [95 % Student-t interval over seeds]:", ""]
lines += [f"- {c} %: {format_seed_interval(d, digits=2)}" for c, d in diffs.items() if len(d) >= 2]
lines += ["", f"Each run − the committed {a.versus} of the same seed (accuracy points):", "", f"| checkpoint | re-run − {a.versus} | committed − {a.versus} |", "|---|---|---|"]
for c in a.checkpoints:
    both = [s for s in seeds if c in new[s] and c in old[s] and c in ref.get(s, {})]
    if len(both) >= 2:
        lines.append(f"| {c} % | " + " | ".join(format_seed_interval([100 * (run[s][c]["accuracy"] - ref[s][c]["accuracy"]) for s in both], digits=2) for run in (new, old)) + " |")
a.out.parent.mkdir(parents=True, exist_ok=True)
a.out.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
