"""``signal-hf inspect RUN_DIR [--round N]``: what the generator wrote, round by round, readable.

For every generative trial (``*-gen`` methods) and round: candidates generated, kept and dropped by
reason; the synthetic items acquired, with their oracle labels and acquisition scores; the probe of
the RL effect (adapter on vs off: mean rewards, the gain and its 95 % interval, valid and duplicate
shares, the oracle's labels, distance to the nearest real item); and the five best and worst
rewarded probe completions of the trained policy; first, per method and round, the oracle's labels of
the acquired synthetic items (label names from each trial's saved recipe). Read from ``results.jsonl``
and the run's local round store (texts); written as markdown.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .errors import SignalHFError
from .results import read_results
from .types import display_text

__all__ = ["inspect_run"]


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _stores(run_dir: Path) -> list[Any]:
    from .store import LocalStore

    folders = [run_dir / "store"] + sorted(run_dir.glob("seeds/seed-*/store"))
    return [LocalStore(f) for f in folders if f.is_dir()]


def _label_names(run_dir: Path, seed: Any) -> tuple[str, ...] | None:
    """The trial's label names in index order, from its saved recipe (a label's index is all the store keeps)."""
    import yaml

    from .config import DataConfig
    from .data import label_names_of

    for recipe in (run_dir / "seeds" / f"seed-{seed}" / "recipe.yaml", run_dir / "recipe.yaml"):
        if recipe.is_file():
            data = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("data") or {}
            return label_names_of(DataConfig(**data))
    return None


def _acquired_rows(stores: list[Any], row: dict) -> dict[str, dict]:
    """id → the labeled row of the synthetic items acquired in ``row``'s round (empty without a store)."""
    run_id = f"{row['method']}-seed{row['seed']}"
    for store in stores:
        if row["round"] in store.rounds(run_id):
            labeled = store.load_round(run_id, row["round"]).datasets["labeled"]
            return {r["id"]: r for r in labeled if r["source"] == "synthetic" and r["round_acquired"] == row["round"]}
    return {}


def _probe_lines(row: dict) -> list[str]:
    if row.get("probe_reward_on") is None and row.get("probe_prompts") is None:
        return ["No probe of the RL effect this round (`rl.probe_prompts: 0`)."]
    lines = [
        f"**Probe** ({row.get('probe_prompts')} fixed prompts, adapter on vs off): gain {_fmt(row.get('probe_gain'))} "
        f"[{_fmt(row.get('probe_gain_low'))}, {_fmt(row.get('probe_gain_high'))}] (95 % paired, jackknife t)",
        "",
        "| policy | mean reward | valid | duplicates | oracle labels | distance to nearest real |",
        "|---|---|---|---|---|---|",
    ]
    for side, name in (("on", "adapter on (trained)"), ("off", "adapter off (pretrained)")):
        labels = row.get(f"probe_labels_{side}") or {}
        shown = ", ".join(f"{k} {v}" for k, v in labels.items()) or "–"
        lines.append(
            f"| {name} | {_fmt(row.get(f'probe_reward_{side}'))} | {_fmt(row.get(f'probe_valid_{side}'), 2)} | "
            f"{_fmt(row.get(f'probe_duplicate_{side}'), 2)} | {shown} | {_fmt(row.get(f'probe_relevance_{side}'))} |"
        )
    for key, title in (("probe_top_on", "Top-rewarded probe completions"), ("probe_bottom_on", "Bottom-rewarded probe completions")):
        items = row.get(key) or []
        if items:
            lines += ["", f"{title}:", ""] + [f"- {_fmt(it['reward'])}: {_cell(it['text'])}" for it in items]
    return lines


def _label_name(label: Any, label_names: tuple[str, ...]) -> str:
    return label_names[label] if isinstance(label, int) and 0 <= label < len(label_names) else _fmt(label)


