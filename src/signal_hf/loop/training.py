"""Retrain and score: fit M on L from its pretrained checkpoint, evaluate it, and run the one
inference pass the strategies read (over L and the candidates U \\ L).

Identical inputs (seed, labeled ids, candidate ids) give identical outputs, so the result is
cached across the trials of one seed: every strategy shares round 0, and a repeated set is fitted
once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, concatenate_datasets

from ..classifier import Classifier, fit_classifier
from ..config import ClassifierConfig
from ..data import TaskData
from ..encoder import SentenceEncoder
from ..types import PoolOutputs

__all__ = ["Fitted", "SharedCache", "Retrainer"]


@dataclass
class Fitted:
    """M fitted on one labeled set, and its outputs.

    Attributes:
        accuracy: test accuracy.
        labeled_out: outputs over L (row order of L).
        candidates_out: outputs over the candidates it was fitted next to (``candidate_ids``).
        candidate_ids: ids of those candidates, in order.
        classifier: the fitted model, or ``None`` when it was not kept (a cache hit of a backend
            that is refitted on demand, see ``Classifier.keep_after_round``).
        times: seconds of ``train_s``/``eval_s``/``inference_s`` (``cached: 1.0`` on a cache hit).
    """

    accuracy: float
    labeled_out: PoolOutputs
    candidates_out: PoolOutputs
    candidate_ids: list[str]
    classifier: Classifier | None
    times: dict[str, float]


@dataclass
class SharedCache:
    """Per-experiment state shared by trials.

    Attributes:
        pretrained: the pretrained encoder BERT-KM clusters with (``None`` unless a strategy needs it).
        need: union of the PoolOutputs fields all strategies need: one cached pass serves every strategy.
        fitted: cache key → :class:`Fitted` (cleared when the trials move to the next seed).
    """

    pretrained: SentenceEncoder | None = None
    need: frozenset[str] = frozenset()
    fitted: dict[str, Fitted] = field(default_factory=dict)


class Retrainer:
    """Fits and scores for one trial (seed ``seed``), through the experiment's :class:`SharedCache`."""

    def __init__(self, config: ClassifierConfig, task: TaskData, seed: int, *, workdir: Path, shared: SharedCache, need: set[str], phase: Callable[[str], None]):
        self.config, self.task, self.seed = config, task, seed
        self.workdir, self.shared, self.need, self.phase = workdir, shared, need, phase
        self.text_cols = ["text", "text_pair"] if task.spec.is_pair else ["text"]

    def _key(self, labeled: Dataset, candidates: Dataset) -> str:
        parts = [self.seed, sorted(labeled["id"][:]), candidates["id"][:], sorted(self.need)]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def fit(self, labeled: Dataset, candidates: Dataset, round_idx: int, *, need_classifier: bool = False) -> Fitted:
        """M retrained on ``labeled`` (sorted by id, so the same set gives the same model), evaluated,
        and its pass over ``labeled`` and ``candidates``; ``need_classifier`` refits a cache hit
        whose model was not kept (RL scores new text with it)."""
        key = self._key(labeled, candidates)
        hit = self.shared.fitted.get(key)
        if hit is not None and (hit.classifier is not None or not need_classifier):
            return Fitted(hit.accuracy, hit.labeled_out, hit.candidates_out, hit.candidate_ids, hit.classifier, {"cached": 1.0})
        self.phase(f"round {round_idx}: train on {len(labeled)}")
        t = time.perf_counter()
        model = fit_classifier(self.config, self.task.spec, labeled, self.task.test, output_dir=self.workdir / "classifier", seed=self.seed)
        times = {"train_s": time.perf_counter() - t}
        self.phase(f"round {round_idx}: evaluate")
        t = time.perf_counter()
        accuracy = model.accuracy()
        times["eval_s"] = time.perf_counter() - t
        t = time.perf_counter()
        lab_out, cand_out = self.score(model, labeled, candidates)
        times["inference_s"] = time.perf_counter() - t
        fitted = Fitted(accuracy, lab_out, cand_out, candidates["id"][:], model, times)
        kept = model if model.keep_after_round else None
        self.shared.fitted[key] = Fitted(accuracy, lab_out, cand_out, fitted.candidate_ids, kept, times)
        return fitted

    def score(self, model: Classifier, labeled: Dataset, candidates: Dataset) -> tuple[PoolOutputs, PoolOutputs]:
        """One inference pass over L and the candidates, split back into (labeled, candidates) outputs."""
        cols = self.text_cols
        both = concatenate_datasets([labeled.select_columns(cols), candidates.select_columns(cols)]) if len(candidates) else labeled.select_columns(cols)
        out = model.pool_outputs(both, grad_embeddings="grad_embeddings" in self.need)
        lab_out = out.select(list(range(len(labeled))))
        cand_out = out.select(list(range(len(labeled), len(both))))
        if "pretrained_embeddings" in self.need:
            enc = self.shared.pretrained
            lab_out.pretrained_embeddings = enc.embed_dataset(labeled)
            cand_out.pretrained_embeddings = enc.embed_dataset(candidates)
            enc.save()
        return lab_out, cand_out

    def rescore(self, fitted: Fitted, labeled: Dataset, candidates: Dataset, round_idx: int) -> tuple[PoolOutputs, PoolOutputs, Classifier]:
        """``fitted``'s model over new candidates (a generative round added some): its kept model,
        or the same fit again when it was not kept."""
        if fitted.classifier is None:
            refit = self.fit(labeled, candidates, round_idx, need_classifier=True)
            return refit.labeled_out, refit.candidates_out, refit.classifier
        lab_out, cand_out = self.score(fitted.classifier, labeled, candidates)
        return lab_out, cand_out, fitted.classifier
