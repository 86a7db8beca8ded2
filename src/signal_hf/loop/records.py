"""What a round leaves behind besides the store: its result row, its log line, and the recipe hash
that ties stored rounds to the recipe that made them."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from datasets import Dataset

from ..config import ExperimentConfig
from ..data import is_pair_task
from ..environment import lock_digest
from ..results import ResultsLog
from ..store import RoundRecord, revision_name
from .state import RoundContext

__all__ = ["recipe_hash", "log_event", "result_row", "round_state", "restore_rows"]

logger = logging.getLogger("signal_hf")

# Keys of a round's saved state that are not measurements of its result row.
_STATE_ONLY = frozenset({"accuracy", "recipe_hash", "recipe", "method", "seed", "synthetic_share"})


def recipe_hash(cfg: ExperimentConfig) -> str:
    """Hash of everything that changes results (output locations excluded), to refuse mixing runs."""
    d = cfg.to_dict()
    d.pop("output", None)
    d.pop("store", None)
    # Seeds, strategies and how far to go may change between a run and its continuation.
    d["loop"] = {k: v for k, v in d["loop"].items() if k not in ("seeds", "max_fraction", "signal_max_fraction")}
    d["acquisition"] = {k: v for k, v in d["acquisition"].items() if k != "strategies"}
    # pair_features changes nothing on a single-text task, and "joint" is what runs did before the
    # field existed: hashing it only otherwise keeps those runs resumable.
    if not is_pair_task(cfg.data) or d["classifier"].get("pair_features") == "joint":
        d["classifier"].pop("pair_features", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def log_event(event: str, **fields: Any) -> None:
    """One structured log line: ``event key=value ...`` (floats rounded)."""
    parts = []
    for k, v in fields.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        parts.append(f"{k}={v}")
    logger.info("%s %s", event, " ".join(parts))


def round_state(ctx: RoundContext, accuracy: float, metrics: dict, synthetic_share: float | None) -> dict:
    """The state saved with a round: its accuracy, the recipe, and the row's measurements."""
    state = {"accuracy": accuracy, "recipe_hash": recipe_hash(ctx.cfg), "recipe": ctx.cfg.to_dict(), "method": ctx.method.name, "seed": ctx.seed}
    if synthetic_share is not None:
        state["synthetic_share"] = synthetic_share
    return {**state, **metrics}


def result_row(ctx: RoundContext, round_idx: int, labeled: Dataset, accuracy: float, extra: dict) -> dict:
    """The results.jsonl row of one round."""
    n_syn = sum(1 for s in labeled["source"][:] if s == "synthetic")
    R = ctx.schedule.pool_size
    return {
        "experiment": ctx.cfg.name, "dataset": ctx.task.spec.name, "method": ctx.method.name, "strategy": ctx.method.strategy,
        "seed": ctx.seed, "round": round_idx, "labeled": len(labeled), "real_labeled": len(labeled) - n_syn,
        "synthetic_labeled": n_syn, "pool_size": R, "budget": ctx.schedule.budget,
        "step_percent": ctx.schedule.step_percent(round_idx),
        "labeled_percent": 100.0 * len(labeled) / R, "accuracy": accuracy, "notes": list(ctx.task.notes),
        "lock": lock_digest(), **extra,
    }


def restore_rows(ctx: RoundContext, results: ResultsLog, start: int, latest: RoundRecord) -> list[dict]:
    """Result rows of stored rounds ``0..start`` missing from results.jsonl: a run killed between
    saving a round and logging it, or one resumed from the Hub into a fresh folder. A round's row is
    rebuilt from its saved state (which holds the row's measurements)."""
    try:
        logged = {r["round"] for r in results.rows() if r.get("method") == ctx.method.name and r.get("seed") == ctx.seed}
    except FileNotFoundError:
        logged = set()
    missing = [r for r in range(start + 1) if r not in logged]
    stored = set(ctx.store.revisions(ctx.run_id)) if missing != [start] else {latest.revision}
    rows = []
    for r in missing:
        if revision_name(ctx.run_id, r) not in stored:
            continue
        rec = latest if r == start else ctx.store.load_round(ctx.run_id, r)
        extra = {k: v for k, v in rec.state.items() if k not in _STATE_ONLY}
        rows.append(result_row(ctx, r, rec.datasets["labeled"], rec.state["accuracy"], {**extra, "revision": rec.revision}))
        log_event("restored_row", run=ctx.run_id, round=r)
    return rows
