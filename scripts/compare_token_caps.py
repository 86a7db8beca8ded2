"""One method pair at two generation lengths, side by side: AG News 0.1 % at 32 and 64 new tokens (#17).

The two grids share seeds, pools, classifier, annotator and RL budget; only ``generator.max_new_tokens``
differs. Methods keep their names in each grid, so this script tags them with the cap ("signal-gen @64")
and writes one report over both (``summary.md``, ``learning_curves.png``, the band-rule comparison of
every pair), plus ``caps.md``: per method, the per-seed accuracy difference (64 − 32) averaged over
the checkpoints named, with a Student-t 95 % interval over seeds, and how much of each round's
generation survived (kept / generated) and how much of what was acquired was synthetic. The probe
intervals are recomputed with today's interval from the rows' per-prompt rewards; rows without them
(written before those were recorded) show no interval.

    python scripts/compare_token_caps.py --short docs/results/ablation_ag_news_0.1 \\
        --long runs/ablation_ag_news_64tok/signal_gen runs/ablation_ag_news_64tok/norl \\
        --out docs/results/ablation_ag_news_0.1_64tok/vs_32tok
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from signal_hf.results import accuracy_curves, read_results, seed_interval, write_report
from signal_hf.rl.probe import gain_interval

METHODS = ("signal-gen", "signal-gen-norl")


def tagged(folders: list[str], cap: int, upto: int) -> list[dict]:
    rows = [r for f in folders for r in read_results(f) if r["method"] in METHODS and r["labeled_percent"] <= upto]
    return [{**r, "method": f"{r['method']} @{cap}"} for r in rows]


def recompute_probe_interval(row: dict) -> dict:
    """The probe interval of today's :func:`gain_interval` from the row's per-prompt rewards, so that both
    caps' "beyond its interval" counts use one method. Rows written before the per-prompt rewards were
    recorded (the percentile-bootstrap era) lose their interval instead of mixing two methods."""
    if "probe_gain" not in row:
        return row
    if row.get("probe_rewards_on") is None:
        return {**row, "probe_gain_low": None, "probe_gain_high": None}
    on, off = (torch.tensor([float("nan") if v is None else v for v in row[f"probe_rewards_{side}"]]) for side in ("on", "off"))
    _, lo, hi = gain_interval(on, off)
    return {**row, "probe_gain_low": lo, "probe_gain_high": hi}


def interval(d: np.ndarray) -> str:
    if len(d) < 2:
        return f"{d.mean():+.1f}" if len(d) else "—"
    mean, low, high = seed_interval(d)
    return f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]"


def caps_table(rows: list[dict], short: int, long: int, spans: dict[str, range]) -> str:
    acc = accuracy_curves(rows)
    lines = ["| method | " + " | ".join(f"@{long} − @{short}, {name}" for name in spans) + " | kept / generated | synthetic share of acquired |",
             "|---|" + "---|" * (len(spans) + 2)]
    for m in METHODS:
        a, b = acc.get(f"{m} @{short}", {}), acc.get(f"{m} @{long}", {})
        seeds = sorted(set(a) & set(b))
        cells = []
        for span in spans.values():
            ds = {}
            for s in seeds:
                shared = [p for p in span if p in a[s] and p in b[s]]
                if shared:
                    ds[s] = 100 * np.mean([b[s][p] - a[s][p] for p in shared])
            cells.append(interval(np.asarray(list(ds.values()))) + " (" + ", ".join(f"s{k} {x:+.1f}" for k, x in ds.items()) + ")")
        kept, syn = [], []
        for cap in (short, long):
            rs = [r for r in rows if r["method"] == f"{m} @{cap}" and r.get("generated")]
            kept.append(f"{sum(r['kept'] for r in rs) / sum(r['generated'] for r in rs):.0%} @{cap}" if rs else f"— @{cap}")
            acquired = sum(r.get("acquired", 0) for r in rs)
            syn.append(f"{sum(r.get('acquired_synthetic', 0) for r in rs) / acquired:.0%} @{cap}" if acquired else f"— @{cap}")
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {' → '.join(kept)} | {' → '.join(syn)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", nargs="+", required=True, help="run or report folders of the shorter cap")
    ap.add_argument("--long", nargs="+", required=True, help="run or report folders of the longer cap")
    ap.add_argument("--caps", nargs=2, type=int, default=(32, 64), metavar=("SHORT", "LONG"))
    ap.add_argument("--upto", type=int, default=100, help="last checkpoint compared, in percent of the pool")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    short, long = args.caps
    rows = [recompute_probe_interval(r) for r in tagged(args.short, short, args.upto) + tagged(args.long, long, args.upto)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    notes = sorted({n for r in rows for n in r.get("notes", [])})
    if any(r.get("probe_gain") is not None and r.get("probe_rewards_on") is None for r in rows):
        notes.append("Probe rows without per-prompt rewards (written before 2026-12-06) carry no interval here, so their "
                     "'beyond its 95 % interval' count is 0 by construction; their percentile-bootstrap counts are in their own report.")
    write_report(out, title=f"AG News 0.1 %: signal-gen and signal-gen-norl at {short} and {long} new tokens", notes=notes)
    spans = {"20–50 %": range(20, 51, 10), "60–100 %": range(60, args.upto + 1, 10), f"{args.upto} %": range(args.upto, args.upto + 1)}
    text = (f"# {long} against {short} new tokens, per seed\n\nAccuracy difference in points (same seed, same checkpoint), "
            f"averaged over each span; mean [Student-t 95 % interval] over seeds (each seed's value).\n\n{caps_table(rows, short, long, spans)}\n")
    (out / "caps.md").write_text(text)
    (out / "results.jsonl").unlink()  # the tagged copy of rows committed elsewhere; this script rebuilds it
    print(text)


if __name__ == "__main__":
    main()
