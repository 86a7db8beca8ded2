"""The target classifier M, refitted from its pretrained starting point every round.

Three backends (``classifier.backend``), one interface (:class:`Classifier`):

* ``finetune`` — :class:`ClassifierTrainer`, a :class:`transformers.Trainer` subclass that fine-tunes
  the encoder and a linear head (the paper's path: BERT-base, ``recipes/sst2.yaml``);
* ``probe`` — :class:`ProbeClassifier`, a logistic-regression head on frozen, cached embeddings;
* ``setfit`` — :class:`SetFitClassifier`, SetFit's contrastive body tuning plus the same head.

:func:`fit_classifier` is what a round calls.
"""

from __future__ import annotations

import os

from datasets import Dataset

from ..config import ClassifierConfig
from ..types import TaskSpec
from .base import Classifier, accuracy_metric, outputs_from_logits
from .finetune import ClassifierTrainer, MeanPooledClassifier, load_classifier, load_tokenizer
from .head import LogisticHead
from .probe import ProbeClassifier
from .setfit_backend import SetFitClassifier

__all__ = [
    "Classifier",
    "ClassifierTrainer",
    "MeanPooledClassifier",
    "ProbeClassifier",
    "SetFitClassifier",
    "LogisticHead",
    "fit_classifier",
    "order_for_eval",
    "load_classifier",
    "load_tokenizer",
    "accuracy_metric",
    "outputs_from_logits",
]


def order_for_eval(test: Dataset) -> Dataset:
    """``test`` sorted by text length, the order every evaluation in a run uses.

    Accuracy does not depend on row order, but length-sorted rows pad far less per eval batch, and
    the same order (hence the same batches and padding) keeps a re-evaluation bit-for-bit comparable.
    """
    lengths = [len(t) for t in test["text"]]
    if "text_pair" in test.column_names:
        lengths = [n + len(p or "") for n, p in zip(lengths, test["text_pair"])]
    # sorted() is stable: rows of equal length keep their file order.
    return test.select(sorted(range(len(test)), key=lengths.__getitem__))


def fit_classifier(
    config: ClassifierConfig,
    task: TaskSpec,
    labeled: Dataset,
    test: Dataset | None,
    *,
    output_dir: str | os.PathLike,
    seed: int,
    callbacks: list | None = None,
) -> Classifier:
    """Fit the configured backend from its pretrained starting point on ``labeled``, as each round does.

    Rows are sorted by id first, so the same labeled set (whatever order it was stored or
    acquired in) gives the same model for the same seed. ``test`` is used as given; pass it
    through :func:`order_for_eval` to evaluate as a run does. ``callbacks`` (``TrainerCallback``s)
    see the ``finetune`` backend's training (the heads on embeddings have no steps to report).
    """
    labeled = labeled.sort("id")
    if config.backend == "probe":
        return ProbeClassifier(config, task, eval_dataset=test).fit(labeled)
    if config.backend == "setfit":
        return SetFitClassifier(config, task, output_dir=output_dir, seed=seed, eval_dataset=test).fit(labeled)
    trainer = ClassifierTrainer(config, task, output_dir=output_dir, seed=seed, train_dataset=labeled, eval_dataset=test, callbacks=callbacks)
    trainer.train()
    return trainer
