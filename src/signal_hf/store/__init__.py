"""Round store: every active-learning round's pools, labels, state and generator adapter as a revision.

``make_store(config, output_dir)`` returns a :class:`LocalStore` (default, no network) or a
:class:`HubStore` (local copy first, then pushed to the Hugging Face Hub).
"""

from __future__ import annotations

from pathlib import Path

from signal_hf.errors import ConfigError
from signal_hf.store.base import RoundRecord, RoundStore, parse_revision_name, revision_name
from signal_hf.store.config import StoreConfig
from signal_hf.store.hub import HubStore, commit_message, load_adapter, pull
from signal_hf.store.local import LocalStore, read_round_folder

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
    root = Path(config.root).expanduser() if config.root else Path(output_dir) / "store"
    local = LocalStore(root)
    if config.backend == "local":
        return local
    if config.backend != "hub":
        raise ConfigError("store.backend", f"unknown backend {config.backend!r}", "use 'local' or 'hub'")
    for field_name in ("dataset_repo_id", "model_repo_id"):
        value = getattr(config, field_name)
        if field_name == "model_repo_id" and not value:
            continue
        if not isinstance(value, str) or value.count("/") != 1 or not all(value.split("/")):
            raise ConfigError(
                f"store.{field_name}",
                f"must be 'namespace/name' with backend 'hub', got {value!r}",
                "e.g. 'my-user/signal-pools'",
            )
    if config.max_retries < 0:
        raise ConfigError("store.max_retries", f"must be >= 0, got {config.max_retries}", "use e.g. 4")
    if config.retry_backoff_s < 0:
        raise ConfigError("store.retry_backoff_s", f"must be >= 0, got {config.retry_backoff_s}", "use e.g. 1.0")
    return HubStore(
        local,
        config.dataset_repo_id,  # type: ignore[arg-type]
        config.model_repo_id or None,
        private=config.private,
        endpoint=config.endpoint or None,
        max_retries=config.max_retries,
        retry_backoff_s=config.retry_backoff_s,
    )
