"""Small typed containers shared between the classifier, acquisition, generation and RL modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["PoolOutputs", "MCDropout", "AcquisitionState", "TaskSpec", "PROB_FLOOR", "display_text"]

#: Probabilities are clamped to at least this before ``log`` when no log-probabilities were given,
#: so that a zero never gives ``-inf``/NaN.
PROB_FLOOR: float = 1e-12


@dataclass
class PoolOutputs:
    """What one inference pass of the classifier produces for a set of texts.

    Attributes:
        probs: ``(n, C)`` float32 class probabilities under the current classifier.
        embeddings: ``(n, d)`` float32 L2-normalised pooled ([CLS]) embeddings, Φ(x).
        grad_embeddings: ``(n, C*d)`` BADGE gradient embeddings ``(1[c=ŷ] - p_c) · h`` or ``None``
            when no strategy asked for them.
        pretrained_embeddings: ``(n, d)`` L2-normalised embeddings of the *pretrained* encoder
            (BERT-KM) or ``None``.
        log_probs: ``(n, C)`` log-probabilities from ``log_softmax`` of the logits, exact where a
            probability underflows; ``None`` when built from probabilities alone, in which case
            :attr:`logp` takes the log of the probabilities (floored at :data:`PROB_FLOOR`).
        mc_probs: ``(T, n, C)`` float32 class probabilities of ``T`` stochastic forward passes with
            dropout active (MC dropout, :class:`MCDropout`; BALD), or ``None`` when no strategy asked
            for them. Rows are dimension 1.
    """

    probs: torch.Tensor
    embeddings: torch.Tensor
    grad_embeddings: torch.Tensor | None = None
    pretrained_embeddings: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None
    mc_probs: torch.Tensor | None = None

    @property
    def logp(self) -> torch.Tensor:
        """Log-probabilities: :attr:`log_probs` when the classifier gave them, else ``log(max(p, PROB_FLOOR))``."""
        if self.log_probs is not None:
            return self.log_probs
        return self.probs.float().clamp_min(PROB_FLOOR).log()

    def __len__(self) -> int:
        return int(self.probs.shape[0])

    def select(self, index: torch.Tensor | list[int]) -> "PoolOutputs":
        """Rows ``index`` of every tensor (keeps ``None`` fields ``None``)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        pick = lambda t: None if t is None else t.index_select(0, idx)  # noqa: E731
        return PoolOutputs(
            probs=pick(self.probs),
            embeddings=pick(self.embeddings),
            grad_embeddings=pick(self.grad_embeddings),
            pretrained_embeddings=pick(self.pretrained_embeddings),
            log_probs=pick(self.log_probs),
            mc_probs=None if self.mc_probs is None else self.mc_probs.index_select(1, idx),
        )


@dataclass(frozen=True)
class MCDropout:
    """A request for MC-dropout probabilities (:attr:`PoolOutputs.mc_probs`): ``samples`` stochastic
    forward passes with dropout active at inference (Gal & Ghahramani 2016).

    What is dropped depends on the backend: ``finetune`` runs its network's own dropout layers (the
    rates it was trained with); the head-on-embeddings backends (``probe``, ``setfit``), whose
    encoder embeddings are cached, drop features of the head's input Φ at ``rate`` instead.

    Attributes:
        samples: T, the number of passes (>= 2).
        rate: the head-on-embeddings backends' inverted-dropout rate on the head's input, in (0, 1).
        seed: seeds the dropout masks: the same request gives the same probabilities.
    """

    samples: int
    rate: float
    seed: int


@dataclass
class AcquisitionState:
    """Everything a query strategy may look at in one round.

    Attributes:
        unlabeled: classifier outputs for the candidates (U minus L), row i = candidate i.
        labeled: classifier outputs for the current labeled set L (may be empty: 0 rows).
        seed: seed for strategies that sample (Random, k-means++ seeding).
        metadata: optional per-round information (round index, candidate ``source`` list, ...).
    """

    unlabeled: PoolOutputs
    labeled: PoolOutputs
    seed: int = 0
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """What the rest of the toolkit needs to know about a classification task.

    All datasets inside signal_hf use normalised columns: ``id`` (str, stable), ``text``,
    ``text_pair`` (pair tasks only), ``label`` (int index into ``label_names``; -1 = not labeled yet),
    ``source`` (``real`` / ``synthetic``). Synthetic rows also carry ``prompt``, ``generator_revision``
    and ``round``.

    Attributes:
        name: dataset name for reports (``sst2``).
        label_names: labels in index order.
        task_type: ``sentiment``, ``topic`` or ``pair`` (selects the generator's instruction template).
        is_pair: the task classifies a pair of texts (``text`` and ``text_pair``).
        text_field_names: human names of the text fields used in prompts, e.g. ``("question", "sentence")``.
    """

    name: str
    label_names: tuple[str, ...]
    task_type: str = "sentiment"
    is_pair: bool = False
    text_field_names: tuple[str, ...] = ("text",)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def display_text(item: Mapping[str, Any]) -> str:
    """An item as a person reads it: its ``text``, and for a pair task `` ‖ `` and its ``text_pair``
    (a QNLI question alone does not show whether the sentence answers it)."""
    pair = item.get("text_pair")
    return f"{item['text']} ‖ {pair}" if pair else str(item["text"])
