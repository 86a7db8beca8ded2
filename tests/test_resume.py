"""Crash safety: runs SIGKILLed at chosen points (tests/kill_points.py) and resumed with
``signal-hf resume`` end with the same labels, selections and results as an uninterrupted run.

Each scenario chains several kills in one output folder: run -> killed -> resume -> killed -> ...
-> resume to the end, then compares with a reference run of the same recipe made in this process.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from signal_hf.config import to_yaml
from signal_hf.loop import run_experiment
from signal_hf.results import read_results
from signal_hf.store import LocalStore, RoundStore, revision_name

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
KILL_POINTS = TESTS / "kill_points.py"
SIGKILLED = -9
NOT_REACHED = 3  # kill_points.py: the run ended before its kill point


def cli_env() -> dict[str, str]:
    # Same thread count as this process: float reductions, hence selections, may depend on it.
    return {**os.environ, "SIGNAL_HF_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(ROOT / "src")}


def run_cli(args: list[str], kill_at: str | None = None, timeout: int = 900, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``signal-hf ARGS`` as a subprocess; with ``kill_at`` it must die by SIGKILL at that point
    (a timed kill, ``after:SECONDS``, may also find the run finished)."""
    cmd = [sys.executable, str(KILL_POINTS), kill_at, *args] if kill_at else [sys.executable, "-m", "signal_hf", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False)
    expected = {SIGKILLED} if kill_at else {0}
    if kill_at and kill_at.startswith("after:"):
        expected.add(NOT_REACHED)
    assert proc.returncode in expected, f"{' '.join(args)} (kill at {kill_at}): rc {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc


def result_lines(out: Path) -> list[dict]:
    """Every line of results.jsonl (no de-duplication, unlike read_results)."""
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def labeled_rows(store: RoundStore, run_id: str, round_idx: int) -> list[tuple]:
    lab = store.load_round(run_id, round_idx).datasets["labeled"]
    return list(zip(lab["id"][:], lab["label"][:], lab["source"][:], lab["round_acquired"][:]))


