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
from ..types import TaskSpec
from .base import HeadOnEmbeddings
from .head import LogisticHead, fit_head

__all__ = ["ProbeClassifier"]


class ProbeClassifier(HeadOnEmbeddings):
    """Frozen encoder (``classifier.model_name_or_path``, ``pooling``; pairs as ``pair_features``) + :class:`LogisticHead`.

    Args:
        config: the recipe's classifier section (``probe_c`` is the head's inverse L2 strength).
        task: the task (number of classes).
        eval_dataset: the test set :meth:`accuracy` uses by default.
    """

    keep_after_round = True  # a head on the run's shared encoder cache

    def __init__(self, config: ClassifierConfig, task: TaskSpec, *, eval_dataset: Dataset | None = None):
        self.config = config
        self.task = task
        self.eval_dataset = eval_dataset
        self.encoder = get_encoder(config.model_name_or_path, config.pooling, config.max_length)
        self.head: LogisticHead | None = None

    def fit(self, labeled: Dataset) -> "ProbeClassifier":
        self.head = fit_head(self.config, self.task.num_labels, self._embed(labeled), torch.tensor(labeled["label"][:]))
        return self

    def _embed(self, dataset: Dataset) -> torch.Tensor:
        h = self.encoder.embed_dataset(dataset, self.config.pair_features)
        self.encoder.save()  # a no-op unless new texts were encoded
        return h
