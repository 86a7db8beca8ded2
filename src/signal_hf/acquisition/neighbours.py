"""Batched exact k-nearest-neighbours in the classifier's embedding space Φ (torch, or faiss).

Memory: :func:`knn` never builds the full ``nq × nr`` distance matrix; it walks the queries in
blocks whose ``rows × nr`` stays under :data:`MAX_BLOCK_ELEMENTS` (and under ``batch_size`` rows).
"""

from __future__ import annotations

import logging
from typing import Literal

import torch

from ..errors import StrategyError

__all__ = ["knn", "all_finite", "MAX_BLOCK_ELEMENTS", "Distance"]

logger = logging.getLogger(__name__)

Distance = Literal["euclidean", "cosine"]

#: Upper bound on the elements of one distance block (block rows × reference rows): 2**25 float32
#: values = 128 MiB.
MAX_BLOCK_ELEMENTS: int = 2**25

_DISTANCES = ("euclidean", "cosine")
_faiss_note_logged = False


def all_finite(t: torch.Tensor) -> bool:
    """Whether ``t`` has no NaN/inf. One reduction (no bool copy) on the fast path; the exact
    element-wise check runs only when the sum is not finite (NaN/inf, or an overflowing sum)."""
    if bool(torch.isfinite(t.sum())):
        return True
    return bool(torch.isfinite(t).all())


def _check_distance(distance: str) -> None:
    if distance not in _DISTANCES:
        raise StrategyError(f"distance: unknown distance {distance!r} (fix: use one of {list(_DISTANCES)})")


