"""Multi-process launches: every rank runs the loop; check they agree before the next round."""

from __future__ import annotations

import hashlib
from typing import Any

from .records import log_event

__all__ = ["check_ranks_agree"]


def _adapter_digest(generator: Any) -> str:
    if generator is None:
        return ""
    from peft import get_peft_model_state_dict

    h = hashlib.sha256()
    for name, tensor in sorted(get_peft_model_state_dict(generator.model).items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def check_ranks_agree(run_id: str, round_idx: int, selected_ids: list[str], generator: Any) -> None:
    """Make sure all ranks selected the same items and hold the same adapter (a mismatch means
    nondeterminism, and silently diverging ranks would corrupt DDP training), then wait for the
    main process's store write."""
    # torch.distributed directly: TRL's trainers may re-create accelerate's state mid-run.
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    digest = _adapter_digest(generator)
    views: list = [None] * dist.get_world_size()
    dist.all_gather_object(views, (dist.get_rank(), selected_ids, digest))
    if len({(tuple(ids), d) for _, ids, d in views}) != 1:
        raise RuntimeError(f"round {round_idx}: processes disagree on the selection or the adapter: {views}")
    log_event("ranks_agree", run=run_id, round=round_idx, processes=len(views), adapter=digest[:12] or "none")
    dist.barrier()  # the main process has written the round; nobody races ahead of the store
