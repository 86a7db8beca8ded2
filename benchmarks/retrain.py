"""Retrain the classifier on stored rounds' labeled sets under other training budgets.

A diagnostic for grid results: was a low checkpoint the labels that were acquired, or the training
budget? It retrains the recipe's classifier (same checkpoint, test rows and hyper-parameters) on each
labeled set that a run saved in its round store, once per (budget, training seed), and prints one
Markdown table row per run.

    python -m benchmarks.retrain recipes/paper/cpu_sst2_1_gen.yaml \\
        runs/paper/sst2_1_gen/seeds/seed-1/store/signal-gen-seed1/round-17 \\
        --budget steps:60 --budget epochs:2 --seeds 1 7 [--source real] [--threads 2]

A budget is ``steps:N`` (the ``finetune`` backend for exactly N steps) or ``epochs:X`` (``finetune``
for X epochs, no step floor or ceiling); without one, the recipe's classifier as it is. ``--source real`` keeps only the real (gold-labeled) rows of each set.
Recipe overrides (``--section.key=value``) apply as in ``signal-hf run``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from datasets import Dataset

from signal_hf.classifier import fit_classifier, order_for_eval
from signal_hf.config import ExperimentConfig, load_recipe
from signal_hf.data import TaskData, load_task
from signal_hf.errors import ConfigError, DataError, StoreError
from signal_hf.store import read_round_folder


def parse_budget(text: str) -> dict[str, Any]:
    """``steps:60`` → exactly 60 fine-tuning steps; ``epochs:2`` → 2 epochs, no step floor or ceiling."""
    kind, _, value = text.partition(":")
    try:
        if kind == "steps" and int(value) > 0:
            return {"backend": "finetune", "min_steps": int(value), "max_steps": int(value)}
        if kind == "epochs" and float(value) > 0:
            return {"backend": "finetune", "min_steps": 0, "max_steps": -1, "num_train_epochs": float(value)}
    except ValueError:
        pass
    raise ConfigError("--budget", f"cannot read {text!r}", "write steps:N or epochs:X with N, X > 0, e.g. --budget epochs:2")


def load_labeled(path: str | Path, source: str | None = None) -> Dataset:
    """A stored round's labeled set (a round folder or its labeled parquet file), sorted by id."""
    p = Path(path)
    if p.is_file():
        ds = Dataset.from_parquet(str(p))
    else:
        try:
            ds = read_round_folder(p).datasets["labeled"]
        except (StoreError, KeyError) as exc:
            raise DataError(f"no labeled set at {path}: {exc} (fix: pass a round folder of a run's store, e.g. .../store/<run>/round-3)") from None
    ds = ds.sort("id")
    if source is not None:
        ds = ds.filter(lambda s: s == source, input_columns="source")
    return ds


def retrain(cfg: ExperimentConfig, task: TaskData, labeled: Dataset, budget: dict[str, Any], seed: int, output_dir: str | Path) -> float:
    """Train the recipe's classifier on ``labeled`` under ``budget`` as a round does; test accuracy
    on the test rows in the run's evaluation order."""
    trainer = fit_classifier(
        dataclasses.replace(cfg.classifier, **budget), task.spec, labeled, order_for_eval(task.test), output_dir=output_dir, seed=seed
    )
    return trainer.accuracy()


def main(argv: list[str] | None = None) -> int:
    import tempfile

    import torch

    p = argparse.ArgumentParser(prog="python -m benchmarks.retrain", description=__doc__.split("\n\n")[0])
    p.add_argument("recipe")
    p.add_argument("rounds", nargs="+", help="round folders of a run's store (or their labeled parquet files)")
    p.add_argument("--budget", action="append", default=None, help="steps:N or epochs:X (repeatable; default: the recipe's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    p.add_argument("--source", choices=["real", "synthetic"], default=None, help="keep only these rows")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    a, overrides = p.parse_known_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_recipe(a.recipe, overrides)
    task = load_task(cfg.data)
    budgets = [(b, parse_budget(b)) for b in (a.budget or [])] or [(f"the recipe's ({cfg.classifier.backend})", {})]
    print("| labeled set | rows | synthetic | budget | training seed | test accuracy |\n|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for r in a.rounds:
            ds = load_labeled(r, a.source)
            n_syn = sum(s == "synthetic" for s in ds["source"]) if "source" in ds.column_names else 0
            for name, budget in budgets:
                for seed in a.seeds:
                    acc = retrain(cfg, task, ds, budget, seed, Path(tmp) / "trainer")
                    print(f"| {r} | {len(ds)} | {n_syn} | {name} | {seed} | {100 * acc:.2f} % |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
