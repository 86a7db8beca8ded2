"""Results: one JSON line per (method, seed, round), a mean ± std table and learning curves.

``results.jsonl`` is readable with ``datasets.load_dataset("json", data_files=...)``; rows are keyed
by (method, seed, round) and a re-written key (a resumed round) replaces the earlier row.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ResultsLog", "summarize", "seed_interval", "format_seed_interval", "rows_by_seed", "format_table", "compare_methods", "format_comparison", "compare_endpoints", "format_endpoints", "plot_learning_curves", "write_report"]

RESULTS_FILE = "results.jsonl"
KEY = ("method", "seed", "round")


class ResultsLog:
    """JSONL log of round results, one row per (method, seed, round) key; each write is fsynced.

    A row whose key is already in the file replaces it (the file is rewritten atomically), so a
    resumed round never leaves a duplicate; a torn last line of a killed write is dropped first."""

    def __init__(self, output_dir: str | os.PathLike):
        self.path = Path(output_dir) / RESULTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _lines(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines(keepends=True) if self.path.is_file() else []

    def _rewrite(self, lines: list[str]) -> None:
        write_text_atomic(self.path, "".join(lines))

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, sort_keys=True, default=float) + "\n"
        lines = self._lines()
        whole = [x for x in lines if x.endswith("\n")]
        kept = [x for x in whole if _key_of(x) != tuple(row.get(k) for k in KEY)]
        if len(kept) != len(lines):  # a duplicate key or a torn last line
            self._rewrite(kept + [line])
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def discard_after(self, round_idx: int) -> int:
        """Drop the rows of rounds after ``round_idx`` (``resume --from-round``); returns how many."""
        lines = [x for x in self._lines() if x.endswith("\n")]
        kept = [x for x in lines if not isinstance((_key_of(x) or KEY)[2], int) or _key_of(x)[2] <= round_idx]
        if len(kept) != len(lines):
            self._rewrite(kept)
        return len(lines) - len(kept)

    def rows(self) -> list[dict[str, Any]]:
        return read_results(self.path.parent)


def _key_of(line: str) -> tuple | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return tuple(row.get(k) for k in KEY) if isinstance(row, dict) else None


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of ``results.jsonl`` in ``path`` (a folder or the file), later duplicates of a key winning.

    A ``signal-hf grid`` output folder has no ``results.jsonl`` of its own: its seeds' files
    (``seeds/seed-*/results.jsonl``) are read instead. A torn last line (a run killed mid-write) is ignored.
    """
    p = Path(path)
    files = [p]
    if p.is_dir():
        files = [p / RESULTS_FILE]
        if not files[0].is_file():
            files = sorted(p.glob(f"seeds/seed-*/{RESULTS_FILE}")) or files
    if not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no {RESULTS_FILE} in {path} (fix: pass the output_dir of a run or of a grid)")
    latest: dict[tuple, dict] = {}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            latest[tuple(row.get(k) for k in KEY)] = row
    return sorted(latest.values(), key=lambda r: (r["method"], r["seed"], r["round"]))


def rows_by_seed(rows: Iterable[dict[str, Any]], method: str) -> dict[int, dict[int, dict[str, Any]]]:
    """One method's rows as ``{seed: {checkpoint %: row}}`` (``step_percent``), for comparing runs seed by seed."""
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for r in rows:
        if r["method"] == method:
            out.setdefault(r["seed"], {})[r["step_percent"]] = r
    return out


