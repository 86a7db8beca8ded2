"""Configuration of the round store (recipe section ``store``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from signal_hf.errors import ConfigError


@dataclass
class StoreConfig:
    """Where each round's pools, labels and adapters are saved as revisions.

    Attributes:
        backend: ``local`` (default, no network) or ``hub``.
        root: folder of the local store; empty = ``<output.output_dir>/store``. The local copy is
            always written, also with ``backend: hub``.
        dataset_repo_id: Hub dataset repo (``namespace/name``) for pools and labels (``hub`` backend;
            required there).
        model_repo_id: Hub model repo (``namespace/name``) for generator adapters (``hub`` backend);
            empty keeps adapters in the local store only.
        private: create the Hub repos private.
        endpoint: Hub URL; empty = the ``HF_ENDPOINT`` environment variable, else huggingface.co.
            The token always comes from ``HF_TOKEN`` / ``huggingface-cli login``, never from a recipe.
        max_retries: how often a transient Hub error (connection error, 408/429/5xx) is retried
            before the push is left pending for the next save.
        retry_backoff_s: delay before the first retry, in seconds; doubled after each retry.
        allow_pending: ``hub`` backend: a run that ends with rounds still not pushed (they are
            kept locally and pushed by ``signal-hf resume``) exits 0 instead of 3. Either way the
            pending rounds are the last thing it prints.
    """

    backend: Literal["local", "hub"] = "local"
    root: str = ""
    dataset_repo_id: str | None = None
    model_repo_id: str | None = None
    private: bool = True
    endpoint: str | None = None
    max_retries: int = 4
    retry_backoff_s: float = 1.0
    allow_pending: bool = False

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ConfigError naming the first field whose value is unusable.

        Run on construction (so when a recipe is read) and again by ``make_store``, since fields
        may be set after construction.
        """
        if self.backend not in ("local", "hub"):
            raise ConfigError("store.backend", f"unknown backend {self.backend!r}", "use local or hub")
        if self.backend == "local":
            return  # the Hub fields are not used, so not checked
        if not self.dataset_repo_id:
            raise ConfigError("store.dataset_repo_id", "the hub backend needs a dataset repo", "set store.dataset_repo_id: user/name")
        for field_name in ("dataset_repo_id", "model_repo_id"):
            value = getattr(self, field_name)
            if field_name == "model_repo_id" and not value:
                continue  # optional: adapters then stay in the local store
            if not isinstance(value, str) or value.count("/") != 1 or not all(value.split("/")):
                raise ConfigError(
                    f"store.{field_name}",
                    f"must be 'namespace/name' with backend 'hub', got {value!r}",
                    "e.g. 'my-user/signal-pools'",
                )
        if self.max_retries < 0:
            raise ConfigError("store.max_retries", f"must be >= 0, got {self.max_retries}", "use e.g. 4")
        if self.retry_backoff_s < 0:
            raise ConfigError("store.retry_backoff_s", f"must be >= 0, got {self.retry_backoff_s}", "use e.g. 1.0")
