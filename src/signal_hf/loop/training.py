"""Retrain and score: fit M on L from its pretrained checkpoint, evaluate it, and run the one
inference pass the strategies read (over L and the candidates U \\ L).

Identical inputs (seed, labeled ids, candidate ids) give identical outputs, so the result is
cached across the trials of one seed: every strategy shares round 0, and a repeated set is fitted
once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset, concatenate_datasets
from transformers import TrainerCallback

from ..classifier import Classifier, fit_classifier
from ..config import ClassifierConfig
from ..data import TaskData
from ..encoder import SentenceEncoder
from ..types import MCDropout, PoolOutputs

logger = logging.getLogger(__name__)

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


class StepProgress(TrainerCallback):
    """Training steps of a round's fit on the progress bar, and one log line per tenth of the steps
    (so progress also shows when output goes to a file)."""

    def __init__(self, phase: Callable[[str], None], round_idx: int, n_labeled: int):
        self.phase, self.round_idx, self.n_labeled = phase, round_idx, n_labeled

    def on_step_end(self, args, state, control, **kwargs):
        total = max(state.max_steps, 1)
        self.phase(f"round {self.round_idx}: train on {self.n_labeled}, step {state.global_step}/{total}")
        if state.global_step % max(1, total // 10) == 0 or state.global_step == total:
            logger.info("round %d: training step %d/%d", self.round_idx, state.global_step, total)


class Retrainer:
    """Fits and scores for one trial (seed ``seed``), through the experiment's :class:`SharedCache`;
    ``mc_dropout`` is the MC-dropout request of a trial whose strategy needs ``mc_probs`` (BALD),
    reseeded every round."""

    def __init__(self, config: ClassifierConfig, task: TaskData, seed: int, *, workdir: Path, shared: SharedCache, need: set[str], phase: Callable[[str], None], mc_dropout: MCDropout | None = None):
        self.config, self.task, self.seed = config, task, seed
        self.workdir, self.shared, self.need, self.phase = workdir, shared, need, phase
        self.mc_dropout = mc_dropout
        #: ``round -> [TrainerCallback]`` of listeners beyond the step progress (the trial's tracker).
        self.callbacks: Callable[[int], list] | None = None
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
        callbacks = [StepProgress(self.phase, round_idx, len(labeled)), *(self.callbacks(round_idx) if self.callbacks else [])]
        model = fit_classifier(self.config, self.task.spec, labeled, self.task.test, output_dir=self.workdir / "classifier", seed=self.seed, callbacks=callbacks)
        times = {"train_s": time.perf_counter() - t}
        self.phase(f"round {round_idx}: evaluate")
        t = time.perf_counter()
        accuracy = model.accuracy()
        times["eval_s"] = time.perf_counter() - t
        t = time.perf_counter()
        lab_out, cand_out = self.score(model, labeled, candidates, round_idx)
        times["inference_s"] = time.perf_counter() - t
        fitted = Fitted(accuracy, lab_out, cand_out, candidates["id"][:], model, times)
        kept = model if model.keep_after_round else None
        self.shared.fitted[key] = Fitted(accuracy, lab_out, cand_out, fitted.candidate_ids, kept, times)
        return fitted

    def score(self, model: Classifier, labeled: Dataset, candidates: Dataset, round_idx: int) -> tuple[PoolOutputs, PoolOutputs]:
        """One inference pass over L and the candidates, split back into (labeled, candidates) outputs."""
        from .state import derive_seed  # state imports this module

        cols = self.text_cols
        both = concatenate_datasets([labeled.select_columns(cols), candidates.select_columns(cols)]) if len(candidates) else labeled.select_columns(cols)
        mc = self.mc_dropout
        if mc is not None:  # fresh masks each round, the same ones on a resume
            mc = replace(mc, seed=derive_seed(mc.seed, round_idx))
        out = model.pool_outputs(both, grad_embeddings="grad_embeddings" in self.need, mc_dropout=mc)
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
        lab_out, cand_out = self.score(fitted.classifier, labeled, candidates, round_idx)
        return lab_out, cand_out, fitted.classifier
