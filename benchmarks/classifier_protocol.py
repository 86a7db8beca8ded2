"""The few-label classifier protocol table: accuracy of each backend/encoder at 10/50/100 % of a pool.

``python -m benchmarks.classifier_protocol --out docs/results/classifier_protocol`` fits every
option on random labeled subsets (nested: the 10 % set is inside the 50 % set, inside the pool) of
the 0.1 % pools of SST-2, AG News and QNLI (fallback split), for 3 seeds, evaluates on the same
test rows for every option (SST-2: all 872 validation sentences; QNLI: all 2,732 held-out pairs;
AG News: a seeded 2,000-row subset of the 7,600 test rows — the fine-tuning options re-encode the
test set every round), and writes ``rows.jsonl`` (one row per fit, resumable: rows already there
are skipped) and ``classifier_protocol.md`` (mean ± std and seconds per fit).

This is Random acquisition without the loop: which classifier a curve is measured on is decided
here, before any strategy is compared.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from signal_hf.classifier import fit_classifier, order_for_eval
from signal_hf.config import ClassifierConfig, DataConfig
from signal_hf.data import load_task, sample_pool
from signal_hf.environment import lock_digest
from signal_hf.results import environment_line

#: name -> (description, classifier config). Budgets are the ones a round would use.
OPTIONS: dict[str, tuple[str, ClassifierConfig]] = {
    "probe-minilm": (
        "frozen all-MiniLM-L6-v2, mean pooling, class-balanced logistic regression, C=1 (the probe default; "
        "a sentence pair is [u ⊙ v, |u − v|] of its two texts encoded alone, `pair_features: interaction`)",
        ClassifierConfig(backend="probe", model_name_or_path="bundled:minilm", max_length=128),
    ),
    "probe-minilm-joint": (
        "as probe-minilm, a sentence pair encoded as one tokenizer pair (`pair_features: joint`, the only pair encoding before it)",
        ClassifierConfig(backend="probe", model_name_or_path="bundled:minilm", max_length=128, pair_features="joint"),
    ),
    "probe-mpnet": (
        "frozen all-mpnet-base-v2, mean pooling, class-balanced logistic regression, C=1 (the probe default; pairs as probe-minilm)",
        ClassifierConfig(backend="probe", model_name_or_path="bundled:mpnet", max_length=128),
    ),
    "probe-mpnet-joint": (
        "as probe-mpnet, a sentence pair encoded as one tokenizer pair (`pair_features: joint`)",
        ClassifierConfig(backend="probe", model_name_or_path="bundled:mpnet", max_length=128, pair_features="joint"),
    ),
    "probe-mpnet-unbalanced": (
        "as probe-mpnet without class balancing (the plain frozen probe of shared/MODELS.md)",
        ClassifierConfig(backend="probe", model_name_or_path="bundled:mpnet", max_length=128, probe_class_weight="none"),
    ),
    "probe-mpnet-cv": (
        "as probe-mpnet, C in {0.1, 1, 10, 100} chosen each fit by stratified k-fold CV log-loss on L",
        ClassifierConfig(backend="probe", model_name_or_path="bundled:mpnet", max_length=128, probe_c=None),
    ),
    "finetune-minilm": (
        "MiniLM-L6 fine-tuned, mean pooling + linear head, 10 epochs in [100, 1000] steps, lr 5e-5, warm-up 10 %, batch 16",
        ClassifierConfig(backend="finetune", model_name_or_path="bundled:minilm", max_length=128, num_train_epochs=10, min_steps=100, max_steps=1000),
    ),
    "setfit-minilm": (
        "SetFit (setfit 1.2.0) on MiniLM-L6: 10 pair iterations, 1 epoch, body lr 5e-5, then the class-balanced logistic head (C=1)",
        ClassifierConfig(backend="setfit", model_name_or_path="bundled:minilm", max_length=128, setfit_iterations=10, setfit_epochs=1),
    ),
    "setfit-minilm-5it": (
        "as setfit-minilm with 5 pair iterations and 64-token inputs (half the pairs; AG News descriptions average ~40 tokens)",
        ClassifierConfig(backend="setfit", model_name_or_path="bundled:minilm", max_length=64, setfit_iterations=5, setfit_epochs=1),
    ),
}
DATASETS = {"sst2": None, "ag_news": 2000, "qnli": None}  # name -> test rows (None: all)
FRACTIONS = (0.1, 0.5, 1.0)


def _key(row: dict) -> tuple:
    return (row["dataset"], row["option"], row["seed"], row["fraction"])


def run(out: Path, options: list[str], datasets: list[str], seeds: list[int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows_file = out / "rows.jsonl"
    done = {_key(json.loads(line)) for line in rows_file.read_text().splitlines() if line.strip()} if rows_file.exists() else set()
    for ds_name in datasets:
        task = load_task(DataConfig(dataset=ds_name, pool_fraction=0.001, max_test_samples=DATASETS[ds_name]))
        test = order_for_eval(task.test)
        for option in options:
            cfg = OPTIONS[option][1]
            for seed in seeds:
                order = sample_pool(task, 0.001, seed).shuffle(seed=seed)
                for frac in FRACTIONS:
                    n = max(1, int(round(frac * len(order))))
                    row = {"dataset": ds_name, "option": option, "seed": seed, "fraction": frac}
                    if _key(row) in done:
                        continue
                    with tempfile.TemporaryDirectory() as tmp:
                        t = time.perf_counter()
                        clf = fit_classifier(cfg, task.spec, order.select(range(n)), test, output_dir=tmp, seed=seed)
                        fit_s = time.perf_counter() - t
                        t = time.perf_counter()
                        acc = clf.accuracy()
                        eval_s = time.perf_counter() - t
                    row.update(labels=n, pool=len(order), test_rows=len(test), accuracy=acc, fit_s=round(fit_s, 2), eval_s=round(eval_s, 2), lock=lock_digest())
                    with rows_file.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    write_table(out)


def write_table(out: Path) -> str:
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines() if line.strip()]
    lines = [
        "| dataset (test rows) | option | 10 % | 50 % | 100 % | s per fit + eval at 100 % | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for ds_name in DATASETS:
        for option in OPTIONS:
            cell = [r for r in rows if r["dataset"] == ds_name and r["option"] == option]
            if not cell:
                continue
            parts = []
            for frac in FRACTIONS:
                accs = [100 * r["accuracy"] for r in cell if r["fraction"] == frac]
                if not accs:
                    parts.append("—")
                    continue
                sd = statistics.pstdev(accs) if len(accs) > 1 else 0.0
                n = next(r["labels"] for r in cell if r["fraction"] == frac)
                parts.append(f"{statistics.mean(accs):.1f} ± {sd:.1f} ({n})")
            full = [r["fit_s"] + r["eval_s"] for r in cell if r["fraction"] == 1.0]
            secs = f"{statistics.median(full):.1f}" if full else "—"
            seeds = sorted({r["seed"] for r in cell})
            test_rows = cell[0]["test_rows"]
            lines.append(f"| {ds_name} ({test_rows}) | {option} | {' | '.join(parts)} | {secs} | {len(seeds)} |")
    table = "\n".join(lines)
    legend = "\n".join(f"- **{k}**: {v[0]}" for k, v in OPTIONS.items())
    text = (
        "# Few-label classifier protocol (Random subsets of the 0.1 % pools)\n\n"
        "Accuracy in % (mean ± std over seeds; labeled rows in brackets) at 10 %, 50 % and 100 % of the pool, "
        "and the median seconds of one fit + test evaluation at 100 % on this machine "
        f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; probe times include "
        "the first encoding of the pool, the test set is encoded once per run and cached).\n\n"
        f"{table}\n\nOptions:\n{legend}\n\n{environment_line(rows)}\n\n"
        "Regenerate: `python -m benchmarks.classifier_protocol --out docs/results/classifier_protocol` (resumes from rows.jsonl).\n"
    )
    (out / "classifier_protocol.md").write_text(text)
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.classifier_protocol", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="docs/results/classifier_protocol")
    p.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    run(Path(a.out), a.options, a.datasets, a.seeds)
    print(write_table(Path(a.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
