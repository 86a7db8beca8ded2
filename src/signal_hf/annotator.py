"""``signal-hf train-annotator``: fine-tune the model oracle that labels synthetic items.

The paper's annotators are classifiers fine-tuned on the full train split (test accuracy
:data:`PAPER_ANNOTATOR_ACCURACY`). Ours trains on the full offline train split by default with the
few-label protocol's budget (``classifier.num_train_epochs`` epochs floored at ``min_steps`` and
capped at ``max_steps`` optimisation steps, warm-up ``warmup_ratio``; see ``ClassifierConfig``),
evaluates on the full test split and reports its accuracy next to the paper's.
``max_train_samples`` trains on a seeded subset instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

from .classifier import ClassifierTrainer
from .config import ExperimentConfig
from .data import load_task
from .errors import ConfigError

logger = logging.getLogger(__name__)

#: Test accuracy of the paper's annotators (fine-tuned on each full train split).
PAPER_ANNOTATOR_ACCURACY = {"sst2": 0.913, "ag_news": 0.9375, "qnli": 0.9099}


def train_annotator(
    cfg: ExperimentConfig, *, output: str | None = None, max_train_samples: int | None = None, epochs: float = 1.0,
    max_steps: int | None = None, seed: int = 0,
) -> tuple[Path, float]:
    """Train on the task's train split, evaluate on its test split, save model + tokenizer atomically.

    ``epochs`` and ``max_steps`` (default: ``classifier.max_steps``; ``-1``: no ceiling) set the
    protocol's budget; ``annotator.json`` records it with the test accuracy and the paper's."""
    out = Path(output or cfg.oracle.annotator_path or "")
    if not str(out):
        raise ConfigError("oracle.annotator_path", "no output folder for the annotator", "set oracle.annotator_path or pass --output")
    task = load_task(cfg.data)
    train = task.train.shuffle(seed=seed)
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    # A saveable AutoModelForSequenceClassification (the [CLS] pooler, which thousands of rows train
    # well; ModelOracle loads it with AutoModelForSequenceClassification), on the protocol's budget.
    clf_cfg = replace(
        cfg.classifier, backend="finetune", pooling="cls", num_train_epochs=epochs,
        max_steps=cfg.classifier.max_steps if max_steps is None else max_steps,
        per_device_train_batch_size=max(cfg.classifier.per_device_train_batch_size, 32),
    )
    if clf_cfg.max_steps == 0 or clf_cfg.max_steps < -1:
        raise ConfigError("--max-steps", f"must be -1 (no ceiling) or > 0, got {clf_cfg.max_steps}", "e.g. 1000")
    steps = clf_cfg.train_steps(len(train))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer = ClassifierTrainer(clf_cfg, task.spec, output_dir=tmp / "trainer", seed=seed, train_dataset=train, eval_dataset=task.test, disable_tqdm=False)
    trainer.train()
    acc = trainer.accuracy()
    trainer.save_model(str(tmp))
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    record = {
        "dataset": task.spec.name, "label_names": list(task.spec.label_names), "model": clf_cfg.model_name_or_path,
        "train_rows": len(train), "train_rows_available": len(task.train), "epochs": epochs, "steps": steps,
        "batch_size": clf_cfg.per_device_train_batch_size, "learning_rate": clf_cfg.learning_rate,
        "test_rows": len(task.test), "test_accuracy": acc, "paper_test_accuracy": PAPER_ANNOTATOR_ACCURACY.get(task.spec.name),
        "notes": task.notes,
    }
    (tmp / "annotator.json").write_text(json.dumps(record, indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    logger.info("annotator trained on %d rows (%d steps): test accuracy %.4f -> %s", len(train), steps, acc, out)
    return out, acc