def _as_float_matrix(t: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise StrategyError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 2:
        raise StrategyError(f"{name}: expected a 2-D (rows, dim) tensor, got shape {tuple(t.shape)}")
    # Half precision loses too much in the distance; float64 input is kept as is.
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _block_rows(batch_size: int, n_ref: int) -> int:
    if batch_size <= 0:
        raise StrategyError(f"batch_size: must be > 0, got {batch_size} (fix: e.g. 4096)")
    return max(1, min(batch_size, MAX_BLOCK_ELEMENTS // max(n_ref, 1)))


def _faiss_search(
    query: torch.Tensor, reference: torch.Tensor, k_search: int, distance: str
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(values, rows)`` of the nearest reference rows from a flat (exact) faiss index — values are
    squared L2 (euclidean) or ``1 − cos`` (cosine) — or None when faiss is not installed."""
    global _faiss_note_logged
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        if not _faiss_note_logged:
            logger.info("acquisition.use_faiss is set but faiss is not installed; using the torch kNN "
                        "(pip install faiss-cpu to use faiss)")
            _faiss_note_logged = True
        return None
    q = query.detach().to("cpu", torch.float32).contiguous()
    r = reference.detach().to("cpu", torch.float32).contiguous()
    if distance == "cosine":
        q = torch.nn.functional.normalize(q, dim=-1)
        r = torch.nn.functional.normalize(r, dim=-1)
        index = faiss.IndexFlatIP(r.shape[1])
    else:
        index = faiss.IndexFlatL2(r.shape[1])
    index.add(r.numpy())
    val, idx = index.search(q.numpy(), k_search)
    val_t = torch.from_numpy(val).to(query.device, query.dtype)
    if distance == "cosine":
        val_t = 1.0 - val_t
    return val_t, torch.from_numpy(idx).long().to(query.device)


@torch.no_grad()
def knn(
    query: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    *,
    distance: Distance = "euclidean",
    batch_size: int = 4096,
    use_faiss: bool = False,
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest reference rows of every query row, nearest first.

    Args:
        query: ``(nq, d)`` query points.
        reference: ``(nr, d)`` reference points.
        k: neighbours wanted; ``k' = min(k, available)`` are returned, where available is ``nr``, or
            ``nr - 1`` when some row has an exclusion (the same ``k'`` for every row).
        distance: ``euclidean`` (L2) or ``cosine`` (``1 - cos``, in ``[0, 2]``).
        batch_size: at most this many query rows per distance block; the block is further capped so
            that ``rows × nr ≤ MAX_BLOCK_ELEMENTS``.
        use_faiss: find the neighbours with a flat (exact) faiss index when faiss is installed; falls
            back to torch, with a logged note, when it is not.
        exclude: optional ``(nq,)`` long tensor: the reference row each query must not get as a
            neighbour (the query itself when it is also in the reference), ``-1`` for none.

    Returns:
        ``(dist, idx)``, both ``(nq, k')``: distances and reference row indices, nearest first (equal
        distances: lower row first). Euclidean distances below ~10 % of the vectors' scale are
        recomputed from the difference vectors, so near-duplicates get accurate (near-zero) distances.

    Raises:
        StrategyError: bad shapes, ``k <= 0``, an unknown distance, or an empty reference set.
    """
    query, reference, exclude, kk = _checked_inputs(query, reference, k, distance, exclude)
    has_excl = exclude is not None
    nq, nr = query.shape[0], reference.shape[0]
    if nq == 0:
        return query.new_empty((0, kk)), torch.empty((0, kk), dtype=torch.long, device=query.device)
    # One extra candidate per row when excluding: the excluded row can take at most one slot.
    k_search = min(kk + (1 if has_excl else 0), nr)
    q_sq = (query * query).sum(-1)
    r_sq = (reference * reference).sum(-1)
    found = _faiss_search(query, reference, k_search, distance) if use_faiss else None
    cand_val, cand_idx = found if found is not None else _torch_search(query, reference, r_sq, q_sq, k_search, distance, batch_size, exclude)
    if distance == "cosine":
        cand_dist = cand_val.clamp(0.0, 2.0)
    else:
        cand_dist = _euclidean_distances(query, reference, q_sq, r_sq, cand_val, cand_idx)
    if has_excl:
        cand_dist[cand_idx == exclude.unsqueeze(1)] = float("inf")
    # Sort the candidates by row, then stably by distance: equal distances keep the lower row first.
    by_row = torch.sort(cand_idx, dim=1).indices
    cand_idx, cand_dist = cand_idx.gather(1, by_row), cand_dist.gather(1, by_row)
    order = torch.sort(cand_dist, dim=1, stable=True).indices[:, :kk]
    return cand_dist.gather(1, order), cand_idx.gather(1, order)


def _checked_inputs(query, reference, k, distance, exclude) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
    """Float matrices of one dtype, the exclusions (``None`` when no row has one), and ``k'``."""
    query = _as_float_matrix(query, "query")
    reference = _as_float_matrix(reference, "reference")
    _check_distance(distance)
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise StrategyError(f"k: must be a positive integer, got {k!r} (fix: e.g. 10)")
    nq, nr = query.shape[0], reference.shape[0]
    if query.shape[1] != reference.shape[1]:
        raise StrategyError(
            f"query/reference: embedding sizes differ ({query.shape[1]} vs {reference.shape[1]}) "
            "(fix: embed both with the same model)"
        )
    if reference.dtype != query.dtype:
        query, reference = query.double(), reference.double()
    if exclude is not None:
        exclude = torch.as_tensor(exclude, dtype=torch.long, device=query.device)
        if exclude.shape != (nq,):
            raise StrategyError(f"exclude: expected shape ({nq},), got {tuple(exclude.shape)}")
        if bool(((exclude < -1) | (exclude >= nr)).any()):
            raise StrategyError(f"exclude: entries must be -1 or a row of the reference (0..{nr - 1})")
        if not bool((exclude >= 0).any()):
            exclude = None
    available = nr - 1 if exclude is not None else nr
    if available <= 0:
        raise StrategyError(
            f"reference: no neighbours available ({nr} reference rows"
            + (", each query excludes itself" if exclude is not None else "")
            + ") (fix: label some examples first or use a larger reference set)"
        )
    return query, reference, exclude, min(k, available)


def _torch_search(query, reference, r_sq, q_sq, k_search: int, distance: str, batch_size: int, exclude) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, rows)`` of the ``k_search`` nearest reference rows, block by block: values are
    ``1 − cos`` (cosine) or squared L2 from the expansion (euclidean)."""
    nq, nr = query.shape[0], reference.shape[0]
    cand_val = torch.empty((nq, k_search), dtype=query.dtype, device=query.device)
    cand_idx = torch.empty((nq, k_search), dtype=torch.long, device=query.device)
    rows = _block_rows(batch_size, nr)
    ref_n = torch.nn.functional.normalize(reference, dim=-1) if distance == "cosine" else None
    for s in range(0, nq, rows):
        qb = query[s : s + rows]
        # Rank by a per-row shifted distance (one fused matmul, no extra block-sized temporaries):
        # cosine: −cos = (1 − cos) − 1; euclidean: |r|² − 2q·r = d² − |q|².
        if ref_n is not None:
            d = torch.nn.functional.normalize(qb, dim=-1) @ ref_n.T
            d.neg_()
        else:
            d = torch.addmm(r_sq.unsqueeze(0), qb, reference.T, alpha=-2.0)
        if exclude is not None:
            eb = exclude[s : s + rows]
            r = (eb >= 0).nonzero().squeeze(1)
            d[r, eb[r]] = float("inf")
        top = torch.topk(d, k_search, dim=1, largest=False, sorted=True)
        shift = 1.0 if ref_n is not None else q_sq[s : s + rows].unsqueeze(1)
        cand_val[s : s + rows], cand_idx[s : s + rows] = top.values + shift, top.indices
    return cand_val, cand_idx


def _euclidean_distances(query, reference, q_sq, r_sq, cand_val, cand_idx) -> torch.Tensor:
    """L2 distances of the candidate pairs from their squared-expansion values.

    The expansion |q|²+|r|²−2q·r has an absolute error ~1e-7·(|q|²+|r|²): harmless unless the
    distance is tiny, which is exactly where SIGnAL's eps floor acts. Those pairs are recomputed from
    the difference vectors (few in practice; gathered pairs only, never a full block).
    """
    cand_dist = cand_val.clamp_min(0.0)
    scale = q_sq.unsqueeze(1) + r_sq[cand_idx]
    near = (cand_dist < 1e-2 * scale).nonzero()
    if near.numel():
        qi, cj = near[:, 0], near[:, 1]
        step = max(1, MAX_BLOCK_ELEMENTS // max(query.shape[1], 1))
        for s in range(0, qi.numel(), step):
            qs, cs = qi[s : s + step], cj[s : s + step]
            cand_dist[qs, cs] = (query[qs] - reference[cand_idx[qs, cs]]).norm(dim=-1).square()
    return cand_dist.sqrt()
