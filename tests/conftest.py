"""Shared test setup: offline by default, quiet libraries, optional thread cap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = (ROOT / ".." / "shared" / "data").resolve()

# Nothing in the default suite may reach a hub. The hub tests run in a child process with their
# own endpoint (tests/test_store_hub.py), which sets SIGNAL_HF_HUB_CHILD.
if not os.environ.get("SIGNAL_HF_HUB_CHILD"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SIGNAL_HF_DATA_DIR", str(DATA_DIR))

if os.environ.get("SIGNAL_HF_NUM_THREADS"):
    import torch

    torch.set_num_threads(int(os.environ["SIGNAL_HF_NUM_THREADS"]))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "SHA256SUMS").is_file():
        pytest.fail(f"the shared data folder is missing at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(autouse=True, scope="session")
def _quiet_libraries():
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    yield
