"""Round store: every active-learning round's pools, labels, state and generator adapter as a revision.

``make_store(config, output_dir)`` returns a :class:`LocalStore` (default, no network) or a
:class:`HubStore` (local copy first, then pushed to the Hugging Face Hub).
"""

from __future__ import annotations

from pathlib import Path

from signal_hf.store.base import RoundRecord, RoundStore
from signal_hf.store.config import StoreConfig
from signal_hf.store.hub import HubStore
from signal_hf.store.hub_pull import load_adapter, pull
from signal_hf.store.hub_push import commit_message
from signal_hf.store.local import LocalStore
from signal_hf.store.names import parse_revision_name, revision_name
from signal_hf.store.round_folder import read_round_folder

__all__ = [
    "HubStore",
    "LocalStore",
    "RoundRecord",
    "RoundStore",
    "StoreConfig",
    "commit_message",
    "load_adapter",
    "make_store",
    "parse_revision_name",
    "pull",
    "read_round_folder",
    "revision_name",
]


def make_store(config: StoreConfig, output_dir: str | Path) -> RoundStore:
    """The store ``config`` describes; the local root defaults to ``<output_dir>/store``."""
    config.check()
    root = Path(config.root).expanduser() if config.root else Path(output_dir) / "store"
    local = LocalStore(root)
    if config.backend == "local":
        return local
    return HubStore(
        local,
        config.dataset_repo_id,  # type: ignore[arg-type]
        config.model_repo_id or None,
        private=config.private,
        endpoint=config.endpoint or None,
        max_retries=config.max_retries,
        retry_backoff_s=config.retry_backoff_s,
    )
