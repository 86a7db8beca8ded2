"""``classifier.backend: probe`` — a logistic-regression head on frozen, cached sentence embeddings.

Frozen pretrained representations with a light head are a recognised and much cheaper active
learning setting than fine-tuning (e.g. Vysogorets et al. 2024): each text is encoded once per run
(and cached on disk across runs, :mod:`signal_hf.encoder`), so a round costs one L-BFGS fit. The
embedding Φ the strategies see is exactly the head's input.
"""

from __future__ import annotations

import torch
from datasets import Dataset

from ..config import ClassifierConfig
from ..encoder import get_encoder
from ..types import PoolOutputs, TaskSpec
from .base import Classifier, accuracy_metric, outputs_from_logits
from .head import LogisticHead, select_c

__all__ = ["ProbeClassifier", "fit_head"]


def fit_head(config: ClassifierConfig, num_labels: int, h: torch.Tensor, y: torch.Tensor) -> LogisticHead:
    """The logistic head of ``probe``/``setfit``: ``probe_c``, or C chosen by cross-validation on L."""
    cw = config.probe_class_weight
    c = config.probe_c if config.probe_c is not None else select_c(h, y, num_labels, list(config.probe_c_grid), class_weight=cw)
    head = LogisticHead(num_labels, C=c, class_weight=cw).fit(h, y)
    head.chosen_c = c
    return head


class ProbeClassifier(Classifier):
    """Frozen encoder (``classifier.model_name_or_path``, ``pooling``) + :class:`LogisticHead`.

    Args:
        config: the recipe's classifier section (``probe_c`` is the head's inverse L2 strength).
        task: the task (number of classes).
        eval_dataset: the test set :meth:`accuracy` uses by default.
    """

    def __init__(self, config: ClassifierConfig, task: TaskSpec, *, eval_dataset: Dataset | None = None):
        self.config = config
        self.task = task
        self.eval_dataset = eval_dataset
        self.encoder = get_encoder(config.model_name_or_path, config.pooling, config.max_length, config.per_device_eval_batch_size)
        self.head: LogisticHead | None = None

    def fit(self, labeled: Dataset) -> "ProbeClassifier":
        h, y = self.encoder.embed_dataset(labeled), torch.tensor(labeled["label"][:])
        self.head = fit_head(self.config, self.task.num_labels, h, y)
        self.encoder.save()
        return self

    def pool_outputs(self, dataset: Dataset, *, grad_embeddings: bool = False) -> PoolOutputs:
        h = self.encoder.embed_dataset(dataset)
        return outputs_from_logits(self.head.logits(h), h, grad_embeddings=grad_embeddings)

    def accuracy(self, dataset: Dataset | None = None) -> float:
        ds = self.eval_dataset if dataset is None else dataset
        preds = self.head.logits(self.encoder.embed_dataset(ds)).argmax(-1)
        self.encoder.save()
        return float(accuracy_metric().compute(predictions=preds.tolist(), references=ds["label"][:])["accuracy"])
