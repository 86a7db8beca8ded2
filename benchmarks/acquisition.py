"""Acquisition speed: SIGnAL, CAL and BADGE selection, ours against small-text 1.4.1.

Inputs are synthetic but shaped like a fine-tuned encoder's outputs: ``dim``-d hidden states drawn
around one centre per class, the L2-normalised hidden states as embeddings Φ, and softmax
probabilities of a linear head. Every implementation gets the *same* tensors; small-text's strategies
are fed through two small shims (:class:`PrecomputedClassifier`, :class:`RowsDataset`) whose
``embed(..., return_proba=True)`` returns those precomputed rows, so what is timed is the selection
algorithm only (no model forward pass on either side).

What small-text 1.4.1 computes (read from its source, ``small_text/query_strategies/strategies.py``
and ``small_text/integrations/pytorch/query_strategies/strategies.py``):

* ``ContrastiveActiveLearning``: a scikit-learn ``NearestNeighbors`` index over *all* rows (unlabeled
  and labeled, so a candidate is its own nearest neighbour), then per candidate (a Python loop) the
  mean of ``scipy.special.rel_entr(p_neighbour, p_candidate)`` over the ``k`` neighbours *and the C
  classes*, i.e. ``KL(p_j ‖ p_i) / C`` averaged over neighbours. Margatina et al.'s reference CAL —
  and ours (:class:`signal_hf.acquisition.CALStrategy`) — takes the ``k`` nearest *labeled* rows.
  So two comparisons are reported: ours as shipped (labeled neighbours) vs small-text, and
  "like-for-like": :func:`signal_hf.acquisition.cal_scores` on small-text's neighbour set
  (unlabeled ∪ labeled, divided by C), whose selection must equal small-text's.
* ``BADGE``: scikit-learn's greedy ``kmeans_plusplus`` (``2 + ln n`` local trials per centre,
  unseeded) on ``-p_c · h`` blocks for C > 2 and on the raw hidden states for C = 2. Ours is the
  reference BADGE (gradient embeddings ``(1[c=ŷ] − p_c) · h``, first centre of largest norm, D²
  sampling). The algorithms differ, so only time and memory are compared; our timing includes
  building the gradient embeddings, as small-text's includes building its own.

small-text has no SIGnAL; SIGnAL is reported on its own.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from signal_hf.acquisition import badge_gradient_embeddings, cal_scores, get_strategy, top_n
from signal_hf.config import AcquisitionConfig
from signal_hf.types import AcquisitionState, PoolOutputs

from .common import fmt_mb, fmt_ratio, fmt_s, measure

__all__ = [
    "PoolInputs",
    "make_inputs",
    "PrecomputedClassifier",
    "RowsDataset",
    "IMPLEMENTATIONS",
    "COMPARISONS",
    "run_acquisition",
    "acquisition_table",
    "small_text_available",
]

logger = logging.getLogger("benchmarks")


# ---------------------------------------------------------------- inputs


@dataclass
class PoolInputs:
    """One benchmark pool: ``n_pool`` unlabeled candidates and ``n_labeled`` labeled rows.

    Attributes:
        probs_u / probs_l: ``(n, C)`` float32 class probabilities.
        emb_u / emb_l: ``(n, dim)`` float32 L2-normalised embeddings Φ (the ``PoolOutputs.embeddings``).
        hidden_u / hidden_l: ``(n, dim)`` float32 un-normalised head inputs h (BADGE's input).
    """

    probs_u: torch.Tensor
    emb_u: torch.Tensor
    hidden_u: torch.Tensor
    probs_l: torch.Tensor
    emb_l: torch.Tensor
    hidden_l: torch.Tensor

    @property
    def n_pool(self) -> int:
        return int(self.probs_u.shape[0])

    @property
    def n_labeled(self) -> int:
        return int(self.probs_l.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.probs_u.shape[1])

    @property
    def dim(self) -> int:
        return int(self.emb_u.shape[1])

    def state(self, *, seed: int = 0, grad_embeddings: torch.Tensor | None = None) -> AcquisitionState:
        return AcquisitionState(
            unlabeled=PoolOutputs(probs=self.probs_u, embeddings=self.emb_u, grad_embeddings=grad_embeddings),
            labeled=PoolOutputs(probs=self.probs_l, embeddings=self.emb_l),
            seed=seed,
        )


def make_inputs(n_pool: int, n_labeled: int, num_classes: int, *, dim: int = 768, seed: int = 0) -> PoolInputs:
    """Seeded synthetic pool: hidden states around one centre per class (so neighbourhoods and
    probabilities are correlated, as with a trained encoder), Φ = h/|h|, p = softmax of a linear head."""
    if n_pool <= 0 or n_labeled <= 0 or num_classes < 2 or dim <= 0:
        raise ValueError(f"make_inputs: need n_pool, n_labeled > 0, num_classes >= 2, dim > 0 (got {n_pool}, {n_labeled}, {num_classes}, {dim})")
    g = torch.Generator().manual_seed(seed)
    n = n_pool + n_labeled
    centres = torch.randn(num_classes, dim, generator=g)
    y = torch.randint(num_classes, (n,), generator=g)
    hidden = centres[y] + 1.5 * torch.randn(n, dim, generator=g)
    hidden *= 4.0 / dim**0.5  # norms ~8, like a BERT pooler's inputs
    emb = torch.nn.functional.normalize(hidden, dim=1)
    # Logits: scaled cosine to the class centres; the scale gives a spread of confident/uncertain rows.
    logits = 6.0 * emb @ torch.nn.functional.normalize(centres, dim=1).T
    probs = torch.softmax(logits, dim=1)
    u, l = slice(0, n_pool), slice(n_pool, n)
    return PoolInputs(probs[u].contiguous(), emb[u].contiguous(), hidden[u].contiguous(),
                      probs[l].contiguous(), emb[l].contiguous(), hidden[l].contiguous())


# ---------------------------------------------------------------- small-text shims


class RowsDataset:
    """The part of a small-text dataset its embedding strategies touch: ``len`` and row indexing.
    Holds precomputed feature rows ``x`` and probabilities ``proba`` (numpy)."""

    def __init__(self, x: np.ndarray, proba: np.ndarray):
        if len(x) != len(proba):
            raise ValueError(f"RowsDataset: {len(x)} feature rows but {len(proba)} probability rows")
        self.x, self.proba = x, proba

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: Any) -> "RowsDataset":
        return RowsDataset(self.x[idx], self.proba[idx])


class PrecomputedClassifier:
    """A small-text classifier stand-in whose ``embed`` returns the dataset's precomputed rows,
    as small-text's transformer classifier returns ``(embeddings, proba)`` from a forward pass."""

    def embed(self, data_set: RowsDataset, return_proba: bool = False, pbar: Any = None, **kwargs: Any):
        return (data_set.x, data_set.proba) if return_proba else data_set.x

    def predict_proba(self, data_set: RowsDataset) -> np.ndarray:
        return data_set.proba


def small_text_available() -> bool:
    try:
        import small_text  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- implementations

Impl = Callable[[PoolInputs, int, int, int], np.ndarray]


def _ours_signal(inp: PoolInputs, n: int, k: int, seed: int) -> np.ndarray:
    strategy = get_strategy("signal", AcquisitionConfig(k=k))
    return strategy.query(inp.state(seed=seed), n).numpy()


def _ours_cal(inp: PoolInputs, n: int, k: int, seed: int) -> np.ndarray:
    strategy = get_strategy("cal", AcquisitionConfig(k=k))
    return strategy.query(inp.state(seed=seed), n).numpy()


def _ours_cal_union(inp: PoolInputs, n: int, k: int, seed: int) -> np.ndarray:
    # small-text's CAL: neighbours among unlabeled ∪ labeled (rows in that order), mean over classes too.
    ref_p = torch.cat([inp.probs_u, inp.probs_l])
    ref_e = torch.cat([inp.emb_u, inp.emb_l])
    scores = cal_scores(inp.probs_u, inp.emb_u, ref_p, ref_e, k=k) / inp.num_classes
    return top_n(scores, n).numpy()


def _ours_badge(inp: PoolInputs, n: int, k: int, seed: int) -> np.ndarray:
    grad = badge_gradient_embeddings(inp.probs_u, inp.hidden_u)
    return get_strategy("badge").query(inp.state(seed=seed, grad_embeddings=grad), n).numpy()


def _small_text_query(strategy: Any, x_u: torch.Tensor, x_l: torch.Tensor, inp: PoolInputs, n: int) -> np.ndarray:
    # Rows 0..n_pool-1 are the candidates, the labeled rows follow (the dataset small-text indexes).
    x = torch.cat([x_u, x_l]).numpy()
    proba = torch.cat([inp.probs_u, inp.probs_l]).numpy()
    ds = RowsDataset(x, proba)
    idx_u = np.arange(inp.n_pool)
    idx_l = np.arange(inp.n_pool, inp.n_pool + inp.n_labeled)
    y = inp.probs_l.argmax(1).numpy()
    return np.asarray(strategy.query(PrecomputedClassifier(), ds, idx_u, idx_l, y, n=n))


def _st_cal(inp: PoolInputs, n: int, k: int, seed: int) -> np.ndarray:
    from small_text.query_strategies import ContrastiveActiveLearning

    return _small_text_query(ContrastiveActiveLearning(k=k, pbar=None), inp.emb_u, inp.emb_l, inp, n)


def _st_badge(inp: PoolInputs, n: int, k: int, seed: int) -> np.ndarray:
    from small_text.integrations.pytorch.query_strategies import BADGE

    # small-text's transformer classifier embeds with the encoder's hidden states (h, not Φ).
    return _small_text_query(BADGE(inp.num_classes), inp.hidden_u, inp.hidden_l, inp, n)


@dataclass(frozen=True)
class Implementation:
    name: str
    label: str
    side: str  # "ours" or "small-text"
    fn: Impl


IMPLEMENTATIONS: dict[str, Implementation] = {
    i.name: i
    for i in (
        Implementation("signal", "SIGnAL (labeled kNN)", "ours", _ours_signal),
        Implementation("cal", "CAL (reference: labeled kNN)", "ours", _ours_cal),
        Implementation("cal_union", "CAL on small-text's neighbour set", "ours", _ours_cal_union),
        Implementation("st_cal", "small-text ContrastiveActiveLearning", "small-text", _st_cal),
        Implementation("badge", "BADGE (reference)", "ours", _ours_badge),
        Implementation("st_badge", "small-text BADGE", "small-text", _st_badge),
    )
}

#: (row label, ours, theirs or None, whether the two selections must be identical)
COMPARISONS: list[tuple[str, str, str | None, bool]] = [
    ("SIGnAL", "signal", None, False),
    ("CAL: ours vs small-text", "cal", "st_cal", False),
    ("CAL like-for-like (U∪L kNN)", "cal_union", "st_cal", True),
    ("BADGE", "badge", "st_badge", False),
]


# ---------------------------------------------------------------- the benchmark


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return len(set(a.tolist()) & set(b.tolist())) / max(1, len(a))


def run_acquisition(
    sizes: list[int],
    classes: list[int],
    *,
    labeled: float = 0.1,
    dim: int = 768,
    n_query: int = 100,
    k: int = 10,
    repeats: int = 3,
    slow_s: float = 20.0,
    methods: list[str] | None = None,
    seed: int = 0,
    memory: bool = True,
    large_pool: int = 10_000,
) -> dict[str, Any]:
    """Time every implementation on every (pool size, classes) configuration.

    Args:
        sizes: unlabeled pool sizes.
        classes: class counts.
        labeled: labeled-set size: a fraction of the pool (< 1) or a fixed row count (≥ 1).
        dim: embedding size.
        n_query: items selected per query (the round budget b).
        k: neighbours of CAL/SIGnAL.
        repeats: runs per implementation, interleaved (round r runs every implementation once, in an
            order rotated by r); the median is reported.
        slow_s: an implementation whose first run takes longer than this runs only once for that
            configuration (the row says ``runs = 1``).
        methods: names from :data:`IMPLEMENTATIONS` (default: all, small-text ones only if installed).
        seed: seeds inputs and our BADGE sampling.
        memory: measure peak RSS of each run.
        large_pool: above this pool size the like-for-like CAL (``cal_union``) is skipped and the
            small-text implementations run for the first class count only. Both cost minutes at 50k
            on 2 cores (their kNN runs over unlabeled ∪ labeled); pass a larger value for the full
            matrix.

    Returns:
        ``{"config": ..., "results": [per-implementation rows], "comparisons": [paired rows]}``.
    """
    names = list(methods) if methods is not None else [n for n, i in IMPLEMENTATIONS.items() if i.side == "ours" or small_text_available()]
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        raise ValueError(f"methods: unknown {unknown} (valid: {list(IMPLEMENTATIONS)})")
    if repeats < 1:
        raise ValueError(f"repeats: must be >= 1, got {repeats}")
    results: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for n_pool in sizes:
        n_lab = int(round(labeled * n_pool)) if labeled < 1 else int(labeled)
        for C in classes:
            inp = make_inputs(n_pool, n_lab, C, dim=dim, seed=seed)
            n = min(n_query, n_pool)
            large = n_pool > large_pool
            todo = [m for m in names if not (large and (m == "cal_union" or (IMPLEMENTATIONS[m].side == "small-text" and C != classes[0])))]
            times: dict[str, list[float]] = {m: [] for m in todo}
            cpu: dict[str, list[float]] = {m: [] for m in todo}
            peaks: dict[str, list[int]] = {m: [] for m in todo}
            picks: dict[str, np.ndarray] = {}
            for r in range(repeats):
                order = todo[r % len(todo):] + todo[: r % len(todo)]
                for m in order:
                    if r > 0 and times[m] and times[m][0] > slow_s:
                        continue
                    got = measure(lambda: IMPLEMENTATIONS[m].fn(inp, n, k, seed), memory=memory)
                    times[m].append(got.seconds)
                    cpu[m].append(got.cpu_seconds)
                    if got.peak_bytes is not None:
                        peaks[m].append(got.peak_bytes)
                    picks.setdefault(m, np.asarray(got.result))
                    logger.info("acquisition pool=%d C=%d %s run %d: %.3fs", n_pool, C, m, r + 1, got.seconds)
            rows = []
            for m in todo:
                rows.append({
                    "pool": n_pool, "labeled": n_lab, "classes": C, "dim": dim, "n_query": n, "k": k,
                    "method": m, "label": IMPLEMENTATIONS[m].label, "side": IMPLEMENTATIONS[m].side,
                    "runs": len(times[m]), "seconds": times[m], "median_s": statistics.median(times[m]),
                    "min_s": min(times[m]), "cpu_seconds": cpu[m], "peak_bytes": int(statistics.median(peaks[m])) if peaks[m] else None,
                    "selected": len(picks[m]), "distinct": len(set(picks[m].tolist())),
                })
            for label, ours, theirs, must_match in COMPARISONS:
                if ours not in todo or (theirs is not None and theirs not in todo):
                    continue
                row_o = next(x for x in rows if x["method"] == ours)
                row = {"pool": n_pool, "labeled": n_lab, "classes": C, "comparison": label, "ours": ours, "theirs": theirs,
                       "ours_s": row_o["median_s"], "ours_peak_bytes": row_o["peak_bytes"], "ours_runs": row_o["runs"],
                       "ours_cpu_s": statistics.median(row_o["cpu_seconds"]),
                       "theirs_s": None, "theirs_peak_bytes": None, "theirs_runs": 0, "speedup": None, "cpu_speedup": None,
                       "overlap": None, "must_match": must_match}
                if theirs is not None:
                    row_t = next(x for x in rows if x["method"] == theirs)
                    theirs_cpu = statistics.median(row_t["cpu_seconds"])
                    row.update(theirs_s=row_t["median_s"], theirs_peak_bytes=row_t["peak_bytes"], theirs_runs=row_t["runs"],
                               speedup=row_t["median_s"] / row_o["median_s"], theirs_cpu_s=theirs_cpu,
                               cpu_speedup=theirs_cpu / max(row["ours_cpu_s"], 1e-9), overlap=_overlap(picks[ours], picks[theirs]))
                comparisons.append(row)
            results.extend(rows)
            del inp
    return {
        "config": {"sizes": sizes, "classes": classes, "labeled": labeled, "dim": dim, "n_query": n_query, "k": k,
                   "repeats": repeats, "slow_s": slow_s, "methods": names, "seed": seed,
                   "large_pool": large_pool,
                   "statistic": "median of interleaved runs"},
        "results": results,
        "comparisons": comparisons,
    }


def acquisition_table(report: dict[str, Any]):
    """A rich table of the paired comparisons: median wall times, speed-up (small-text wall time /
    ours), the same ratio of process CPU time (less sensitive to other load on a shared machine),
    peak RSS increase, and the overlap of the two selections."""
    from rich.table import Table

    cfg = report["config"]
    table = Table(title=f"Acquisition: select {cfg['n_query']} of the pool, {cfg['dim']}-d embeddings, k={cfg['k']} "
                        f"(median of ≤{cfg['repeats']} interleaved runs)")
    for col, just in (("pool", "right"), ("labeled", "right"), ("C", "right"), ("method", "left"), ("ours", "right"),
                      ("small-text", "right"), ("speed-up", "right"), ("CPU-time ratio", "right"), ("ours peak", "right"), ("s-t peak", "right"),
                      ("same picks", "right"), ("runs", "right")):
        table.add_column(col, justify=just)
    for row in report["comparisons"]:
        same = "—" if row["overlap"] is None else f"{100 * row['overlap']:.0f} %"
        table.add_row(
            f"{row['pool']:,}", f"{row['labeled']:,}", str(row["classes"]), row["comparison"], fmt_s(row["ours_s"]),
            fmt_s(row["theirs_s"]), fmt_ratio(row["speedup"]), fmt_ratio(row["cpu_speedup"]), fmt_mb(row["ours_peak_bytes"]), fmt_mb(row["theirs_peak_bytes"]),
            same, f"{row['ours_runs']}/{row['theirs_runs']}" if row["theirs"] else str(row["ours_runs"]),
        )
    return table
