"""The RL effect in the report: probe reward of the trained vs the pretrained policy, per round.

Rows of generative methods carry the probe metrics (:mod:`signal_hf.rl.probe`); this draws both
reward curves over rounds with ± std bands over seeds (``probe_rewards.png``) and lists, per
method and round, the mean gain and the seeds whose gain is positive beyond its 95 % interval.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

__all__ = ["probe_table", "plot_probe_rewards"]


def _by_method_round(rows: Iterable[dict[str, Any]]) -> dict[str, dict[int, list[dict]]]:
    out: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("probe_reward_on") is not None:
            out[r["method"]][r["round"]].append(r)
    return out


def _mean_sd(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def probe_table(rows: Iterable[dict[str, Any]]) -> str:
    """Markdown: per method and round, both mean rewards (± std over seeds), the mean gain, and the
    seeds whose gain is positive beyond its interval (``probe_gain_low > 0``). Empty without probes."""
    data = _by_method_round(rows)
    if not data:
        return ""
    lines = ["| method | round | reward, adapter on | reward, adapter off | gain | seeds with gain > 0 beyond its 95 % interval |", "|---|---|---|---|---|---|"]
    for method in sorted(data):
        for rnd in sorted(data[method]):
            rs = sorted(data[method][rnd], key=lambda r: r["seed"])
            on, off, gain = (_mean_sd([r.get(k) for r in rs]) for k in ("probe_reward_on", "probe_reward_off", "probe_gain"))
            beyond = [str(r["seed"]) for r in rs if (r.get("probe_gain_low") or 0) > 0]
            lines.append(f"| {method} | {rnd} | {on[0]:.4g} ± {on[1]:.2g} | {off[0]:.4g} ± {off[1]:.2g} | {gain[0]:.3g} | {len(beyond)} of {len(rs)} ({', '.join(beyond) or 'none'}) |")
    return "\n".join(lines)


def plot_probe_rewards(rows: Iterable[dict[str, Any]], path: str | os.PathLike, title: str = "") -> Path | None:
    """``probe_rewards.png``: mean probe reward per round, adapter on (solid) and off (dashed), ± std
    over seeds, one colour per generative method. ``None`` when no row has a probe."""
    data = _by_method_round(rows)
    if not data:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in sorted(data):
        rounds = sorted(data[method])
        color = None
        for key, ls, label in (("probe_reward_on", "-", "adapter on"), ("probe_reward_off", "--", "adapter off")):
            stats = [_mean_sd([r.get(key) for r in data[method][x]]) for x in rounds]
            m = [s[0] for s in stats]
            sd = [s[1] for s in stats]
            (line,) = ax.plot(rounds, m, ls=ls, marker="o", ms=3, color=color, label=f"{method}: {label}")
            color = line.get_color()
            ax.fill_between(rounds, [a - b for a, b in zip(m, sd)], [a + b for a, b in zip(m, sd)], alpha=0.15, color=color)
    n = max((len(v) for d in data.values() for v in d.values()), default=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax.set_xlabel("round")
    ax.set_ylabel("probe reward (raw SIGnAL score, retrained classifier)")
    ax.set_title(title or "self-informing: trained vs pretrained generator", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=f"mean ± std over {n} seed(s)", title_fontsize=8)
    fig.tight_layout()
    out = Path(path)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out)
    return out
