"""Reading from the Hub without a store: :func:`pull` a repo at a revision, :func:`load_adapter`
find a generator adapter (locally or in a model repo)."""

from __future__ import annotations

from pathlib import Path

from signal_hf.errors import StoreError
from signal_hf.store.hub_http import available_refs, redact, token_value
from signal_hf.store.layout import ADAPTER_DIR, META_FILE
from signal_hf.store.local import LocalStore
from signal_hf.store.names import parse_revision_name


def pull(
    repo_id: str,
    revision: str | None = None,
    *,
    repo_type: str = "dataset",
    local_dir: str | Path | None = None,
    endpoint: str | None = None,
    token: str | None = None,
) -> Path:
    """Download a repo at ``revision`` (e.g. ``round-3``) and return the local folder.

    ``local_dir`` None keeps the files in the Hugging Face cache and returns the snapshot folder.
    Raises StoreError naming the repo or revision (with the revisions that do exist) on failure.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if repo_type not in ("dataset", "model"):
        raise StoreError(f"repo_type {repo_type!r} is not supported (fix: use 'dataset' or 'model')")
    tok = token_value(token)
    try:
        path = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            local_dir=str(local_dir) if local_dir is not None else None,
            endpoint=endpoint,
            token=token,
        )
    except RevisionNotFoundError as exc:
        available = available_refs(HfApi(endpoint=endpoint, token=token), repo_id, repo_type)
        raise StoreError(
            f"revision {revision!r} not found in {repo_type} repo {repo_id}; available revisions: {available}"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise StoreError(
            f"{repo_type} repo {repo_id!r} not found or not accessible "
            "(fix: check the repo id, --repo-type, and that HF_TOKEN may read it)"
        ) from exc
    except (HfHubHTTPError, ConnectionError, OSError) as exc:
        raise StoreError(f"could not download {repo_type} repo {repo_id!r}: {redact(str(exc), tok)}") from exc
    return Path(path)


def load_adapter(
    repo_or_dir: str | Path,
    revision: str | int | None = None,
    *,
    endpoint: str | None = None,
    token: str | None = None,
) -> Path:
    """Local folder holding a peft adapter, ready for ``PeftModel.from_pretrained(base, folder)``.

    ``repo_or_dir`` is one of
      * an adapter folder (holds ``adapter_config.json``; ``revision`` must be None);
      * a local round folder (``<store>/<run>/round-3``);
      * a LocalStore root or run folder, with ``revision`` naming the round (``signal-seed0-round-3``,
        ``round-3`` or an index for a run folder);
      * otherwise a Hub model repo id, downloaded at ``revision`` (a round branch).
    """
    path = Path(repo_or_dir).expanduser()
    if path.is_dir():
        return _local_adapter(path, revision)
    if isinstance(revision, int):
        raise StoreError(
            f"revision {revision!r}: a Hub repo needs a revision name such as 'round-3' (fix: pass the branch name)"
        )
    folder = pull(str(repo_or_dir), revision, repo_type="model", endpoint=endpoint, token=token)
    if not (folder / "adapter_config.json").is_file():
        raise StoreError(
            f"model repo {repo_or_dir!r} at revision {revision!r} holds no adapter_config.json "
            "(fix: pass the repo/revision a HubStore pushed the generator adapter to)"
        )
    return folder


def _local_adapter(path: Path, revision: str | int | None) -> Path:
    if (path / "adapter_config.json").is_file() and revision is None:
        return path
    if (path / META_FILE).is_file():  # a round folder
        adapter = path / ADAPTER_DIR
        if not (adapter / "adapter_config.json").is_file():
            raise StoreError(f"round folder {path} has no saved adapter (the round was saved without adapter_dir)")
        return adapter
    if revision is None:
        raise StoreError(
            f"{path} is neither an adapter folder nor a round folder "
            "(fix: pass a revision such as 'signal-seed0-round-3' to pick a round of this store)"
        )
    text = str(revision)
    parsed = parse_revision_name(text) if not text.isdigit() else None
    candidates: list[Path] = []
    if text.isdigit():
        candidates.append(path / f"round-{int(text)}")  # path is a run folder
    elif parsed is not None:
        run_id, idx = parsed
        candidates.append(path / f"round-{idx}")  # path is the run folder
        candidates.append(LocalStore(path).round_dir(run_id, idx))  # path is the store root
    for candidate in candidates:
        if (candidate / META_FILE).is_file():
            return _local_adapter(candidate, None)
    raise StoreError(
        f"revision {revision!r} not found under {path} (fix: pass a store root with a full revision name, "
        "or a run folder with 'round-N')"
    )