def seed_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of per-seed values (e.g. per-seed differences between two methods):
    ``(mean, low, high)``; at least two values."""
    import numpy as np
    from scipy.stats import t as student_t

    x = np.asarray(list(values), dtype=float)
    if len(x) < 2:
        raise ValueError(f"an interval over seeds needs at least 2 values, got {len(x)}")
    half = float(student_t.ppf(0.5 + level / 2, len(x) - 1)) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def format_seed_interval(values: Iterable[float], digits: int = 1) -> str:
    """``seed_interval`` as text: ``+m [+lo, +hi]; per seed +v0, +v1, ...`` (interval to ``digits`` decimals)."""
    values = list(values)
    mean, low, high = seed_interval(values)
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]; per seed " + ", ".join(f"{v:+.1f}" for v in values)


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std of accuracy per (method, step %) over seeds."""
    import numpy as np

    groups: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        groups.setdefault((r["method"], int(r["step_percent"])), []).append(float(r["accuracy"]))
    out = []
    for (method, step), accs in sorted(groups.items()):
        a = np.asarray(accs)
        out.append({"method": method, "step_percent": step, "mean": float(a.mean()), "std": float(a.std(ddof=0)), "n": len(a)})
    return out


def format_table(summary: list[dict[str, Any]]) -> str:
    """A Markdown table: one row per method, one column per step (mean ± std accuracy, in %)."""
    steps = sorted({s["step_percent"] for s in summary})
    methods = sorted({s["method"] for s in summary}, key=lambda m: (m.startswith("signal"), m))
    cell = {(s["method"], s["step_percent"]): s for s in summary}
    head = "| method | " + " | ".join(f"{p}%" for p in steps) + " |"
    sep = "|---|" + "---|" * len(steps)
    lines = [head, sep]
    for m in methods:
        vals = []
        for p in steps:
            s = cell.get((m, p))
            vals.append("" if s is None else f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}")
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def band_verdict(a: dict[str, float], b: dict[str, float]) -> str:
    """``win`` when ``a``'s mean − std band lies wholly above ``b``'s mean + std, ``loss`` when wholly below,
    else ``tie`` (``a``, ``b``: :func:`summarize` cells)."""
    if a["mean"] - a["std"] > b["mean"] + b["std"]:
        return "win"
    if a["mean"] + a["std"] < b["mean"] - b["std"]:
        return "loss"
    return "tie"


def accuracy_curves(rows: Iterable[dict[str, Any]]) -> dict[str, dict[Any, dict[int, float]]]:
    """method → seed → step % → accuracy: each trial's learning curve."""
    curves: dict[str, dict[Any, dict[int, float]]] = {}
    for r in rows:
        curves.setdefault(r["method"], {}).setdefault(r["seed"], {})[int(r["step_percent"])] = float(r["accuracy"])
    return curves


def compare_methods(rows: Iterable[dict[str, Any]], prefix: str = "signal") -> list[dict[str, Any]]:
    """Each method named ``prefix*`` against every other method, on the checkpoints both reached.

    At each shared checkpoint the method *wins* when its mean − std band lies wholly above the other's
    mean + std, *loses* when wholly below, and *ties* when the bands overlap (a deliberately strict
    reading for 3 seeds: no test is claimed). ``mean``/``std`` are the per-seed average accuracy over
    those checkpoints (the normalised area under the learning curve), then mean ± std over seeds
    present for every shared checkpoint of that method.
    """
    import numpy as np

    rows = list(rows)
    cell = {(s["method"], s["step_percent"]): s for s in summarize(rows)}
    curves = accuracy_curves(rows)
    steps_of = {m: {p for c in per_seed.values() for p in c} for m, per_seed in curves.items()}

    def area(method: str, steps: list[int]) -> tuple[float, float, int]:
        per_seed = [np.mean([c[p] for p in steps]) for c in curves[method].values() if all(p in c for p in steps)]
        a = np.asarray(per_seed, dtype=float)
        return (float(a.mean()), float(a.std(ddof=0)), len(a)) if len(a) else (float("nan"), float("nan"), 0)

    out = []
    for m in sorted(x for x in curves if x.startswith(prefix)):
        for other in sorted(x for x in curves if x != m):
            steps = sorted(steps_of[m] & steps_of[other])
            if not steps:
                continue
            verdicts = [band_verdict(cell[(m, p)], cell[(other, p)]) for p in steps]
            (ma, sa, na), (mb, sb, nb) = area(m, steps), area(other, steps)
            out.append(
                {
                    "method": m,
                    "other": other,
                    "steps": steps,
                    "wins": verdicts.count("win"),
                    "ties": verdicts.count("tie"),
                    "losses": verdicts.count("loss"),
                    "verdicts": verdicts,
                    "mean": ma,
                    "std": sa,
                    "other_mean": mb,
                    "other_std": sb,
                    "n": min(na, nb),
                }
            )
    return out


