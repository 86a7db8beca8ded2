"""The query strategies: random, uncertainty (entropy, margin, least confidence), BALD, BERT-KM,
BADGE, core-set, CAL and SIGnAL. All are vectorised over candidates.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..errors import StrategyError
from ..types import PROB_FLOOR, AcquisitionState, PoolOutputs
from .base import ScoreStrategy, SetStrategy, _rows, register_strategy
from .clustering import distinct_nearest, k_center_greedy, kmeans, kmeans_pp_seeding
from .scores import cal_scores, signal_scores

__all__ = [
    "RandomStrategy",
    "EntropyStrategy",
    "MarginStrategy",
    "LeastConfidenceStrategy",
    "BALDStrategy",
    "BertKMStrategy",
    "BadgeStrategy",
    "CALStrategy",
    "CoreSetStrategy",
    "SignalStrategy",
    "badge_gradient_embeddings",
    "bald_scores",
]


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def _probs(out: PoolOutputs) -> torch.Tensor:
    p = out.probs
    return p if p.dtype in (torch.float32, torch.float64) else p.float()


# ---------------------------------------------------------------- random / uncertainty


@register_strategy("random")
class RandomStrategy(ScoreStrategy):
    """Uniform random selection, reproducible from ``state.seed``.

    ``scores`` is a seeded random permutation rank (a uniformly random order), so ``query`` is a
    seeded random sample in the order drawn.
    """

    requires: ClassVar[frozenset[str]] = frozenset()

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        n = len(state.unlabeled)
        perm = torch.randperm(n, generator=_generator(state.seed))
        # Candidate perm[0] gets the highest score, so top-n == perm[:n].
        s = torch.empty(n, dtype=torch.float32)
        s[perm] = torch.arange(n, 0, -1, dtype=torch.float32)
        return s


def _entropy(q: torch.Tensor) -> torch.Tensor:
    """``H(q) = −Σ_c q_c log q_c`` over the last dimension (nats); ``0 · log 0`` is 0."""
    return -(q * q.clamp_min(PROB_FLOOR).log()).sum(-1)


@register_strategy("entropy")
class EntropyStrategy(ScoreStrategy):
    """Predictive entropy ``H(p) = −Σ_c p_c log p_c`` (nats); highest first."""

    requires: ClassVar[frozenset[str]] = frozenset({"probs"})

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        return _entropy(_probs(state.unlabeled))


@register_strategy("margin")
class MarginStrategy(ScoreStrategy):
    """Smallest margin between the two most probable classes first: score ``= −(p_top1 − p_top2)``."""

    requires: ClassVar[frozenset[str]] = frozenset({"probs"})

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        p = _probs(state.unlabeled)
        if p.shape[1] < 2:
            raise StrategyError(f"margin: needs at least 2 classes, state.unlabeled.probs has {p.shape[1]}")
        top2 = torch.topk(p, 2, dim=1).values
        return top2[:, 1] - top2[:, 0]


@register_strategy("least_confidence")
class LeastConfidenceStrategy(ScoreStrategy):
    """Least confidence: score ``= 1 − max_c p_c``."""

    requires: ClassVar[frozenset[str]] = frozenset({"probs"})

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        return 1.0 - _probs(state.unlabeled).max(1).values


def bald_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """BALD (Houlsby et al. 2011), estimated from ``T`` stochastic forward passes (MC dropout, Gal et
    al. 2017): ``H[1/T Σ_t p_t(y|x)] − 1/T Σ_t H[p_t(y|x)]`` in nats, the mutual information between
    the label and the model's parameters; high where the passes are each confident but disagree.

    Args:
        mc_probs: ``(T, n, C)`` class probabilities of the ``T`` passes.

    Returns:
        ``(n,)`` float64 scores, ``>= 0`` up to rounding (entropy is concave). ``0 · log 0`` is 0.
    """
    if mc_probs.dim() != 3:
        raise StrategyError(f"bald_scores: expected (T, n, C) probabilities, got shape {tuple(mc_probs.shape)}")
    p = mc_probs.double()  # the difference of two entropies cancels: keep float64 digits
    return _entropy(p.mean(0)) - _entropy(p).mean(0)


@register_strategy("bald")
class BALDStrategy(ScoreStrategy):
    """BALD with MC dropout: :func:`bald_scores` of ``state.unlabeled.mc_probs``, the
    ``acquisition.bald_mc_samples`` seeded passes with dropout active that the classifier computes
    for BALD's trials only (what the dropout acts on per backend: :class:`~signal_hf.types.MCDropout`);
    top-n, ties → lower index."""

    requires: ClassVar[frozenset[str]] = frozenset({"mc_probs"})

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        u = state.unlabeled
        if u.mc_probs.shape[2] != u.probs.shape[1]:
            raise StrategyError(f"bald: state.unlabeled.mc_probs has {u.mc_probs.shape[2]} classes, state.unlabeled.probs has {u.probs.shape[1]}")
        return bald_scores(u.mc_probs)


# ---------------------------------------------------------------- set-based: BERT-KM, BADGE


@register_strategy("bert_km")
class BertKMStrategy(SetStrategy):
    """BERT-KM (Yuan et al. 2020): k-means with ``n`` clusters on the L2-normalised *pretrained*
    embeddings of the candidates (seeded k-means++ initialisation + Lloyd iterations), then the
    candidate nearest each centroid (all distinct). Selection order: largest cluster first (ties →
    lower cluster index)."""

    requires: ClassVar[frozenset[str]] = frozenset({"pretrained_embeddings"})

    def select(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        x = torch.nn.functional.normalize(state.unlabeled.pretrained_embeddings.float(), dim=1)
        centroids, assign = kmeans(x, n, generator=_generator(state.seed), batch_size=self.config.knn_batch_size)
        picks = distinct_nearest(centroids, x, batch_size=self.config.knn_batch_size)
        sizes = torch.bincount(assign, minlength=centroids.shape[0])
        order = torch.sort(sizes.cpu(), descending=True, stable=True).indices
        return picks.cpu()[order]


def badge_gradient_embeddings(probs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """BADGE gradient embeddings ``g_i = [(1[c = ŷ_i] − p_ic) · h_i]_c`` for every class ``c``.

    This is (minus) the gradient of the cross-entropy at the pseudo-label ``ŷ_i = argmax p_i`` with
    respect to the last linear layer's weights; kept for all classes, binary included.

    Args:
        probs: ``(n, C)`` class probabilities.
        hidden: ``(n, d)`` the classification head's input (penultimate representation).

    Returns:
        ``(n, C*d)``: class ``c``'s block is columns ``[c*d, (c+1)*d)`` (the reference layout).
    """
    if probs.dim() != 2 or hidden.dim() != 2 or probs.shape[0] != hidden.shape[0]:
        raise StrategyError(
            f"badge_gradient_embeddings: expected probs (n, C) and hidden (n, d) with the same n, "
            f"got {tuple(probs.shape)} and {tuple(hidden.shape)}"
        )
    n, C = probs.shape
    onehot = torch.nn.functional.one_hot(probs.argmax(1), C).to(probs.dtype)
    return ((onehot - probs).unsqueeze(2) * hidden.to(probs.dtype).unsqueeze(1)).reshape(n, -1)


@register_strategy("badge")
class BadgeStrategy(SetStrategy):
    """BADGE (Ash et al. 2020): k-means++ seeding on the gradient embeddings, as in the reference
    code: first the candidate with the largest gradient-embedding norm, then D² sampling (probability
    ∝ squared distance to the nearest chosen candidate), never a chosen candidate twice; seeded by
    ``state.seed``."""

    requires: ClassVar[frozenset[str]] = frozenset({"grad_embeddings"})

    def select(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        g = state.unlabeled.grad_embeddings
        return kmeans_pp_seeding(g, n, generator=_generator(state.seed), first="max_norm")


@register_strategy("coreset")
class CoreSetStrategy(SetStrategy):
    """Core-set (Sener & Savarese 2018), greedy k-center: each pick is the candidate farthest from its
    nearest labeled or already-picked point in the classifier's embedding space Φ (the L2-normalised
    representation the head reads, so Euclidean here orders as cosine). Selection order: pick order."""

    requires: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def select(self, state: AcquisitionState, n: int) -> torch.LongTensor:
        labeled = state.labeled.embeddings if state.labeled.embeddings is not None else torch.zeros(0)
        return k_center_greedy(state.unlabeled.embeddings.float(), labeled.float(), n, generator=_generator(state.seed), batch_size=self.config.knn_batch_size)


# ---------------------------------------------------------------- neighbourhood: CAL, SIGnAL


class _NeighbourStrategy(ScoreStrategy):
    requires: ClassVar[frozenset[str]] = frozenset({"probs", "embeddings"})

    def _labeled(self, state: AcquisitionState) -> PoolOutputs | None:
        """The labeled outputs after shape checks, or None when the labeled set is empty."""
        lab = state.labeled
        nl = _rows(lab.probs) if lab is not None else 0
        if nl == 0:
            return None
        self._check_outputs(lab, "labeled", nl)
        u = state.unlabeled
        if lab.probs.shape[1] != u.probs.shape[1]:
            raise StrategyError(
                f"{self.name}: state.labeled.probs has {lab.probs.shape[1]} classes, "
                f"state.unlabeled.probs has {u.probs.shape[1]}"
            )
        if lab.embeddings.shape[1] != u.embeddings.shape[1]:
            raise StrategyError(
                f"{self.name}: state.labeled.embeddings is {lab.embeddings.shape[1]}-d, "
                f"state.unlabeled.embeddings is {u.embeddings.shape[1]}-d (fix: embed both with the current classifier)"
            )
        return lab

    def _need_labeled(self, state: AcquisitionState, why: str) -> PoolOutputs:
        lab = self._labeled(state)
        if lab is None:
            raise StrategyError(f"{self.name}: the labeled set is empty but {why} (fix: {self._empty_fix})")
        return lab

    _empty_fix: ClassVar[str] = "start from a non-empty initial labeled set"


@register_strategy("cal")
class CALStrategy(_NeighbourStrategy):
    """CAL, contrastive active learning (Margatina et al. 2021): for each candidate its ``k``
    (``acquisition.k``) nearest *labeled* neighbours in the current classifier's embedding space
    (``acquisition.distance``); score = mean ``KL(p(y|x_neighbour) ‖ p(y|x_candidate))``.
    ``acquisition.neighbours`` does not apply (CAL always uses the labeled set)."""

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        lab = self._need_labeled(state, "CAL compares each candidate with its labeled neighbours")
        u, c = state.unlabeled, self.config
        return cal_scores(_probs(u), u.embeddings, _probs(lab), lab.embeddings, k=c.k, distance=c.distance,
                          batch_size=c.knn_batch_size, use_faiss=c.use_faiss,
                          query_log_probs=u.logp, ref_log_probs=lab.logp)


@register_strategy("signal")
class SignalStrategy(_NeighbourStrategy):
    """SIGnAL: ``s(x_i) = 1/k Σ_j KL(p_i ‖ p_j) / max(d(Φ_i, Φ_j), eps)`` over the ``k`` nearest
    neighbours ``x_j`` among the labeled set (``acquisition.neighbours: labeled``) or the labeled
    set plus the other candidates (``all``; a candidate is never its own neighbour). Uses
    ``acquisition.k``, ``eps``, ``distance``, ``knn_batch_size`` and ``use_faiss``."""

    _empty_fix: ClassVar[str] = "start from a non-empty initial labeled set, or set acquisition.neighbours: all"

    def compute_scores(self, state: AcquisitionState) -> torch.Tensor:
        u, c = state.unlabeled, self.config
        if c.neighbours == "labeled":
            lab = self._need_labeled(state, "SIGnAL with acquisition.neighbours=labeled needs labeled neighbours")
            ref_p, ref_e, ref_lp, excl = _probs(lab), lab.embeddings, lab.logp, None
        else:
            lab = self._labeled(state)
            nu = len(u)
            if lab is None:
                ref_p, ref_e, ref_lp, nl = _probs(u), u.embeddings, u.logp, 0
            else:
                ref_p = torch.cat([_probs(lab).to(_probs(u).dtype), _probs(u)])
                ref_lp = torch.cat([lab.logp.to(u.logp.dtype), u.logp])
                ref_e = torch.cat([lab.embeddings.to(u.embeddings.dtype), u.embeddings])
                nl = len(lab)
            # Candidate i sits at row nl + i of the reference: exclude it from its own neighbours.
            excl = torch.arange(nl, nl + nu, device=ref_e.device)
        return signal_scores(_probs(u), u.embeddings, ref_p, ref_e, k=c.k, eps=c.eps, distance=c.distance,
                             exclude_self=excl, batch_size=c.knn_batch_size, use_faiss=c.use_faiss,
                             query_log_probs=u.logp, ref_log_probs=ref_lp)
