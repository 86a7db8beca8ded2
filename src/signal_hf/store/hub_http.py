"""Talking to the Hub: the token, keeping it out of messages, and which errors are worth a retry.

``huggingface_hub`` is imported only inside these functions: a LocalStore never loads it.
"""

from __future__ import annotations

import re


def token_value(token: str | None) -> str | None:
    """``token``, else the one ``huggingface_hub`` would use (``HF_TOKEN`` / the saved login)."""
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def redact(text: str, token: str | None) -> str:
    """``text`` with ``token`` (and anything that looks like an HF token) replaced by ``***``."""
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection problems, timeouts, 408/429 and 5xx answers."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return False
    if isinstance(exc, HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        return status is None or status >= 500 or status in (408, 429)
    return isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError))


def available_refs(api, repo_id: str, repo_type: str) -> str:
    """Comma-separated branch and tag names of a repo, for an error message; ``unknown`` on failure."""
    try:
        refs = api.list_repo_refs(repo_id, repo_type=repo_type)
    except Exception:  # the listing only decorates an error message
        return "unknown"
    names = sorted(b.name for b in refs.branches) + sorted(t.name for t in refs.tags)
    return ", ".join(names) or "none"
