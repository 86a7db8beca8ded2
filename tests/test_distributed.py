"""Two CPU processes under `accelerate launch` (torchrun, gloo — accelerate's own `--cpu` multi-process
mode needs MPI): a tiny SIGnAL run whose ranks must agree on every
round's selection and trained adapter (the loop gathers and compares them), with one store write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from signal_hf.annotator import train_annotator
from signal_hf.results import read_results

# Two processes loading the generator: ~90 s on 2 cores, so in `make test-slow`.
pytestmark = [pytest.mark.distributed, pytest.mark.generator, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def test_two_cpu_processes_agree(tmp_path):
    from test_signal_loop import signal_cfg

    cfg = signal_cfg(tmp_path / "run", tmp_path / "annotator", loop={"signal_max_fraction": 0.6, "max_fraction": 0.2})
    train_annotator(cfg, max_train_samples=32, epochs=1)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg.to_dict()))
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "SIGNAL_HF_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(accelerate), "launch", "--config_file", str(ROOT / "recipes/accelerate_configs/cpu_2proc.yaml"), "-m", "signal_hf", str(recipe)],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    agree = re.findall(r"ranks_agree run=(\S+) round=(\d+) processes=2 adapter=(\w+)", proc.stderr)
    # Both ranks log the agreement for rounds 1 and 2 (round 0 acquires nothing), with one digest per
    # round, and RL changed the adapter between rounds.
    assert sorted(r for _, r, _ in agree) == ["1", "1", "2", "2"], proc.stderr[-3000:]
    digests = {r: d for _, r, d in agree}
    assert len(set(agree)) == 2 and digests["1"] != digests["2"] and "none" not in digests.values()
    rows = read_results(tmp_path / "run")
    assert [r["round"] for r in rows] == [0, 1, 2]
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3  # only the main process writes
