"""Configuration of the round store (recipe section ``store``)."""

from __future__ import annotations

from dataclasses import dataclass


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

    backend: str = "local"
    root: str = ""
    dataset_repo_id: str | None = None
    model_repo_id: str | None = None
    private: bool = True
    endpoint: str | None = None
    max_retries: int = 4
    retry_backoff_s: float = 1.0
    allow_pending: bool = False