def assert_matches_reference(out: Path, ref: Path, run_ids: list[str], last_round: int, store: RoundStore | None = None) -> None:
    """Same labeled sets, one results row per round, and the same selections as the reference run.

    ``store`` defaults to the LocalStore of ``out``."""
    lines = result_lines(out)
    keys = [(r["method"], r["seed"], r["round"]) for r in lines]
    assert len(keys) == len(set(keys)), f"duplicated result rows: {sorted(keys)}"
    ref_rows = {(r["method"], r["seed"], r["round"]): r for r in read_results(ref)}
    assert sorted(keys) == sorted(ref_rows), "a round's result row is missing or extra"
    for row in lines:
        expected = ref_rows[(row["method"], row["seed"], row["round"])]
        assert row.get("selected_ids") == expected.get("selected_ids"), row["round"]
        assert row["labeled"] == expected["labeled"] and row["revision"] == expected["revision"]
        assert row["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    store = store or LocalStore(out / "store")
    ref_store = LocalStore(ref / "store")
    for run_id in run_ids:
        rounds = [revision_name(run_id, r) for r in range(last_round + 1)]
        assert store.revisions(run_id) == ref_store.revisions(run_id) == rounds
        for r in range(last_round + 1):
            got, expected = labeled_rows(store, run_id, r), labeled_rows(ref_store, run_id, r)
            ids = [row[0] for row in got]
            assert len(ids) == len(set(ids)), f"{run_id} round {r}: duplicated labels"
            assert sorted(got) == sorted(expected), f"{run_id} round {r}: labeled set differs"
            # The result row's selection is exactly what the round added to L.
            if r > 0:
                row = next(x for x in lines if x["round"] == r and f"{x['method']}-seed{x['seed']}" == run_id)
                assert row["selected_ids"] == [i for i, *_rest, acq in got if acq == r]
        if isinstance(store, LocalStore):  # no half-written round folder is left behind
            assert not [p for p in store.run_dir(run_id).iterdir() if p.name.startswith((".tmp-", ".old-"))]


# ---------------------------------------------------------------------- pool-based (slow: ~2 min on 2 cores; the
# default suite keeps a kill-and-resume in tests/test_reproduce.py and the store's killed write in tests/test_store.py)
@pytest.mark.slow
def test_pool_based_run_killed_three_times_matches_uninterrupted(tmp_path):
    from test_loop import tiny

    strategies = ["entropy", "signal"]
    ref_cfg = tiny(tmp_path / "ref")
    ref_cfg.acquisition.strategies = strategies
    # The fine-tuning backend: the kill point "train" is inside a Trainer's optimisation steps.
    ref_cfg.classifier.backend = "finetune"
    run_experiment(ref_cfg, show_progress=False)

    out = tmp_path / "run"
    cfg = tiny(out)
    cfg.acquisition.strategies = strategies
    cfg.classifier.backend = "finetune"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(to_yaml(cfg))
    # Trial order is entropy then signal. Killed while training entropy's round 1, then inside the
    # store write of its round 2, then between saving its round 2 and writing the result row.
    run_cli(["run", str(recipe)], kill_at="train:1")
    assert [r["round"] for r in result_lines(out)] == [0]
    store = LocalStore(out / "store")
    assert store.rounds("entropy-seed0") == [0]
    run_cli(["resume", str(out)], kill_at="store:2")
    assert store.rounds("entropy-seed0") == [0, 1]
    assert [p.name for p in store.run_dir("entropy-seed0").iterdir() if p.name.startswith(".tmp-")]  # killed mid-write
    run_cli(["resume", str(out)], kill_at="saved:2")
    assert store.rounds("entropy-seed0") == [0, 1, 2]
    assert [r["round"] for r in result_lines(out)] == [0, 1]  # round 2 saved, its row not written
    # Then at a random moment (wherever the signal trial, or the restart, is when the timer fires).
    delay = random.Random().uniform(3.0, 15.0)
    print(f"random kill after {delay:.2f}s")  # shown with a failure
    run_cli(["resume", str(out)], kill_at=f"after:{delay:.2f}")
    proc = run_cli(["resume", str(out)])
    assert "| entropy |" in proc.stdout and "| signal |" in proc.stdout
    assert_matches_reference(out, tmp_path / "ref", ["entropy-seed0", "signal-seed0"], last_round=2)


# ---------------------------------------------------------------------- generative SIGnAL (slow)
@pytest.mark.slow
@pytest.mark.generator
def test_generative_run_killed_in_every_phase_matches_uninterrupted(tmp_path):
    from test_signal_loop import signal_cfg

    from signal_hf.annotator import train_annotator

    annotator = tmp_path / "annotator"
    ref_cfg = signal_cfg(tmp_path / "ref", annotator)
    train_annotator(ref_cfg, max_train_samples=64, epochs=1)
    run_experiment(ref_cfg, show_progress=False)

    out = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(to_yaml(signal_cfg(out, annotator)))
    run_id = "signal-gen-seed0"
    store = LocalStore(out / "store")
    run_cli(["run", str(recipe)], kill_at="generate:1")
    assert store.rounds(run_id) == [0]
    run_cli(["resume", str(out)], kill_at="rl:1")  # round 1 generated, labeled, retrained; RL step 1
    assert store.rounds(run_id) == [0]
    run_cli(["resume", str(out)], kill_at="store:2")
    assert store.rounds(run_id) == [0, 1]
    run_cli(["resume", str(out)], kill_at="saved:2")
    assert store.rounds(run_id) == [0, 1, 2] and [r["round"] for r in result_lines(out)] == [0, 1]
    run_cli(["resume", str(out)])
    assert_matches_reference(out, tmp_path / "ref", [run_id], last_round=2)
    ref_store = LocalStore(tmp_path / "ref" / "store")
    for r in range(3):
        got, expected = store.load_round(run_id, r), ref_store.load_round(run_id, r)
        # The synthetic pool (texts, ids, the adapter revision that wrote them) and the adapter
        # trained by RL are the same as without the kills.
        assert got.datasets["synthetic_pool"].to_dict() == expected.datasets["synthetic_pool"].to_dict(), r
        assert (got.adapter_path / "adapter_model.safetensors").read_bytes() == (
            expected.adapter_path / "adapter_model.safetensors"
        ).read_bytes(), r
