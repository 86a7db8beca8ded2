"""k-means++ seeding, Lloyd's k-means, distinct nearest-point selection and greedy k-center, in torch.

Used by BADGE (the reference implementation's k-means++ seeding on gradient embeddings), BERT-KM
(k-means on pretrained embeddings, then the point nearest each centroid) and core-set (greedy
k-center over the classifier's embeddings). The loops here run over
*selected centers* or *iterations*, never over candidates; each step is one vectorised pass.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..errors import StrategyError
from .neighbours import knn

__all__ = ["kmeans_pp_seeding", "kmeans", "distinct_nearest", "k_center_greedy"]


@torch.no_grad()
def kmeans_pp_seeding(
    x: torch.Tensor,
    n: int,
    *,
    generator: torch.Generator,
    first: Literal["max_norm", "random"] = "random",
) -> torch.Tensor:
    """Pick ``min(n, len(x))`` distinct rows of ``x`` by k-means++ (D²) seeding.

    The first row is the one with the largest L2 norm (``first="max_norm"``, BADGE; ties → lower
    row) or uniform at random (``"random"``, classic k-means++). Each next row is drawn with
    probability proportional to its squared distance to the nearest row already chosen. A chosen
    row is never drawn again (the reference BADGE code re-draws; we mask it out). When every
    remaining row coincides with a chosen one (all D² = 0) the draw is uniform over the remaining rows.

    Args:
        x: ``(N, D)`` points.
        n: rows to choose.
        generator: seeded torch generator (reproducible draws).
        first: how the first row is chosen.

    Returns:
        ``(min(n, N),)`` long tensor of row indices in the order chosen.
    """
    N = x.shape[0]
    m = min(n, N)
    if m <= 0:
        return torch.empty(0, dtype=torch.long)
    xd = x if x.dtype in (torch.float32, torch.float64) else x.float()
    sq = (xd * xd).sum(1)
    chosen = torch.empty(m, dtype=torch.long)
    taken = torch.zeros(N, dtype=torch.bool, device=x.device)
    if first == "max_norm":
        # argmax returns the first maximal index: ties go to the lower row.
        c = int(torch.argmax(sq))
    else:
        c = int(torch.randint(N, (1,), generator=generator))
    chosen[0] = c
    taken[c] = True
    d2 = torch.full((N,), float("inf"), dtype=torch.float64, device=x.device)
    for t in range(1, m):
        # |x - c|² = |x|² + |c|² - 2 x·c: one matrix-vector product per chosen center.
        # Chosen rows are masked below, so round-off near zero cannot make them drawable.
        new = (sq + sq[c] - 2.0 * (xd @ xd[c])).double().clamp_min_(0.0)
        torch.minimum(d2, new, out=d2)
        w = d2.masked_fill(taken, 0.0)
        total = float(w.sum())
        if not total > 0.0:
            w = (~taken).double()
        c = int(torch.multinomial(w.cpu(), 1, generator=generator))
        chosen[t] = c
        taken[c] = True
    return chosen


@torch.no_grad()
def kmeans(
    x: torch.Tensor,
    n_clusters: int,
    *,
    generator: torch.Generator,
    max_iter: int = 100,
    batch_size: int = 4096,
    n_init: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with seeded k-means++ initialisation (Euclidean), best of ``n_init`` starts.

    Each start iterates until no assignment changes or ``max_iter`` iterations; a cluster that
    loses all its points keeps its previous centroid. The start with the lowest inertia (sum of
    squared distances to the assigned centroid, compared in float64; ties → the earlier start) is
    kept, as scikit-learn's ``KMeans(n_init=10)`` in BERT-KM's reference (ALPS) does. The starts
    draw from ``generator`` one after another, so the result is reproducible.

    Returns:
        ``(centroids (n_clusters', D), assignment (N,))`` with ``n_clusters' = min(n_clusters, N)``.
    """
    N = x.shape[0]
    if N == 0:
        raise StrategyError("kmeans: no points to cluster")
    if n_init < 1:
        raise StrategyError(f"kmeans: n_init must be >= 1, got {n_init}")
    xf = x.float() if x.dtype not in (torch.float32, torch.float64) else x
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for _ in range(n_init):
        centroids, assign = _lloyd(xf, kmeans_pp_seeding(xf, n_clusters, generator=generator, first="random"), max_iter, batch_size)
        inertia = float((xf.double() - centroids.double()[assign]).square().sum())
        if best is None or inertia < best[0]:
            best = (inertia, centroids, assign)
    return best[1], best[2]


