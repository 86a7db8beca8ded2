"""One method pair at two generation lengths, side by side: AG News 0.1 % at 32 and 64 new tokens (#17).

The two grids share seeds, pools, classifier, annotator and RL budget; only ``generator.max_new_tokens``
differs. Methods keep their names in each grid, so this script tags them with the cap ("signal-gen @64")
and writes one report over both (``summary.md``, ``learning_curves.png``, the band-rule comparison of
every pair), plus ``caps.md``: per method, the per-seed accuracy difference (64 − 32) averaged over
the checkpoints named, with a Student-t 95 % interval over seeds, and how much of each round's
generation survived (kept / generated) and how much of what was acquired was synthetic.

    python scripts/compare_token_caps.py --short docs/results/ablation_ag_news_0.1 \\
        --long runs/ablation_ag_news_64tok/signal_gen runs/ablation_ag_news_64tok/norl \\
        --out docs/results/ablation_ag_news_0.1_64tok/vs_32tok
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from signal_hf.results import accuracy_curves, read_results, write_report

METHODS = ("signal-gen", "signal-gen-norl")


def tagged(folders: list[str], cap: int, upto: int) -> list[dict]:
    rows = [r for f in folders for r in read_results(f) if r["method"] in METHODS and r["labeled_percent"] <= upto]
    return [{**r, "method": f"{r['method']} @{cap}"} for r in rows]


def interval(d: np.ndarray) -> str:
    if len(d) < 2:
        return f"{d.mean():+.1f}" if len(d) else "—"
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}]"


def caps_table(rows: list[dict], short: int, long: int, spans: dict[str, range]) -> str:
    acc = accuracy_curves(rows)
    lines = ["| method | " + " | ".join(f"@{long} − @{short}, {name}" for name in spans) + " | per seed, last span | kept / generated | synthetic share of acquired |",
             "|---|" + "---|" * (len(spans) + 3)]
    for m in METHODS:
        a, b = acc.get(f"{m} @{short}", {}), acc.get(f"{m} @{long}", {})
        seeds = sorted(set(a) & set(b))
        cells, per_seed = [], []
        for span in spans.values():
            ds = []
            for s in seeds:
                shared = [p for p in span if p in a[s] and p in b[s]]
                if shared:
                    ds.append(100 * np.mean([b[s][p] - a[s][p] for p in shared]))
            cells.append(interval(np.asarray(ds)))
            per_seed = ds
        share = []
        for cap in (short, long):
            rs = [r for r in rows if r["method"] == f"{m} @{cap}" and r.get("generated")]
            kept = sum(r["kept"] for r in rs) / max(1, sum(r["generated"] for r in rs))
            syn = sum(r.get("acquired_synthetic", 0) for r in rs) / max(1, sum(r.get("acquired", 0) for r in rs))
            share.append((kept, syn))
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {', '.join(f'{x:+.1f}' for x in per_seed)} | "
                     f"{share[0][0]:.0%} @{short} → {share[1][0]:.0%} @{long} | {share[0][1]:.0%} @{short} → {share[1][1]:.0%} @{long} |")
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
    rows = tagged(args.short, short, args.upto) + tagged(args.long, long, args.upto)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(out, title=f"AG News 0.1 %: signal-gen and signal-gen-norl at {short} and {long} new tokens")
    spans = {"20–50 %": range(20, 51, 10), "60–100 %": range(60, args.upto + 1, 10), f"{args.upto} %": range(args.upto, args.upto + 1)}
    text = (f"# {long} against {short} new tokens, per seed\n\nAccuracy difference in points (same seed, same checkpoint), "
            f"averaged over each span; mean [Student-t 95 % interval] over seeds.\n\n{caps_table(rows, short, long, spans)}\n")
    (out / "caps.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
