"""``signal-hf train-annotator``: fine-tune the model oracle that labels synthetic items.

The paper's annotators are classifiers fine-tuned on the full train split (91–94 % test accuracy).
On a CPU budget, ``max_train_samples`` trains on a seeded subset; the reported accuracy says what
the oracle is worth.
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


def train_annotator(cfg: ExperimentConfig, *, output: str | None = None, max_train_samples: int | None = None, epochs: float = 1.0, seed: int = 0) -> tuple[Path, float]:
    """Train on the task's train split, evaluate on its test split, save model + tokenizer atomically."""
    out = Path(output or cfg.oracle.annotator_path or "")
    if not str(out):
        raise ConfigError("oracle.annotator_path", "no output folder for the annotator", "set oracle.annotator_path or pass --output")
    task = load_task(cfg.data)
    train = task.train.shuffle(seed=seed)
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    # A saveable AutoModelForSequenceClassification ([CLS] pooler, which thousands of rows train
    # well), for exactly ``epochs`` epochs: no step floor or ceiling.
    clf_cfg = replace(cfg.classifier, backend="finetune", pooling="cls", num_train_epochs=epochs, min_steps=0, max_steps=-1, per_device_train_batch_size=max(cfg.classifier.per_device_train_batch_size, 32))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer = ClassifierTrainer(clf_cfg, task.spec, output_dir=tmp / "trainer", seed=seed, train_dataset=train, eval_dataset=task.test, disable_tqdm=False)
    trainer.train()
    acc = trainer.accuracy()
    trainer.save_model(str(tmp))
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    (tmp / "annotator.json").write_text(json.dumps({"dataset": task.spec.name, "label_names": list(task.spec.label_names), "train_rows": len(train), "test_accuracy": acc, "notes": task.notes}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    logger.info("annotator trained on %d rows: test accuracy %.4f -> %s", len(train), acc, out)
    return out, acc
