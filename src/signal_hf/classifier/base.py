"""What every classifier backend gives the loop and the strategies.

A backend is fitted on the labeled set from its pretrained starting point each round and then
answers two questions: :meth:`Classifier.pool_outputs` (probabilities, log-probabilities from
``log_softmax``, the embedding Φ the head reads, BADGE gradient embeddings of the head and, for BALD,
MC-dropout probabilities) and :meth:`Classifier.accuracy` on the test set. All backends return the
same :class:`PoolOutputs`, so every strategy runs unchanged on any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset

from ..types import MCDropout, PoolOutputs

__all__ = ["Classifier", "HeadOnEmbeddings", "accuracy_metric", "outputs_from_logits", "head_input_dropout_logits"]

_METRIC_DIR = Path(__file__).resolve().parent.parent / "metrics" / "accuracy"


def accuracy_metric():
    """The ``evaluate`` accuracy metric, loaded from the script shipped with the package (offline)."""
    import evaluate

    return evaluate.load(str(_METRIC_DIR))


def outputs_from_logits(logits: torch.Tensor, head_input: torch.Tensor, *, grad_embeddings: bool = False, mc_logits: torch.Tensor | None = None) -> PoolOutputs:
    """:class:`PoolOutputs` from a linear head's logits and its input ``h``.

    Log-probabilities come from ``log_softmax`` (exact where a probability underflows), Φ is ``h``
    L2-normalised, BADGE's gradient embedding is ``(1[c=ŷ] − p_c) · h``, and ``mc_logits``
    (``(T, n, C)``, MC-dropout passes) become ``mc_probs``.
    """
    logits = logits.float()
    log_probs = torch.log_softmax(logits, -1)
    probs = log_probs.exp()
    g = None
    if grad_embeddings:
        from ..acquisition import badge_gradient_embeddings

        g = badge_gradient_embeddings(probs, head_input.float())
    emb = torch.nn.functional.normalize(head_input.float(), dim=-1)
    mc = None if mc_logits is None else torch.softmax(mc_logits.float(), -1)
    return PoolOutputs(probs=probs, embeddings=emb, grad_embeddings=g, log_probs=log_probs, mc_probs=mc)


def head_input_dropout_logits(logits_fn: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor, mc: MCDropout) -> torch.Tensor:
    """``(T, n, C)`` logits of a head on ``T = mc.samples`` inverted-dropout copies of its input:
    ``logits_fn(h ⊙ m_t / (1 − p))`` with every feature kept (``m_t = 1``) with probability ``1 − p``
    (``p = mc.rate``), the masks drawn from a generator seeded with ``mc.seed``.

    MC dropout for a head on cached embeddings: re-encoding every text T times with dropout in the
    encoder would cost T encoder passes per round, so only the head's input is dropped. The head was
    fitted without dropout, so this perturbs the fitted head rather than sampling the dropout
    posterior of a network trained with it (what the ``finetune`` backend's passes do).
    """
    g = torch.Generator().manual_seed(int(mc.seed))
    keep = 1.0 - mc.rate
    # One pass at a time: T copies of (n, d) at once would cost T times the pool's embeddings.
    return torch.stack([logits_fn(h * (torch.rand(h.shape, generator=g) < keep).to(h.dtype) / keep) for _ in range(mc.samples)])


class Classifier(ABC):
    """A target classifier M after one round's fit."""

    #: Small enough to keep in memory after its round, so a later pass over new candidates (a
    #: generative round, another strategy's trial) scores with it instead of refitting: true for a
    #: head on shared, cached embeddings; a fine-tuned encoder is refitted (the same result) instead.
    keep_after_round: bool = False

    @abstractmethod
    def pool_outputs(self, dataset: Dataset, *, grad_embeddings: bool = False, mc_dropout: MCDropout | None = None) -> PoolOutputs:
        """One inference pass over ``dataset`` (normalised ``text``/``text_pair`` columns); with
        ``mc_dropout`` also its MC-dropout passes (``mc_probs``)."""

    @abstractmethod
    def accuracy(self, dataset: Dataset | None = None) -> float:
        """Accuracy on ``dataset`` (default: the test set given at construction)."""


class HeadOnEmbeddings(Classifier):
    """A classifier that is a linear head (``self.head.logits``) on sentence embeddings (``_embed``):
    the ``probe`` and ``setfit`` backends. Φ is the embedding itself, the head's input; MC dropout
    drops features of Φ (:func:`head_input_dropout_logits`)."""

    head = None
    eval_dataset: Dataset | None = None

    @abstractmethod
    def _embed(self, dataset: Dataset) -> torch.Tensor:
        """``(n, d)`` embeddings of the dataset's texts, in row order."""

    def pool_outputs(self, dataset: Dataset, *, grad_embeddings: bool = False, mc_dropout: MCDropout | None = None) -> PoolOutputs:
        h = self._embed(dataset)
        mc = None if mc_dropout is None else head_input_dropout_logits(self.head.logits, h, mc_dropout)
        return outputs_from_logits(self.head.logits(h), h, grad_embeddings=grad_embeddings, mc_logits=mc)

    def accuracy(self, dataset: Dataset | None = None) -> float:
        ds = self.eval_dataset if dataset is None else dataset
        preds = self.head.logits(self._embed(ds)).argmax(-1)
        return float(accuracy_metric().compute(predictions=preds.tolist(), references=ds["label"][:])["accuracy"])
