"""Round integrity: ``signal_manifest.json`` holds the SHA-256 of every other file of a round.

Every load checks each file against the manifest and names the first one that is missing or
changed (a flipped byte, a truncated parquet, a deleted state file) in a one-line StoreError;
``signal-hf resume --from-round N`` then continues from an intact earlier round. Rounds of format 1
(before manifests) load without the check.
"""

from __future__ import annotations

import json
from pathlib import Path

from signal_hf.checksums import sha256_file
from signal_hf.errors import StoreError
from signal_hf.store.layout import ADAPTER_DIR, FORMAT_VERSION, MANIFEST_FILE, META_FILE, round_of


def file_hashes(folder: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``folder`` but the manifest itself."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_FILE
    }


def verify_round_folder(folder: Path, *, adapter_expected: bool) -> None:
    """Check every file of a format-2 round against its manifest; StoreError naming the first bad one.

    ``adapter_expected`` False skips the adapter's files when the folder has none (a Hub snapshot
    of the dataset repo: the adapter lives in the model repo)."""
    manifest_path = folder / MANIFEST_FILE
    fix = f"continue from an intact earlier round: signal-hf resume <output_dir> --from-round {round_of(folder) - 1}" if round_of(folder) > 0 else "start the run again in a new output_dir"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))["sha256"]
    except FileNotFoundError:
        raise StoreError(f"round folder {folder} is damaged: {MANIFEST_FILE} is missing (fix: {fix})") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise StoreError(f"round folder {folder} is damaged: {MANIFEST_FILE} is not a valid manifest (fix: {fix})") from None
    skip_adapter = not adapter_expected and not (folder / ADAPTER_DIR).is_dir()
    for rel, digest in manifest.items():
        if skip_adapter and rel.split("/", 1)[0] == ADAPTER_DIR:
            continue
        path = folder / rel
        if not path.is_file():
            raise StoreError(f"round folder {folder} is damaged: {rel} is missing (fix: {fix})")
        if sha256_file(path) != digest:
            raise StoreError(f"round folder {folder} is damaged: {rel} does not match its SHA-256 in {MANIFEST_FILE} (changed or truncated) (fix: {fix})")


def _format_of(folder: Path) -> int:
    try:
        return int(json.loads((folder / META_FILE).read_text(encoding="utf-8")).get("format_version", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return FORMAT_VERSION  # unreadable metadata: verify, so the damage is named


def has_manifest(folder: Path) -> bool:
    """Whether the round must be verified: it has a manifest, or is of format 2 (or its metadata is
    missing or unreadable, so the damage gets named); format-1 rounds predate manifests."""
    return (folder / MANIFEST_FILE).is_file() or _format_of(folder) >= 2
