"""Names of a round folder's files (the LocalStore layout, which a Hub snapshot of a round shares)."""

from __future__ import annotations

import re
from pathlib import Path

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # 1: no manifest
STATE_FILE = "signal_state.json"
META_FILE = "signal_round.json"
MANIFEST_FILE = "signal_manifest.json"
CARD_FILE = "README.md"  # the Hub's repo card: a dataset card in a round, a model card in its adapter
ADAPTER_DIR = "adapter"
DATA_DIR = "data"
ROUND_DIR_RE = re.compile(r"^round-(\d+)$")


def split_filename(split: str) -> str:
    """Path of a split's parquet file inside a round, in the Hub's single-shard naming."""
    return f"{DATA_DIR}/{split}-00000-of-00001.parquet"


def round_of(folder: Path) -> int:
    """Round index a ``round-N`` folder name says; 0 for any other name (a Hub snapshot)."""
    match = ROUND_DIR_RE.match(folder.name)
    return int(match.group(1)) if match else 0
