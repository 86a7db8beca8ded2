"""HubStore: the LocalStore copy first, then every round pushed to the Hugging Face Hub.

Hub layout (``revision = revision_name(run_id, round)``, one *branch* per round, branched from
``main``; branches rather than tags because a resumed run that redoes a round must be able to
move it, and Hub tags are immutable):

* dataset repo ``dataset_repo_id``, branch ``<revision>``: ``data/<split>-00000-of-00001.parquet``,
  ``signal_state.json``, ``signal_round.json``, ``README.md`` (the dataset card) - exactly the local
  round folder without its adapter, so ``datasets.load_dataset(dataset_repo_id, revision="round-3")``
  reads the pools (``load_dataset(dataset_repo_id, "labeled", revision=...)`` one split);
* model repo ``model_repo_id``, branch ``<revision>``: the peft adapter files and its model card at
  the repo root, so ``PeftModel.from_pretrained(base, model_repo_id, revision="round-3")`` loads it.

The model repo is pushed before the dataset repo, so a round whose dataset branch exists on the
Hub also has its adapter there. A push that fails (after retries with exponential backoff on
transient errors: connection errors, 408/429/5xx) is logged - with the token redacted - and left
in ``<root>/.hub_pending.json``; the next ``save_round`` (or :meth:`HubStore.push_pending`) retries
it. The local round is never touched by a push.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from signal_hf.errors import StoreError
from signal_hf.store.base import RoundRecord, RoundStore, RoundToSave
from signal_hf.store.cards import CardRepos
from signal_hf.store.hub_http import is_transient, redact, token_value
from signal_hf.store.hub_push import PendingPushes, adapter_files, commit_message, dataset_files
from signal_hf.store.layout import ADAPTER_DIR, META_FILE, STATE_FILE
from signal_hf.store.local import LocalStore
from signal_hf.store.names import parse_revision_name, resolve_round_index, revision_name, validate_run_id
from signal_hf.store.round_folder import read_round_folder

logger = logging.getLogger(__name__)

T = TypeVar("T")


class HubStore(RoundStore):
    """Every round saved locally (``local``) and pushed to a dataset repo and a model repo.

    Args:
        local: the LocalStore that always receives the round first.
        dataset_repo_id: ``namespace/name`` of the dataset repo for pools and labels.
        model_repo_id: ``namespace/name`` of the model repo for adapters; None keeps adapters local.
        private: create missing repos private.
        endpoint: Hub URL; None = ``HF_ENDPOINT`` / huggingface.co.
        token: Hub token; None = ``HF_TOKEN`` / the saved login. Never logged.
        max_retries: retries of a transient Hub error before the push is left pending.
        retry_backoff_s: first retry delay; doubled after each retry.
    """

    def __init__(
        self,
        local: LocalStore,
        dataset_repo_id: str,
        model_repo_id: str | None = None,
        *,
        private: bool = True,
        endpoint: str | None = None,
        token: str | None = None,
        max_retries: int = 4,
        retry_backoff_s: float = 1.0,
    ):
        for field_name, repo in (("store.dataset_repo_id", dataset_repo_id), ("store.model_repo_id", model_repo_id)):
            if repo is None and field_name == "store.model_repo_id":
                continue
            if not isinstance(repo, str) or repo.count("/") != 1 or not all(repo.split("/")):
                raise StoreError(f"{field_name} must be 'namespace/name', got {repo!r} (fix: e.g. 'my-user/signal-pools')")
        if max_retries < 0 or retry_backoff_s < 0:
            raise StoreError("store.max_retries and store.retry_backoff_s must be >= 0")
        self.local = local
        local.card_repos = CardRepos(dataset_repo_id, model_repo_id)  # the local rounds are what gets pushed
        self.dataset_repo_id = dataset_repo_id
        self.model_repo_id = model_repo_id
        self.private = private
        self.endpoint = endpoint
        self._token = token
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.last_push_error: str | None = None
        self._pending = PendingPushes(local.root)
        self._ensured: set[tuple[str, str]] = set()
        self._api = None

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi(endpoint=self.endpoint, token=self._token)
        return self._api

    def _redact(self, exc: BaseException | str) -> str:
        return redact(str(exc), token_value(self._token))

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        delay = self.retry_backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except Exception as exc:
                if attempt >= self.max_retries or not is_transient(exc):
                    raise
                logger.warning(
                    "Hub %s failed (attempt %d of %d): %s: %s; retrying in %.2fs",
                    what, attempt + 1, self.max_retries + 1, type(exc).__name__, self._redact(exc), delay,
                )
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ pushing
    def pending(self) -> list[tuple[str, int]]:
        """Rounds saved locally but not yet pushed, oldest first."""
        return self._pending.read()

    def push_pending(self) -> None:
        """Push every pending round in order; stop at the first failure (logged, kept pending)."""
        items = self._pending.read()
        while items:
            run_id, idx = items[0]
            revision = revision_name(run_id, idx)
            if not (self.local.round_dir(run_id, idx) / META_FILE).is_file():
                logger.warning("Dropping pending push of %s: the local round no longer exists", revision)
            else:
                try:
                    self._push_round(run_id, idx)
                except Exception as exc:  # a push failure must never lose or block the local round
                    self.last_push_error = f"{type(exc).__name__}: {self._redact(exc)}"
                    logger.warning(
                        "Push of %s to %s failed; the round is kept locally in %s and will be retried "
                        "on the next save (%s)",
                        revision, self.dataset_repo_id, self.local.root, self.last_push_error,
                    )
                    return
            items = self._pending.remove((run_id, idx))
        self.last_push_error = None

    def _ensure_repo(self, repo_id: str, repo_type: str) -> None:
        if (repo_id, repo_type) in self._ensured:
            return
        self._retry(
            f"create_repo {repo_id}",
            lambda: self.api.create_repo(repo_id, repo_type=repo_type, private=self.private, exist_ok=True),
        )
        self._ensured.add((repo_id, repo_type))

    def _commit_files(self, repo_id: str, repo_type: str, branch: str, files: dict[str, Path], message: str) -> str:
        """Make ``branch`` hold exactly ``files`` (path in repo -> local file) in one commit."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        self._ensure_repo(repo_id, repo_type)
        self._retry(
            f"create_branch {branch}",
            lambda: self.api.create_branch(repo_id, branch=branch, repo_type=repo_type, exist_ok=True),
        )

        def commit() -> str:
            # A redone round replaces the branch content: delete what the new round does not have.
            existing = self.api.list_repo_files(repo_id, repo_type=repo_type, revision=branch)
            ops: list = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in sorted(files.items())]
            ops += [CommitOperationDelete(path_in_repo=p) for p in existing if p not in files and p != ".gitattributes"]
            info = self.api.create_commit(
                repo_id, ops, commit_message=message, revision=branch, repo_type=repo_type
            )
            return info.oid

        return self._retry(f"commit {branch} to {repo_id}", commit)

    def _push_round(self, run_id: str, idx: int) -> None:
        folder = self.local.round_dir(run_id, idx)
        revision = revision_name(run_id, idx)
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        message = commit_message(run_id, idx, state, meta.get("message", ""))
        adapter = folder / ADAPTER_DIR
        # Adapter first: a dataset branch on the Hub then implies its adapter is there too.
        if meta.get("adapter") and adapter.is_dir() and self.model_repo_id is not None:
            self._commit_files(self.model_repo_id, "model", revision, adapter_files(adapter), message)
        self._commit_files(self.dataset_repo_id, "dataset", revision, dataset_files(folder), message)
        logger.info("Pushed %s to %s (%s)", revision, self.dataset_repo_id, message)

    # ------------------------------------------------------------------ RoundStore
    def _save(self, new: RoundToSave) -> None:
        self.local._save(new)  # the arguments were checked once, by save_round
        self._pending.add((new.run_id, new.round))
        self.push_pending()

    def hub_rounds(self, run_id: str) -> list[int]:
        """Complete rounds of ``run_id`` on the Hub (branches that received their round commit)."""
        validate_run_id(run_id)
        refs = self._retry(
            f"list_repo_refs {self.dataset_repo_id}",
            lambda: self.api.list_repo_refs(self.dataset_repo_id, repo_type="dataset"),
        )
        main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        rounds = []
        for branch in refs.branches:
            parsed = parse_revision_name(branch.name)
            # A branch still at main's commit was created but its round commit never landed.
            if parsed is not None and parsed[0] == run_id and branch.target_commit != main:
                rounds.append(parsed[1])
        return sorted(rounds)

    def _hub_rounds_or_empty(self, run_id: str) -> list[int]:
        try:
            return self.hub_rounds(run_id)
        except Exception as exc:
            logger.warning("Could not list rounds on %s (using the local store only): %s", self.dataset_repo_id, self._redact(exc))
            return []

    def latest_round(self, run_id: str) -> int | None:
        rounds = set(self.local.rounds(run_id)) | set(self._hub_rounds_or_empty(run_id))
        return max(rounds) if rounds else None

    def revisions(self, run_id: str) -> list[str]:
        rounds = set(self.local.rounds(run_id)) | set(self._hub_rounds_or_empty(run_id))
        return [revision_name(run_id, i) for i in sorted(rounds)]

    def runs(self) -> list[str]:
        found = set(self.local.runs())
        try:
            refs = self.api.list_repo_refs(self.dataset_repo_id, repo_type="dataset")
            found |= {p[0] for b in refs.branches if (p := parse_revision_name(b.name)) is not None}
        except Exception as exc:
            logger.warning("Could not list runs on %s: %s", self.dataset_repo_id, self._redact(exc))
        return sorted(found)

    def load_round(self, run_id: str, revision: str | int | None = None) -> RoundRecord:
        """The local copy when it has the round, else the round downloaded from the Hub."""
        local_rounds = self.local.rounds(run_id)
        if revision is None:
            latest = self.latest_round(run_id)
            if latest is None:
                return self.local.load_round(run_id, None)  # raises the "no rounds" error
            revision = latest
        try:
            idx = resolve_round_index(run_id, revision, local_rounds)
        except StoreError:
            return self.load_round_from_hub(run_id, revision)
        return self.local.load_round(run_id, idx)

    def load_round_from_hub(self, run_id: str, revision: str | int | None = None) -> RoundRecord:
        """Download a round from the Hub (``snapshot_download`` at its branch) and read it."""
        hub = self.hub_rounds(run_id)
        if revision is None:
            if not hub:
                raise StoreError(f"run {run_id!r} has no rounds on {self.dataset_repo_id}")
            idx = hub[-1]
        else:
            idx = resolve_round_index(run_id, revision, hub)
        name = revision_name(run_id, idx)
        folder = self._download(self.dataset_repo_id, "dataset", name)
        record = read_round_folder(folder, expect=(run_id, idx))
        record.source = f"hub:{self.dataset_repo_id}@{folder.name}"
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        record.adapter_path = None
        if meta.get("adapter") and self.model_repo_id is not None:
            record.adapter_path = self._download(self.model_repo_id, "model", name)
        return record

    def _download(self, repo_id: str, repo_type: str, revision: str) -> Path:
        """Snapshot of ``repo_id`` at ``revision`` (with retries), in the Hugging Face cache."""
        from huggingface_hub import snapshot_download

        what = f"download {revision}" if repo_type == "dataset" else f"download adapter {revision}"
        return Path(
            self._retry(
                what,
                lambda: snapshot_download(
                    repo_id, repo_type=repo_type, revision=revision, endpoint=self.endpoint, token=self._token
                ),
            )
        )
