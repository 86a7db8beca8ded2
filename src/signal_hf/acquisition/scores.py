"""The two neighbourhood scores of the paper, on plain tensors: SIGnAL's and CAL's.

``signal_scores`` — ``s(x_i) = 1/k Σ_j KL(p(y|x_i) ‖ p(y|x_j)) / d(Φ_i, Φ_j)`` over the k nearest
reference points (contrastive like CAL, discounted by distance so irrelevant out-of-distribution
text scores low); ``cal_scores`` — CAL's mean ``KL(p_j ‖ p_i)`` over the k nearest labeled points.
Both take the query points and the reference set explicitly, so the RL reward can score generated
texts that are in no pool. The neighbours come from :func:`signal_hf.acquisition.neighbours.knn`.
"""

from __future__ import annotations

import torch

from ..errors import StrategyError
from ..types import PROB_FLOOR
from .neighbours import Distance, _as_float_matrix, all_finite, knn

__all__ = ["signal_scores", "cal_scores", "kl_divergence", "neighbour_log_probs"]


def kl_divergence(p: torch.Tensor, q: torch.Tensor, *, log_p: torch.Tensor | None = None, log_q: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(p ‖ q) = Σ_c p_c (log p_c − log q_c)`` over the last dimension (broadcasting).

    Pass ``log_p``/``log_q`` (``log_softmax`` of the logits) whenever the classifier has them: they
    stay exact where a probability underflows. Without them the probabilities are clamped to
    ``≥ PROB_FLOOR`` before the log, so zeros give finite values (a zero ``p_c`` contributes 0) —
    but once logit gaps exceed ~28 the clamp changes the score.
    """
    lp = p.clamp_min(PROB_FLOOR).log() if log_p is None else log_p.to(p.dtype)
    lq = q.clamp_min(PROB_FLOOR).log() if log_q is None else log_q.to(p.dtype)
    return (p * (lp - lq)).sum(-1)


def neighbour_log_probs(query_log_probs: torch.Tensor | None, ref_log_probs: torch.Tensor | None, idx: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(nq, 1, C)`` query and ``(nq, k, C)`` neighbour log-probabilities for a kNN result ``idx``
    (``None`` where not given), shaped like the probabilities :func:`kl_divergence` receives."""
    lp_i = None if query_log_probs is None else query_log_probs.unsqueeze(1)
    lp_j = None if ref_log_probs is None else ref_log_probs[idx]
    return lp_i, lp_j


def _check_probs(probs: torch.Tensor, name: str) -> torch.Tensor:
    probs = _as_float_matrix(probs, name)
    if probs.shape[1] < 1:
        raise StrategyError(f"{name}: has no class columns (shape {tuple(probs.shape)})")
    if probs.numel() and not all_finite(probs):
        raise StrategyError(f"{name}: contains NaN or inf (fix: check the classifier outputs)")
    return probs


@torch.no_grad()
def signal_scores(
    query_probs: torch.Tensor,
    query_emb: torch.Tensor,
    ref_probs: torch.Tensor,
    ref_emb: torch.Tensor,
    *,
    k: int,
    eps: float,
    distance: Distance = "euclidean",
    exclude_self: torch.Tensor | None = None,
    batch_size: int = 4096,
    use_faiss: bool = False,
    query_log_probs: torch.Tensor | None = None,
    ref_log_probs: torch.Tensor | None = None,
) -> torch.Tensor:
    """SIGnAL acquisition score of each query point against a reference set.

    ``s(x_i) = 1/k' Σ_{j ∈ kNN(i)} KL(p_i ‖ p_j) / max(d(Φ_i, Φ_j), eps)`` where the neighbours are the
    ``k' = min(k, available)`` nearest reference rows in embedding space.

    Args:
        query_probs: ``(nq, C)`` class probabilities of the points to score (they need not be in any
            pool, e.g. freshly generated texts).
        query_emb: ``(nq, d)`` their embeddings Φ.
        ref_probs: ``(nr, C)`` probabilities of the reference points (the labeled set, or all points).
        ref_emb: ``(nr, d)`` their embeddings.
        k: neighbours per point (fewer when the reference is smaller).
        eps: floor of the distance in the denominator (> 0), so duplicates do not divide by zero.
        distance: ``euclidean`` or ``cosine``.
        exclude_self: ``(nq,)`` long tensor, each query's own row in the reference or ``-1``; a point
            is never its own neighbour (needed when the reference contains the queries).
        batch_size: query rows per kNN block.
        use_faiss: see :func:`knn`.
        query_log_probs / ref_log_probs: ``log_softmax`` of the logits, used for the KL's logs
            when given (see :func:`kl_divergence`).

    Returns:
        ``(nq,)`` scores, higher = more informative.
    """
    query_probs = _check_probs(query_probs, "query_probs")
    ref_probs = _check_probs(ref_probs, "ref_probs")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise StrategyError(f"eps: must be > 0, got {eps!r} (fix: e.g. 1e-4)")
    if query_probs.shape[1] != ref_probs.shape[1]:
        raise StrategyError(
            f"query_probs/ref_probs: class counts differ ({query_probs.shape[1]} vs {ref_probs.shape[1]})"
        )
    if query_emb.shape[0] != query_probs.shape[0]:
        raise StrategyError(f"query_emb: has {query_emb.shape[0]} rows but query_probs has {query_probs.shape[0]}")
    if ref_emb.shape[0] != ref_probs.shape[0]:
        raise StrategyError(f"ref_emb: has {ref_emb.shape[0]} rows but ref_probs has {ref_probs.shape[0]}")
    dist, idx = knn(query_emb, ref_emb, k, distance=distance, batch_size=batch_size,
                    use_faiss=use_faiss, exclude=exclude_self)
    # (nq, k', C) gathered neighbour probabilities; k' and C are small.
    p_i = query_probs.unsqueeze(1).to(ref_probs.dtype)
    p_j = ref_probs[idx]
    lp_i, lp_j = neighbour_log_probs(query_log_probs, ref_log_probs, idx)
    kl = kl_divergence(p_i, p_j, log_p=lp_i, log_q=lp_j)
    return (kl / dist.to(kl.dtype).clamp_min(eps)).mean(1)


def cal_scores(
    query_probs: torch.Tensor,
    query_emb: torch.Tensor,
    ref_probs: torch.Tensor,
    ref_emb: torch.Tensor,
    *,
    k: int,
    distance: str = "euclidean",
    batch_size: int = 4096,
    use_faiss: bool = False,
    query_log_probs: torch.Tensor | None = None,
    ref_log_probs: torch.Tensor | None = None,
) -> torch.Tensor:
    """CAL score (Margatina et al. 2021, reference implementation): the mean over the ``k`` nearest
    reference (labeled) points ``x_j`` of ``KL(p(y|x_j) ‖ p(y|x_i))``. No distance weighting.
    ``*_log_probs`` (``log_softmax`` of the logits, as the reference's ``KLDivLoss`` input) are
    used for the logs when given.

    Returns ``(nq,)`` scores, higher = more informative.
    """
    if query_probs.shape[0] != query_emb.shape[0] or ref_probs.shape[0] != ref_emb.shape[0]:
        raise StrategyError("cal_scores: probs and embeddings must have the same number of rows")
    if query_probs.shape[1] != ref_probs.shape[1]:
        raise StrategyError(f"cal_scores: class counts differ ({query_probs.shape[1]} vs {ref_probs.shape[1]})")
    _, idx = knn(query_emb, ref_emb, k, distance=distance, batch_size=batch_size, use_faiss=use_faiss)
    p_i = query_probs.unsqueeze(1).to(ref_probs.dtype)
    # The reference code's KLDivLoss(log q_candidate, p_neighbour) = KL(p_neighbour ‖ q_candidate).
    lp_i, lp_j = neighbour_log_probs(query_log_probs, ref_log_probs, idx)
    return kl_divergence(ref_probs[idx], p_i, log_p=lp_j, log_q=lp_i).mean(1)