def _lloyd(xf: torch.Tensor, init: torch.Tensor, max_iter: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd iterations from the rows ``init`` of ``xf``."""
    centroids = xf[init].clone()
    m = centroids.shape[0]
    assign = torch.full((xf.shape[0],), -1, dtype=torch.long, device=xf.device)
    for _ in range(max_iter):
        new_assign = knn(xf, centroids, 1, batch_size=batch_size)[1][:, 0]
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
        sums = torch.zeros_like(centroids).index_add_(0, assign, xf)
        counts = torch.bincount(assign, minlength=m)
        nonempty = counts > 0
        centroids[nonempty] = sums[nonempty] / counts[nonempty].unsqueeze(1).to(sums.dtype)
    return centroids, assign


@torch.no_grad()
def distinct_nearest(centers: torch.Tensor, x: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """For each center the nearest row of ``x``, all distinct (needs ``len(centers) ≤ len(x)``).

    When several centers share a nearest row, the closest center keeps it (ties → lower center)
    and the others take their nearest row among those still free; repeated until no conflict.
    Each round settles at least one center, and is one vectorised kNN.

    Returns:
        ``(len(centers),)`` long tensor of rows of ``x``.
    """
    n, N = centers.shape[0], x.shape[0]
    if n > N:
        raise StrategyError(f"distinct_nearest: {n} centers but only {N} points")
    chosen = torch.full((n,), -1, dtype=torch.long, device=x.device)
    used = torch.zeros(N, dtype=torch.bool, device=x.device)
    pending = torch.arange(n, device=x.device)
    while pending.numel():
        free = (~used).nonzero().squeeze(1)
        dist, idx = knn(centers[pending], x[free], 1, batch_size=batch_size)
        pts, dd = free[idx[:, 0]], dist[:, 0]
        # Order by (point, distance, center): the first entry of each point's run is its winner.
        order = torch.sort(dd, stable=True).indices
        order = order[torch.sort(pts[order], stable=True).indices]
        p_sorted = pts[order]
        first = torch.ones_like(p_sorted, dtype=torch.bool)
        first[1:] = p_sorted[1:] != p_sorted[:-1]
        winners = order[first]
        chosen[pending[winners]] = pts[winners]
        used[pts[winners]] = True
        keep = torch.ones(pending.numel(), dtype=torch.bool, device=x.device)
        keep[winners] = False
        pending = pending[keep]
    return chosen


@torch.no_grad()
def k_center_greedy(
    x: torch.Tensor, centers: torch.Tensor, n: int, *, generator: torch.Generator, batch_size: int = 4096
) -> torch.Tensor:
    """Greedy k-center (Sener & Savarese 2018): ``min(n, len(x))`` distinct rows of ``x``, each the one
    farthest (Euclidean) from its nearest point among ``centers`` and the rows already picked.

    Vectorised: the distance of every row to its nearest center is kept and lowered by one pass per
    pick. Ties go to the lower row index. Without ``centers`` (an empty labeled set) the first pick is
    a seeded random row.
    """
    if x.dim() != 2 or (centers.numel() and (centers.dim() != 2 or centers.shape[1] != x.shape[1])):
        raise StrategyError(f"k_center_greedy: expected x (N, d) and centers (M, d), got {tuple(x.shape)} and {tuple(centers.shape)}")
    N = x.shape[0]
    n = min(int(n), N)
    xf = x.double()  # float64: a pick is an argmax over distances; keep rounding out of it
    if centers.numel():
        cf = centers.double()
        nearest = torch.cat([torch.cdist(xf[lo : lo + batch_size], cf).min(dim=1).values for lo in range(0, N, batch_size)])
        picks: list[int] = []
    else:
        first = int(torch.randint(N, (1,), generator=generator))
        nearest = torch.cdist(xf, xf[first : first + 1]).squeeze(1)
        picks = [first]
    while len(picks) < n:
        if picks:
            nearest[torch.tensor(picks)] = -1.0  # never picked twice
        i = int(torch.argmax(nearest))  # the first maximum: ties -> lower index
        picks.append(i)
        nearest = torch.minimum(nearest, torch.cdist(xf, xf[i : i + 1]).squeeze(1))
    return torch.tensor(picks[:n], dtype=torch.long)