def _round_section(row: dict, acquired: dict[str, dict], label_names: tuple[str, ...]) -> list[str]:
    dropped = row.get("dropped_by_reason") or {}
    out = [
        f"## {row['method']} seed {row['seed']} — round {row['round']} ({row['labeled']} labeled, accuracy {100 * row['accuracy']:.1f} %)",
        "",
        f"Generated {row.get('generated', 0)}, kept {row.get('kept', 0)}, dropped {row.get('dropped', 0)}"
        + (f" ({', '.join(f'{k} {v}' for k, v in dropped.items())})" if dropped else "") + ".",
        "",
    ]
    ids = [i for i in row.get("selected_ids") or [] if i.startswith("syn-")]
    scores = row.get("selected_scores") or {}
    out.append(f"Acquired {len(ids)} synthetic item(s) of {row.get('acquired', 0)}:")
    if ids:
        out += ["", "| id | oracle label | score | text |", "|---|---|---|---|"]
        for i in ids:
            r = acquired.get(i, {})
            out.append(f"| `{i}` | {_label_name(r.get('label'), label_names)} | {_fmt(scores.get(i))} | {_cell(display_text(r) if 'text' in r else '(text in the store)')} |")
    return out + [""] + _probe_lines(row) + [""]


def _label_distribution(gen: list[dict], acquired: dict[tuple, dict[str, dict]], names: dict[Any, tuple[str, ...]]) -> list[str]:
    """Per method and round, the oracle's labels of the acquired synthetic items, summed over seeds (the
    paper's label-bias reading: e.g. QNLI's synthetic picks leaning to one class)."""
    counts: dict[tuple[str, int], Counter] = {}
    for row in gen:
        picked = acquired[(row["method"], row["seed"], row["round"])].values()
        c = counts.setdefault((row["method"], row["round"]), Counter())
        c.update(_label_name(r.get("label"), names[row["seed"]]) for r in picked)
    seen = sorted({k for c in counts.values() for k in c})
    if not seen:
        return []
    lines = [
        "## Oracle labels of the acquired synthetic items, per round (summed over seeds)",
        "",
        "| method | round | " + " | ".join(seen) + " | total |",
        "|---|---|" + "---|" * (len(seen) + 1),
    ]
    for (method, rnd), c in sorted(counts.items()):
        lines.append(f"| {method} | {rnd} | " + " | ".join(str(c.get(k, 0)) for k in seen) + f" | {sum(c.values())} |")
    total: dict[str, Counter] = {}
    for (method, _), c in counts.items():
        total.setdefault(method, Counter()).update(c)
    for method, c in sorted(total.items()):
        lines.append(f"| {method} | all | " + " | ".join(str(c.get(k, 0)) for k in seen) + f" | {sum(c.values())} |")
    return lines + [""]


def inspect_run(run_dir: str | Path, round_idx: int | None = None) -> str:
    """The markdown report of a run folder's generative rounds (all, or round ``round_idx``)."""
    run_dir = Path(run_dir)
    try:
        rows = read_results(run_dir)
    except FileNotFoundError:
        raise SignalHFError(f"inspect: {run_dir} has no results.jsonl (fix: pass the output_dir of a signal-hf run)") from None
    gen = [r for r in rows if r.get("round", 0) > 0 and "generated" in r]
    if round_idx is not None:
        gen = [r for r in gen if r["round"] == round_idx]
    if not gen:
        what = f"round {round_idx} of " if round_idx is not None else ""
        raise SignalHFError(f"inspect: no generative round in {what}{run_dir} (fix: inspect a run of a *-gen method, e.g. make demo-signal)")
    gen.sort(key=lambda r: (r["method"], r["seed"], r["round"]))
    stores = _stores(run_dir)
    names = {seed: _label_names(run_dir, seed) or () for seed in {r["seed"] for r in gen}}
    acquired = {(r["method"], r["seed"], r["round"]): _acquired_rows(stores, r) for r in gen}
    lines = [f"# What the generator wrote: {run_dir}", ""] + _label_distribution(gen, acquired, names)
    for row in gen:
        lines += _round_section(row, acquired[(row["method"], row["seed"], row["round"])], names[row["seed"]])
    return "\n".join(lines).rstrip() + "\n"