def format_comparison(comparison: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`compare_methods`: wins/ties/losses and mean accuracy over shared checkpoints."""
    head = "| method | vs | checkpoints | wins | ties | losses | mean acc. (method) | mean acc. (vs) |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for c in comparison:
        span = f"{c['steps'][0]}–{c['steps'][-1]}% ({len(c['steps'])})"
        lines.append(
            f"| {c['method']} | {c['other']} | {span} | {c['wins']} | {c['ties']} | {c['losses']} | "
            f"{100 * c['mean']:.1f} ± {100 * c['std']:.1f} | {100 * c['other_mean']:.1f} ± {100 * c['other_std']:.1f} |"
        )
    return "\n".join(lines)


def compare_endpoints(rows: Iterable[dict[str, Any]], prefix: str = "signal") -> list[dict[str, Any]]:
    """Each method named ``prefix*`` at its last checkpoint against every method that stopped earlier, at
    that method's last checkpoint: the paper's claim is SIGnAL at 200 % above the pool baselines at 100 %.

    ``verdict`` is the band rule of :func:`compare_methods` on the two end cells; ``diff``/``diff_std`` are
    the mean ± std over the seeds both have of the per-seed difference (method − other), and
    ``seed_diffs`` each seed's difference in seed order.
    """
    import numpy as np

    rows = list(rows)
    cell = {(s["method"], s["step_percent"]): s for s in summarize(rows)}
    acc = accuracy_curves(rows)
    end = {m: max(p for c in per_seed.values() for p in c) for m, per_seed in acc.items()}
    out = []
    for m in sorted(x for x in acc if x.startswith(prefix)):
        for other in sorted(x for x in acc if x != m and end[x] < end[m]):
            a, b = cell[(m, end[m])], cell[(other, end[other])]
            seeds = sorted(s for s in acc[m] if s in acc[other] and end[m] in acc[m][s] and end[other] in acc[other][s])
            d = np.asarray([acc[m][s][end[m]] - acc[other][s][end[other]] for s in seeds], dtype=float)
            out.append(
                {
                    "method": m,
                    "at": end[m],
                    "mean": a["mean"],
                    "std": a["std"],
                    "other": other,
                    "other_at": end[other],
                    "other_mean": b["mean"],
                    "other_std": b["std"],
                    "verdict": band_verdict(a, b),
                    "diff": float(d.mean()) if len(d) else float("nan"),
                    "diff_std": float(d.std(ddof=0)) if len(d) else float("nan"),
                    "seed_diffs": [float(x) for x in d],
                }
            )
    return out


def format_endpoints(comparison: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`compare_endpoints` (accuracies and differences in points)."""
    lines = [
        "| method | at | accuracy | vs | at | accuracy | verdict | difference | per seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparison:
        seeds = ", ".join(f"{100 * x:+.1f}" for x in c["seed_diffs"])
        lines.append(
            f"| {c['method']} | {c['at']}% | {100 * c['mean']:.1f} ± {100 * c['std']:.1f} | {c['other']} | {c['other_at']}% | "
            f"{100 * c['other_mean']:.1f} ± {100 * c['other_std']:.1f} | {c['verdict']} | "
            f"{100 * c['diff']:+.1f} ± {100 * c['diff_std']:.1f} | {seeds} |"
        )
    return "\n".join(lines)


#: Line style and marker of the SIGnAL variants after the solid one, in order (then cycled).
_VARIANT_LOOKS = (("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1, 1, 1)), "v"))


def variant_styles(methods: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib styles of the SIGnAL variants (methods named ``signal*``): all black and thick, so they
    stand out from the baselines, and each with its own line style and marker, so that no two look alike.
    ``signal-gen`` (else the first generative variant, else the first) is the solid one."""
    variants = sorted(m for m in methods if m.startswith("signal"))
    if not variants:
        return {}
    main = "signal-gen" if "signal-gen" in variants else next((m for m in variants if m.endswith("-gen")), variants[0])
    rest = [m for m in variants if m != main]
    styles = {main: dict(lw=2.4, color="black", ls="-", marker="o", ms=3)}
    for i, m in enumerate(rest):
        ls, marker = _VARIANT_LOOKS[i % len(_VARIANT_LOOKS)]
        styles[m] = dict(lw=2.4 if i < len(_VARIANT_LOOKS) else 1.4, color="black", ls=ls, marker=marker, ms=4)
    return styles


def plot_learning_curves(summary: list[dict[str, Any]], path: str | os.PathLike, title: str = "") -> Path:
    """Accuracy vs. acquired data (% of the real pool), mean line and ± std band per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = sorted({s["method"] for s in summary})
    signal_styles = variant_styles(methods)
    for method in methods:
        pts = sorted((s for s in summary if s["method"] == method), key=lambda s: s["step_percent"])
        x = [s["step_percent"] for s in pts]
        m = [100 * s["mean"] for s in pts]
        sd = [100 * s["std"] for s in pts]
        style = signal_styles.get(method, dict(lw=1.4, marker="o", ms=3))
        (line,) = ax.plot(x, m, label=method, **style)
        ax.fill_between(x, [a - b for a, b in zip(m, sd)], [a + b for a, b in zip(m, sd)], alpha=0.15, color=line.get_color())
    ax.set_xlabel("acquired data (% of the real pool)")
    ax.set_ylabel("test accuracy (%)")
    n = max((s["n"] for s in summary), default=0)
    ax.set_title(title or "learning curves", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=f"mean ± std over {n} seed(s)", title_fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a fsynced temporary file and a rename: readers never see a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


REPORTED_PACKAGES = ("signal-hf", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "evaluate")


def software_versions(packages: Iterable[str] = REPORTED_PACKAGES, missing: str = "not installed") -> dict[str, str]:
    """Installed versions of ``packages`` (by default those a result depends on); ``missing`` when absent."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = missing
    return out


def environment_line(rows: list[dict]) -> str:
    """Which ``requirements.lock`` the rows were made under (each row records its lock's digest) and
    whether the environment writing the report still matches that lock."""
    from .environment import lock_digest, lock_mismatches

    made = Counter(r.get("lock") or "none" for r in rows)
    if list(made) == ["none"]:
        text = "Environment: the rows record no lock (made outside a locked checkout, or before locks were recorded)"
    elif len(made) == 1:
        text = f"Environment: every row made under requirements.lock {next(iter(made))}"
    else:
        text = "Environment: rows made under different locks: " + ", ".join(f"{k} ({n} rows)" for k, n in sorted(made.items()))
    here = lock_digest()
    if here is None:
        return text + "; this report was written without a lock file."
    drift = lock_mismatches()
    state = "matches it" if not drift else f"differs from it in {len(drift)} packages ({'; '.join(drift[:3])})"
    return text + f"; this report was written under lock {here}, and the installed environment {state}."


def is_one_of(folder: str | os.PathLike, runs: Iterable[str | os.PathLike]) -> bool:
    """Whether ``folder`` is (after resolving links and relative parts) one of the run folders ``runs``."""
    return Path(folder).resolve() in {Path(r).resolve() for r in runs}


def _analysis_sections(rows: list[dict[str, Any]], out: Path, title: str) -> str:
    """The report's sections after the table: SIGnAL vs each method, SIGnAL's end against the others'
    ends, the RL effect (and its plot), where trials stopped early."""
    from .probe_report import plot_probe_rewards, probe_table

    text = ""
    comparison = compare_methods(rows)
    if comparison:
        text += (
            "\nSIGnAL against each other method on the checkpoints both reached: a *win* (*loss*) is a checkpoint "
            "where the mean ± std bands do not overlap and SIGnAL is above (below); otherwise a *tie*. Mean "
            "accuracy = each seed's average over those checkpoints, mean ± std over seeds.\n\n"
            + format_comparison(comparison) + "\n"
        )
    endpoints = compare_endpoints(rows)
    if endpoints:
        text += (
            "\nSIGnAL at its last checkpoint against each method that stopped earlier, at that method's last "
            "checkpoint (the paper's claim: SIGnAL at 200 % above every pool baseline at 100 %). Verdict: the "
            "band rule above; difference: per-seed SIGnAL − method in points, mean ± std over seeds.\n\n"
            + format_endpoints(endpoints) + "\n"
        )
    probes = probe_table(rows)
    if probes:
        text += "\nThe RL effect (`rl.probe_prompts`): the same probe prompts sampled by the trained (adapter on) and the pretrained (adapter off) generator, scored with the round's reward; `probe_rewards.png` draws both.\n\n" + probes + "\n"
        plot_probe_rewards(rows, out / "probe_rewards.png", title=title)
    stops = stopping_lines(rows)
    if stops:
        text += "\nStopped early (`loop.stop_when`):\n" + "".join(f"- {line}\n" for line in stops)
    return text


def stopping_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Where each trial's stopping criteria fired: one line per trial that stopped early."""
    fired = sorted((r["method"], r["seed"], r["round"], r.get("step_percent"), r["labeled"], r["stopped_by"]) for r in rows if r.get("stopped_by"))
    return [f"{m} seed {s}: after round {r} ({p} % of the pool, {n} labels) by {', '.join(by)}" for m, s, r, p, n, by in fired]


def write_report(
    output_dir: str | os.PathLike,
    title: str = "",
    notes: Iterable[str] = (),
    *,
    sources: Iterable[str | os.PathLike] = (),
    keep_rows: bool = False,
) -> tuple[str, Path]:
    """Write ``summary.md`` (table + notes), ``summary.json`` and ``learning_curves.png`` into ``output_dir``.

    Rows come from ``output_dir/results.jsonl``, or from the ``results.jsonl`` of every run folder in
    ``sources`` (e.g. a pool-based run and a generative SIGnAL run in one table and plot).
    ``keep_rows`` also writes the rows read to ``output_dir/results.jsonl``, so a separate report
    folder (e.g. one committed under ``docs/results/``) keeps every seed's raw rows and redraws on its
    own; it is refused when ``output_dir`` is one of the sources. (A grid's report does not keep rows:
    a ``results.jsonl`` in the grid folder would hide its seeds' files from :func:`read_results`.)
    """
    out = Path(output_dir)
    sources = list(sources) or [out]
    if keep_rows and is_one_of(out, sources):
        raise ValueError(f"the report folder {out} is one of the runs it reads: write the report to another folder")
    rows = [row for src in sources for row in read_results(src)]
    if len(sources) > 1:
        keys = [tuple(r.get(k) for k in KEY) for r in rows]
        if len(set(keys)) != len(keys):
            raise ValueError("the runs share (method, seed, round) rows: merge runs of different methods")
        names = sorted({str(r.get("dataset")) for r in rows})
        if len(names) > 1:
            raise ValueError(f"the runs are on different datasets ({', '.join(names)}): one table compares methods on one dataset; plot each run on its own")
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    table = format_table(summary)
    notes = list(notes)
    if not notes:
        notes = sorted({n for r in rows for n in r.get("notes", [])})
    text = f"# {title or 'results'}\n\nTest accuracy (%) at each share of acquired data, mean ± std over seeds.\n\n{table}\n"
    text += _analysis_sections(rows, out, title)
    if notes:
        text += "\nNotes:\n" + "".join(f"- {n}\n" for n in notes)
    text += "\nSoftware: " + ", ".join(f"{k} {v}" for k, v in software_versions().items()) + "\n"
    text += environment_line(rows) + "\n"
    if keep_rows:
        write_text_atomic(out / RESULTS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    write_text_atomic(out / "summary.md", text)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1))
    png = plot_learning_curves(summary, out / "learning_curves.png", title=title)
    return table, png
